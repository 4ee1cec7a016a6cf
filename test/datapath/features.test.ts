// What the kernel gives bae: the version check that `bae load` relies on, the judgement of
// facts and probe answers for kernels this machine does not run (fakes), and the real probes
// on this kernel, held against the kernel version they must agree with.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { describe, test } from 'node:test';
import {
  DELAY_LINE_FEATURES,
  KERNEL_FEATURES,
  assessFeatures,
  degradations,
  loader,
  nativeProbes,
  parseKernelRelease,
  probeFeatures,
  requireSupportedKernel,
  type FeatureCheck,
  type FeatureReport,
  type HostFacts,
  type KernelProbes,
} from '../../src/datapath';
import { UnsupportedKernelError } from '../../src/errors';
import { testPinDir } from '../lib/fixtures';

const ENOPROTOOPT = os.constants.errno.ENOPROTOOPT;
const EACCES = os.constants.errno.EACCES;

/** Root on the host with every capability, on a kernel of `release`. */
function facts(release: string, over: Partial<HostFacts> = {}): HostFacts {
  return { release, uid: 0, capEff: (1n << 41n) - 1n, initialUserNs: true, bpffsMounted: true, btfBytes: 5 << 20, jit: '1', ...over };
}

/** A kernel that has everything bae uses; `over` takes things away. */
function probes(over: Partial<KernelProbes> = {}): KernelProbes {
  return {
    mapType: () => 1,
    xdpHelper: () => 1,
    mmapableArray: () => 0,
    xdpLiveFrames: () => 0,
    xsk: () => ({ socket: 0, txBudget: EACCES }),
    ...over,
  };
}

function check(report: FeatureReport, name: string): FeatureCheck {
  const c = report.checks.find((x) => x.name === name);
  assert.ok(c, `no check named ${name} in ${report.checks.map((x) => x.name).join(', ')}`);
  return c;
}

describe('kernel version', () => {
  test('a release string is read as major, minor and patch', () => {
    assert.deepEqual(parseKernelRelease('6.1.0-18-amd64'), { release: '6.1.0-18-amd64', major: 6, minor: 1, patch: 0 });
    assert.deepEqual(parseKernelRelease('6.18.44-fc-v1272'), { release: '6.18.44-fc-v1272', major: 6, minor: 18, patch: 44 });
    assert.deepEqual(parseKernelRelease('5.15.0-1-amd64'), { release: '5.15.0-1-amd64', major: 5, minor: 15, patch: 0 });
    assert.deepEqual(parseKernelRelease('6.12'), { release: '6.12', major: 6, minor: 12, patch: 0 });
    assert.equal(parseKernelRelease('linux'), undefined);
  });

  test('a kernel older than 6.1 is refused with a clear error, 6.1 and newer pass', () => {
    assert.throws(
      () => requireSupportedKernel('5.15.0-1-amd64'),
      (err: unknown) =>
        err instanceof UnsupportedKernelError &&
        err.code === 'BAE_KERNEL' &&
        /^kernel 5\.15 is older than 6\.1, the oldest bae supports \(uname -r: 5\.15\.0-1-amd64\)$/.test(err.message),
    );
    assert.throws(() => requireSupportedKernel('6.0.19'), /kernel 6\.0 is older than 6\.1/);
    assert.throws(() => requireSupportedKernel('4.19.0-27-amd64'), /kernel 4\.19 is older than 6\.1/);
    assert.throws(() => requireSupportedKernel('vmlinuz'), (err: unknown) => err instanceof UnsupportedKernelError && /cannot read a kernel version from 'vmlinuz'/.test(err.message));
    for (const ok of ['6.1.0-18-amd64', '6.12.43+deb12-amd64', '7.0.1']) assert.equal(requireSupportedKernel(ok).release, ok);
  });

  test('bae load refuses a kernel below 6.1 before it looks at the interface or the pins', () => {
    const pinDir = testPinDir('oldk');
    assert.throws(
      () => loader.load({ iface: 'btnosuchif0', kernelRelease: '5.15.0-1-amd64', pinDir }),
      (err: unknown) => err instanceof UnsupportedKernelError && /^kernel 5\.15 is older than 6\.1/.test(err.message),
    );
    assert.equal(fs.existsSync(pinDir), false, 'nothing was made');
  });
});

