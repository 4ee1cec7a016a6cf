// Every way `bae load` (and its siblings) can be refused: one line naming the problem, exit code 2
// for input to fix and 1 for the rest, and nothing half attached or pinned afterwards. (The codes
// and exit codes of every error class, through the one handler: test/shared/errors.test.ts; exit
// 3 of `bae agent status`: test/cli/options.test.ts; help texts: test/cli/help.test.ts.)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Lab, run } from '../../src/lab';
import { REPO, assertFails, assertNothingLeft, bae } from '../lib/bae-cli';
import { createBaeLab, type BaeLab } from '../lib/bae-lab';
import { testPinDir } from '../lib/fixtures';

const pinDir = testPinDir('cli');
let bl: BaeLab;
let lab: Lab;

function inBae(args: string[], extra: Parameters<typeof bae>[1] = {}) {
  return bae([...args, '--pin-dir', pinDir], { lab, node: 'bae', ...extra });
}

describe('bae CLI errors', () => {
  before(() => {
    bl = createBaeLab('cli');
    lab = bl.lab;
  });
  after(() => bl?.teardown());

  test('load without --iface is a usage error that names the missing option', () => {
    assertFails(inBae(['load']), 2, /required option '--iface <name>' not specified/);
    assertNothingLeft(lab, pinDir);
  });

  test('an unknown flag is a usage error that names the flag', () => {
    assertFails(inBae(['load', '--iface', 'to-client', '--bogus']), 2, /unknown option '--bogus'/);
    assertFails(bae(['status', '--frobnicate']), 2, /unknown option '--frobnicate'/);
    assertNothingLeft(lab, pinDir);
  });

  test('a bad number for --max-conversations is a usage error that names the option', () => {
    for (const bad of ['abc', '0', '-5', '1.5', '99999999999']) {
      assertFails(
        inBae(['load', '--iface', 'to-client', '--max-conversations', bad]),
        2,
        /--max-conversations.*invalid.*whole number from 1 to/,
      );
    }
    assertFails(bae(['profiles', '--top', 'ten']), 2, /--top.*invalid/);
    assertNothingLeft(lab, pinDir);
  });

  test('an unknown mode and a peer equal to the interface are usage errors', () => {
    assertFails(inBae(['load', '--iface', 'to-client', '--mode', 'fast']), 2, /'fast' is invalid.*native, generic/);
    assertFails(inBae(['load', '--iface', 'to-client', '--peer', 'to-client']), 2, /--peer must differ from --iface/);
    assertFails(inBae(['load', '--iface', 'a/b']), 2, /bad interface name 'a\/b'/);
    assertNothingLeft(lab, pinDir);
  });

  test('a missing interface is named, exits 1 and leaves nothing behind', () => {
    assertFails(inBae(['load', '--iface', 'nope0']), 1, /no network interface named 'nope0'/);
    assertFails(inBae(['load', '--iface', 'to-client', '--peer', 'nope1']), 1, /no network interface named 'nope1'/);
    assertNothingLeft(lab, pinDir);
  });

  test('without root, load says it needs root and changes nothing', () => {
    // Entering a namespace needs root too, so this one runs in the host's namespace.
    const res = bae(['load', '--iface', 'to-client', '--pin-dir', pinDir], { spawn: { uid: 65534, gid: 65534, cwd: '/' } });
    assertFails(res, 1, /bae load needs root/);
    for (const cmd of ['status', 'profiles', 'unload']) {
      const r = bae([cmd, '--pin-dir', pinDir], { spawn: { uid: 65534, gid: 65534, cwd: '/' } });
      assertFails(r, 1, new RegExp(`bae ${cmd} needs root`));
    }
    assertNothingLeft(lab, pinDir);
  });

  test('as root of a user namespace (no CAP_BPF in the kernel) load names the refusal and leaves nothing', () => {
    const res = inBae(['load', '--iface', 'to-client'], { prefix: ['unshare', '--user', '--map-root-user'] });
    assertFails(res, 1, /kernel refused BPF \(EPERM\)/);
    assertNothingLeft(lab, pinDir);
  });

  test('a second load is refused as already loaded and the first stays attached', () => {
    const first = inBae(['load', '--iface', 'to-client', '--mode', 'generic']);
    assert.equal(first.status, 0, first.stderr);
    try {
      assertFails(inBae(['load', '--iface', 'to-server']), 1, /bae is already loaded .*run `bae unload` first/);
      const st = JSON.parse(inBae(['status', '--json']).stdout);
      assert.equal(st.loaded, true);
      assert.deepEqual(
        st.ports.map((p: { iface: string; attached: boolean; xdpMode: string }) => [p.iface, p.attached, p.xdpMode]),
        [['to-client', true, 'generic']],
      );
      assert.equal(st.mode, 'ingress');
    } finally {
      const res = inBae(['unload']);
      assert.equal(res.status, 0, res.stderr);
      assert.match(res.stdout, /bae unloaded: detached from to-client/);
    }
    assertNothingLeft(lab, pinDir);
  });

  test('an interface that already carries another XDP program is refused before anything is attached', () => {
    const ns = lab.bae.ns;
    run(['ip', '-n', ns, 'link', 'set', 'dev', lab.bae.serverPort, 'xdpgeneric', 'obj', `${REPO}/build/bpf/test/bench.o`, 'sec', 'xdp']);
    try {
      assertFails(
        inBae(['load', '--iface', lab.bae.clientPort, '--peer', lab.bae.serverPort]),
        1,
        /interface to-server already has an XDP program \(id \d+, generic mode\)/,
      );
      assert.equal(fs.existsSync(pinDir), false);
    } finally {
      run(['ip', '-n', ns, 'link', 'set', 'dev', lab.bae.serverPort, 'xdpgeneric', 'off']);
    }
    assertNothingLeft(lab, pinDir);
  });

  test('when the second attach fails the first is undone and every pin removed', () => {
    // The loopback device has no native XDP: the attach to the peer fails after the first port
    // is attached and the maps are pinned.
    const res = inBae(['load', '--iface', lab.bae.clientPort, '--peer', 'lo', '--mode', 'native']);
    assertFails(res, 1, /bae load failed attaching to lo in native mode/);
    assertNothingLeft(lab, pinDir);
  });

  test('unload, status and profiles when nothing is loaded', () => {
    const un = inBae(['unload']);
    assert.equal(un.status, 0, un.stderr);
    assert.match(un.stdout, /was not loaded .*nothing to do/);
    const st = inBae(['status']);
    assert.equal(st.status, 0, st.stderr);
    assert.match(st.stdout, /bae is not loaded/);
    assert.equal(JSON.parse(inBae(['status', '--json']).stdout).loaded, false);
    assertFails(inBae(['profiles']), 1, /bae is not loaded \(no bae_convs pinned/);
    assertNothingLeft(lab, pinDir);
  });

  test('a bad pin directory is a usage error', () => {
    assertFails(bae(['status', '--pin-dir', 'relative/dir']), 2, /bad pin directory 'relative\/dir'/);
    assertFails(bae(['unload', '--pin-dir', '/sys/fs/bpf']), 2, /bad pin directory '\/sys\/fs\/bpf'/);
  });

  test('lab commands name a bad node or prefix', () => {
    assertFails(bae(['lab', 'exec', '--prefix', lab.prefix, 'router', '--', 'true']), 2, /unknown lab node 'router'/);
    assertFails(bae(['lab', 'status', '--prefix', 'bad prefix']), 2, /bad lab prefix 'bad prefix'/);
    const res = bae(['lab', 'exec', '--prefix', lab.prefix, 'client', '--', 'sh', '-c', 'exit 7']);
    assert.equal(res.status, 7, 'the exit code of the command is passed through');
  });

  test('BAE_PIN_DIR is the pin directory of load, status and unload when --pin-dir is not given', () => {
    const viaEnv = (args: string[]) => bae(args, { lab, node: 'bae', spawn: { env: { BAE_PIN_DIR: pinDir } } });
    const loaded = viaEnv(['load', '--iface', 'to-client', '--mode', 'generic']);
    assert.equal(loaded.status, 0, loaded.stderr);
    try {
      assert.ok(fs.existsSync(pinDir), 'pinned under BAE_PIN_DIR');
      const st = JSON.parse(viaEnv(['status', '--json']).stdout) as { pinDir: string; loaded: boolean };
      assert.deepEqual([st.pinDir, st.loaded], [pinDir, true]);
    } finally {
      const res = viaEnv(['unload']);
      assert.equal(res.status, 0, res.stderr);
    }
    assertNothingLeft(lab, pinDir);
  });
});
