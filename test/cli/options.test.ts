// test-unit: needs no root and no kernel (make test-unit).
// The global --pin-dir (src/cli/options.ts): BAE_PIN_DIR is its default, the option wins over
// it before or after the subcommand; and `bae agent status` without an agent: exit 3 through the
// one error handler, its reason on stderr, `null` on stdout for --json.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertFails, bae } from '../lib/bae-cli';
import { testPinDir } from '../lib/fixtures';

describe('--pin-dir and BAE_PIN_DIR', () => {
  let runDir: string;
  const fromEnv = testPinDir('env');
  const fromFlag = testPinDir('flag');
  before(() => {
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-test-run-'));
  });
  after(() => {
    if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
  });

  const agentStatus = (args: string[], env: Record<string, string> = {}) =>
    bae(args, { spawn: { env: { BAE_RUN_DIR: runDir, ...env } } });

  test('without the option, BAE_PIN_DIR names the instance', () => {
    const res = agentStatus(['agent', 'status'], { BAE_PIN_DIR: fromEnv });
    assertFails(res, 3, new RegExp(`^bae: no bae agent is running for ${fromEnv} \\(${runDir}/agent-[0-9a-f]{12}\\.sock does not answer\\)$`));
    assert.equal(res.stdout, '');
  });

  test('the option wins over BAE_PIN_DIR, after the subcommand or before it', () => {
    for (const args of [['agent', 'status', '--pin-dir', fromFlag], ['--pin-dir', fromFlag, 'agent', 'status'], ['agent', '--pin-dir', fromFlag, 'status']]) {
      assertFails(agentStatus(args, { BAE_PIN_DIR: fromEnv }), 3, new RegExp(`no bae agent is running for ${fromFlag} `));
    }
  });

  test('agent status --json prints null when no agent runs, and exits 3', () => {
    const res = agentStatus(['agent', 'status', '--json', '--pin-dir', fromFlag]);
    assert.equal(res.stdout, 'null\n');
    assertFails(res, 3, /^bae: no bae agent is running for /);
  });

  test('a bad BAE_PIN_DIR is a usage error like a bad --pin-dir', () => {
    assertFails(agentStatus(['agent', 'status'], { BAE_PIN_DIR: 'relative/dir' }), 2, /^bae: bad pin directory 'relative\/dir'/);
    assertFails(agentStatus(['agent', 'status', '--pin-dir', '/sys/fs/bpf']), 2, /^bae: bad pin directory '\/sys\/fs\/bpf'/);
  });
});
