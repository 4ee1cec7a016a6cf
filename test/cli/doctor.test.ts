// `bae doctor`: the report's shape and exit code, how a verifier refusal is named, the interface
// checks on a veth pair in a namespace of this test (attached for a moment, never left behind;
// an interface that carries XDP is left alone), and the errors of a wrong interface.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { after, before, describe, test } from 'node:test';
import { REPO, assertFails, bae } from '../lib/bae-cli';
import { bpfFixture } from '../lib/fixtures';
import { createNetnsWithVeth, type NetnsWithVeth } from '../lib/netns';

interface Check {
  name: string;
  ok: boolean;
  degraded?: boolean;
  skipped?: boolean;
  detail: string;
}

interface Report {
  ok: boolean;
  kernel: { release: string; major: number; minor: number; patch: number } | null;
  probed: boolean;
  object: string;
  verifier: { budget: number; limit: number };
  checks: Check[];
  programs: { program: string; mode: string; verifiedInsns: number }[];
}

const GOOD_OBJECT = bpfFixture('xdp_pass');
const REFUSED_OBJECT = bpfFixture('bad_verifier');

function doctor(args: string[], opts: { object?: string; ns?: NetnsWithVeth; uid?: number } = {}) {
  return bae(['doctor', ...args], {
    ...(opts.ns ? { prefix: ['nsenter', `--net=${opts.ns.path}`, '--'] } : {}),
    spawn: {
      env: { BAE_OBJECT: opts.object ?? GOOD_OBJECT },
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid, cwd: '/' } : {}),
    },
  });
}

function find(report: Report, name: string): Check {
  const c = report.checks.find((x) => x.name === name);
  assert.ok(c, `no check named '${name}' in ${report.checks.map((x) => x.name).join(', ')}`);
  return c;
}

/** The XDP program id on `iface` in the namespace (0: none), from iproute2, not from bae. */
function xdpProgId(ns: NetnsWithVeth, iface: string): number {
  const [link] = JSON.parse(ns.exec('ip', ['-j', '-d', 'link', 'show', 'dev', iface])) as { xdp?: { prog?: { id: number }; attached?: { prog: { id: number } }[] } }[];
  return link?.xdp?.prog?.id ?? link?.xdp?.attached?.[0]?.prog.id ?? 0;
}