describe('feature assessment', () => {
  test('on 6.1 without XDP_MAX_TX_SKB_BUDGET the loss is one line naming the feature and the kernel', () => {
    const report = assessFeatures(facts('6.1.0-18-amd64'), probes({ xsk: () => ({ socket: 0, txBudget: ENOPROTOOPT }) }));
    assert.equal(report.ok, true, 'degraded is not a failure');
    assert.equal(report.probed, true);
    const budget = check(report, 'XDP_MAX_TX_SKB_BUDGET');
    assert.equal(budget.degraded, true);
    assert.deepEqual(degradations(report), ["XDP_MAX_TX_SKB_BUDGET: not in Linux 6.1 (6.17+): the delay line's socket path sends 32 frames per kick"]);
    assert.deepEqual(degradations(report, DELAY_LINE_FEATURES), degradations(report));
    assert.deepEqual(degradations(report, ['bpffs']), []);
    for (const c of report.checks) if (c !== budget) assert.equal(c.degraded, undefined, `${c.name}: ${c.detail}`);
  });

  test('on 5.15 the kernel check fails with the version error and bpf_loop is missing', () => {
    const report = assessFeatures(facts('5.15.0-1-amd64'), probes({ xdpHelper: (id) => (id === 181 ? 0 : 1) }));
    assert.equal(report.ok, false);
    assert.match(check(report, 'kernel').detail, /^kernel 5\.15 is older than 6\.1, the oldest bae supports/);
    const loop = check(report, 'bpf_loop');
    assert.equal(loop.ok, false);
    assert.match(loop.detail, /^not in Linux 5\.15 \(5\.17\+\): bae\.o calls it/);
    assert.equal(check(report, 'RINGBUF').ok, true);
  });

  test('a required feature that the probe finds missing fails even where the version has it', () => {
    const report = assessFeatures(facts('6.12.43+deb12-amd64'), probes({ mapType: (id) => (id === 27 ? 0 : 1) }));
    assert.equal(report.ok, false);
    const ringbuf = check(report, 'RINGBUF');
    assert.equal(ringbuf.ok, false);
    assert.match(ringbuf.detail, /^not in Linux 6\.12 \(5\.8\+, yet probed absent: a kernel built without it\?\): bae\.o holds one/);
  });

  test('without privileges nothing is probed and the kernel version decides, saying so', () => {
    const refuse: KernelProbes = probes({
      mapType: () => assert.fail('probed without privileges'),
      xdpHelper: () => assert.fail('probed without privileges'),
    });
    const report = assessFeatures(facts('6.1.0-18-amd64', { uid: 1000, capEff: 0n }), refuse);
    assert.equal(report.probed, false);
    assert.equal(report.ok, false);
    const priv = check(report, 'privileges');
    assert.match(priv.detail, /^not root \(uid 1000\); CapEff lacks CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON: run bae as root/);
    assert.match(check(report, 'bpf_loop').detail, /^Linux 6\.1 has it \(5\.17\+; by kernel version, not probed: needs root on the host\)$/);
    const budget = check(report, 'XDP_MAX_TX_SKB_BUDGET');
    assert.equal(budget.degraded, true);
    assert.match(budget.detail, /^not in Linux 6\.1 \(6\.17\+; by kernel version, not probed: needs root on the host\): the delay line's socket path/);
  });

  test('root of a user namespace is told that the kernel refuses BPF there', () => {
    const report = assessFeatures(facts('6.12.1', { initialUserNs: false }), probes());
    assert.equal(check(report, 'privileges').ok, false);
    assert.match(check(report, 'privileges').detail, /in a user namespace, where the kernel refuses BPF/);
    assert.equal(report.probed, false);
  });

  test('missing BTF fails, an unmounted bpffs and a JIT that is off only degrade', () => {
    const report = assessFeatures(facts('6.12.1', { btfBytes: undefined, bpffsMounted: false, jit: '0' }), probes());
    assert.equal(check(report, 'BTF').ok, false);
    assert.match(check(report, 'BTF').detail, /\/sys\/kernel\/btf\/vmlinux is missing: bae\.o relocates against kernel types \(CO-RE\)/);
    assert.equal(check(report, 'bpffs').degraded, true);
    assert.match(check(report, 'bpffs').detail, /`bae load` mounts it/);
    assert.equal(check(report, 'BPF JIT').degraded, true);
  });
});

describe('this kernel', () => {
  test('the probes agree with the kernel version on every feature, ringbuf and bpf_loop included', () => {
    const report = probeFeatures();
    const v = parseKernelRelease(os.release())!;
    assert.deepEqual(report.kernel, v);
    assert.equal(report.probed, true, 'the tests run as root');
    assert.equal(check(report, 'privileges').ok, true);
    assert.equal(check(report, 'kernel').ok, true);
    assert.equal(check(report, 'BTF').ok, true);
    for (const name of ['RINGBUF', 'bpf_loop', 'LRU_PERCPU_HASH', 'XSKMAP']) {
      const c = check(report, name);
      assert.equal(c.ok && !c.degraded, true, `${name}: ${c.detail}`);
      assert.match(c.detail, /^present \(probed: /);
    }
    for (const f of KERNEL_FEATURES) {
      const c = check(report, f.name);
      const expected = v.major > f.since[0] || (v.major === f.since[0] && v.minor >= f.since[1]);
      assert.equal(c.ok && !c.degraded, expected, `${f.name} on ${v.release}: ${c.detail}`);
      assert.match(c.detail, expected ? /^present \(probed/ : new RegExp(`^not in Linux ${v.major}\\.${v.minor} \\(`));
    }
    assert.equal(report.ok, true, report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`).join('; '));
  });

  test('the probes run once per process', () => {
    assert.equal(probeFeatures(), probeFeatures());
  });

  test('a map-type probe refuses a number that libbpf names differently', () => {
    const p = nativeProbes();
    assert.equal(p.mapType(27, 'ringbuf'), 1);
    assert.throws(() => p.mapType(27, 'hash'), /map type 27 is 'ringbuf' for libbpf, not 'hash'/);
  });
});
