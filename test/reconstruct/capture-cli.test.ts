// `bae capture` refusing bad input: a clear error that names the problem, exit code by class,
// and nothing written or changed.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertFails, bae } from '../lib/bae-cli';
import { testPinDir } from '../lib/fixtures';

describe('bae capture with bad input', () => {
  let dir: string;
  const pinDir = testPinDir('capc');
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-test-capture-cli-'));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(pinDir, { recursive: true, force: true });
  });

  it('refuses --json with --pcap (usage, exit 2) and writes no file', () => {
    const file = path.join(dir, 'a.pcap');
    assertFails(bae(['capture', '--json', '--pcap', file, '--pin-dir', pinDir]), 2, /^bae: --json and --pcap: choose one/);
    assert.equal(fs.existsSync(file), false);
  });

  it('names a pcap file it cannot write (usage, exit 2)', () => {
    const file = path.join(dir, 'no-such-dir', 'a.pcap');
    assertFails(bae(['capture', '--pcap', file, '--pin-dir', pinDir]), 2, new RegExp(`^bae: --pcap ${file.replace(/[.]/g, '\\.')}: cannot write it`));
  });

  it('refuses a bad --count (usage, exit 2)', () => {
    assertFails(bae(['capture', '--follow', '--count', '0', '--pin-dir', pinDir]), 2, /count/);
  });

  it('says bae is not loaded when nothing is pinned (exit 1, BAE_NOT_LOADED), and leaves no pcap file behind it did not need', () => {
    const file = path.join(dir, 'b.pcap');
    const res = bae(['capture', '--pcap', file, '--pin-dir', pinDir]);
    assertFails(res, 1, /not loaded/);
    assert.equal(fs.existsSync(file), false, 'the pcap file is created only once the ring is open');
  });
});