describe('bae doctor', () => {
  test('--json reports every check with a name, a status and one line of detail, and exits 0 when all are ok', () => {
    const res = doctor(['--json']);
    const report = JSON.parse(res.stdout) as Report;
    assert.equal(res.status, report.ok ? 0 : 1, res.stderr);
    assert.equal(report.ok, true, report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`).join('; '));
    assert.equal(report.kernel?.release, os.release());
    assert.equal(report.probed, true);
    assert.equal(report.object, GOOD_OBJECT);
    assert.deepEqual(report.verifier, { budget: 250_000, limit: 1_000_000 });
    for (const c of report.checks) {
      assert.equal(typeof c.name, 'string');
      assert.equal(typeof c.ok, 'boolean', c.name);
      assert.ok(c.detail.length > 0 && !c.detail.includes('\n'), `${c.name}: one line of detail`);
    }
    const names = report.checks.map((c) => c.name);
    for (const n of ['privileges', 'kernel', 'bpffs', 'BTF', 'RINGBUF', 'bpf_loop', 'XDP_MAX_TX_SKB_BUDGET', 'xdp_pass.o', 'program xdp_pass']) {
      assert.ok(names.includes(n), `a check named ${n}`);
    }
    // The fixture has no bae_mode knob: loaded once, as it is; its do-nothing program is tiny.
    const pass = report.programs.find((p) => p.program === 'xdp_pass');
    assert.ok(pass && pass.verifiedInsns > 0 && pass.verifiedInsns < 100, JSON.stringify(report.programs));
    assert.equal(pass.mode, '');
    assert.match(find(report, 'program xdp_pass').detail, /^\d+ instructions verified: 0% of bae's budget of 250,000, the kernel's limit is 1,000,000$/);
  });

  test('the human report has one line per check and a verdict', () => {
    const res = doctor([]);
    assert.equal(res.status, 0, res.stderr);
    const lines = res.stdout.trim().split('\n');
    const report = JSON.parse(doctor(['--json']).stdout) as Report;
    assert.equal(lines.length, report.checks.length + 1);
    for (const line of lines.slice(0, -1)) assert.match(line, /^(ok|degraded|skip|FAIL) +\S.*: \S/);
    assert.match(lines[0]!, /^ok +privileges: root with CAP_BPF/);
    assert.match(res.stdout, new RegExp(`^ok +kernel: Linux ${os.release().replace(/[.+]/g, '\\$&')} \\(bae supports 6\\.1 and newer\\)$`, 'm'));
    assert.match(lines.at(-1)!, /^bae can run here( \(\d+ degraded\))?$/);
  });

  test('a program the verifier refuses is named with the kernel and the verifier\'s figure, and doctor exits 1', () => {
    const res = doctor([], { object: REFUSED_OBJECT });
    assert.equal(res.status, 1, res.stderr);
    const release = os.release().replace(/[.+]/g, '\\$&');
    assert.match(
      res.stdout,
      new RegExp(
        `^FAIL +bad_verifier\\.o: the verifier refused program 'xdp_unchecked' of ${REFUSED_OBJECT} on Linux ${release} ` +
          `after \\d+ instructions \\(limit 1,000,000\\): invalid access to packet`,
        'm',
      ),
    );
    assert.match(res.stdout.trim().split('\n').at(-1)!, /^bae cannot run here: 1 check failed \(bad_verifier\.o\)$/);
    const report = JSON.parse(doctor(['--json'], { object: REFUSED_OBJECT }).stdout) as Report;
    assert.equal(report.ok, false);
    assert.deepEqual(report.programs, []);
    assert.equal(find(report, 'bad_verifier.o').ok, false);
  });

  test('a missing object is a failure that says how to build it', () => {
    const res = doctor(['--json'], { object: '/nonexistent/bae.o' });
    assert.equal(res.status, 1);
    assert.match(find(JSON.parse(res.stdout) as Report, 'bae.o').detail, /^\/nonexistent\/bae\.o is missing; build it with `make`$/);
  });

  test('without root it says so, probes nothing, loads nothing and exits 1', () => {
    const res = doctor(['--json'], { uid: 65534 });
    assert.equal(res.status, 1, res.stderr);
    const report = JSON.parse(res.stdout) as Report;
    assert.equal(report.probed, false);
    assert.match(find(report, 'privileges').detail, /^not root \(uid 65534\); CapEff lacks CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON/);
    assert.match(find(report, 'bpf_loop').detail, /by kernel version, not probed: needs root on the host/);
    assert.equal(find(report, 'xdp_pass.o').skipped, true);
  });

  test('a wrong interface is a clear one-line error', () => {
    assertFails(doctor(['--iface', 'nosuchif']), 1, /^bae: no network interface named 'nosuchif' in this network namespace$/);
    assertFails(doctor(['--iface', 'a/b']), 2, /^bae: bad interface name 'a\/b'/);
  });

  test('--help teaches with examples', () => {
    const res = bae(['doctor', '--help']);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /--iface <name>/);
    assert.match(res.stdout, /Examples:\n\s+sudo bae doctor\n\s+sudo bae doctor --iface eth1/);
  });
});

describe('bae doctor --iface', () => {
  let ns: NetnsWithVeth;
  before(() => {
    ns = createNetnsWithVeth('doc');
  });
  after(() => ns.remove());

  test('on a veth, native XDP attaches and is detached again, and an AF_XDP socket binds', () => {
    const [a] = ns.veth;
    const res = doctor(['--iface', a, '--json'], { ns });
    const report = JSON.parse(res.stdout) as Report;
    assert.equal(res.status, 0, res.stdout);
    const xdp = find(report, `${a}: native XDP`);
    assert.equal(xdp.ok && !xdp.degraded && !xdp.skipped, true, xdp.detail);
    assert.match(xdp.detail, /^attaches \(xdp_pass attached in native mode and detached again\)$/);
    const xsk = find(report, `${a}: AF_XDP`);
    assert.equal(xsk.ok && !xsk.degraded && !xsk.skipped, true, xsk.detail);
    assert.match(xsk.detail, /binds to queue 0 in copy mode/);
    assert.equal(xdpProgId(ns, a), 0, 'nothing is left attached');
  });

  test('an interface that already carries XDP is left alone and said to', () => {
    const [a, b] = ns.veth;
    const pass = ['obj', `${REPO}/build/bpf/test/xdp_pass.o`, 'sec', 'xdp'];
    execFileSync('ip', ['-n', ns.name, 'link', 'set', 'dev', a, 'xdpdrv', ...pass]);
    execFileSync('ip', ['-n', ns.name, 'link', 'set', 'dev', b, 'xdpgeneric', ...pass]);
    try {
      const before = [xdpProgId(ns, a), xdpProgId(ns, b)];
      assert.ok(before[0]! > 0 && before[1]! > 0);
      const onNative = JSON.parse(doctor(['--iface', a, '--json'], { ns }).stdout) as Report;
      const native = find(onNative, `${a}: native XDP`);
      assert.equal(native.ok && !native.skipped, true, native.detail);
      assert.match(native.detail, new RegExp(`^works: ${a} carries XDP program '\\w+' \\(id ${before[0]}, native mode\\); not touched$`));
      const onGeneric = JSON.parse(doctor(['--iface', b, '--json'], { ns }).stdout) as Report;
      const generic = find(onGeneric, `${b}: native XDP`);
      assert.equal(generic.skipped, true, generic.detail);
      assert.match(generic.detail, new RegExp(`^not tested: ${b} already carries XDP program '\\w+' \\(id ${before[1]}, generic mode\\)`));
      assert.deepEqual([xdpProgId(ns, a), xdpProgId(ns, b)], before, 'the programs are untouched');
    } finally {
      execFileSync('ip', ['-n', ns.name, 'link', 'set', 'dev', a, 'xdpdrv', 'off']);
      execFileSync('ip', ['-n', ns.name, 'link', 'set', 'dev', b, 'xdpgeneric', 'off']);
    }
  });

  test('an interface of another namespace is not found', () => {
    assertFails(doctor(['--iface', ns.veth[0]]), 1, new RegExp(`no network interface named '${ns.veth[0]}' in this network namespace`));
  });
});
