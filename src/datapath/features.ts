// What this kernel gives bae: privileges, bpffs, BTF, the kernel version and every kernel feature
// bae.o and the delay line use. Checked once per process (probeFeatures), each answer one
// FeatureCheck: ok, degraded (bae works, with less), or not ok (bae cannot run). Map types and
// helpers are asked of the kernel through libbpf's probes, live frames and AF_XDP through one
// throwaway call each (addon/features.cc); every probe closes what it opened before it returns.
// Without the privileges to probe, the kernel version stands in, and the detail says so.
//
// The pure part, assessFeatures(facts, probes), takes the host's facts and the probes as
// arguments, so tests can ask it about kernels this machine does not run (6.1, 5.15).
import fs from 'node:fs';
import os from 'node:os';
import { UnsupportedKernelError } from '../errors';
import { errnoName } from './errors';
import { native } from './native';

/** The oldest kernel bae supports: Debian 12's stock 6.1. */
export const OLDEST_KERNEL: KernelLine = [6, 1];

export type KernelLine = readonly [major: number, minor: number];

export interface KernelVersion {
  /** As `uname -r` prints it: "6.1.0-18-amd64". */
  release: string;
  major: number;
  minor: number;
  patch: number;
}

export interface FeatureCheck {
  /** What was checked, as the kernel names it where it has a name: 'RINGBUF', 'bpf_loop'. */
  name: string;
  /** bae can work with what it found (possibly degraded). */
  ok: boolean;
  /** It works, with less: the detail says what is lost. */
  degraded?: boolean;
  /** Not checked (the detail says why); does not count against ok. */
  skipped?: boolean;
  /** One line: what was found, how it was found, and what it costs when missing. */
  detail: string;
}

export interface FeatureReport {
  kernel: KernelVersion | undefined;
  /** Whether the kernel features were probed, or inferred from the kernel version. */
  probed: boolean;
  checks: FeatureCheck[];
  /** Every check ok (degraded is fine). */
  ok: boolean;
}

// ---- the kernel version -----------------------------------------------------------------------

/** "6.18.44-fc-v1272" -> 6.18.44; undefined when the release does not start with a version. */
export function parseKernelRelease(release: string): KernelVersion | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release);
  if (!m) return undefined;
  return { release, major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

function atLeast(v: KernelVersion, [major, minor]: KernelLine): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

const lineOf = (v: KernelVersion): string => `${v.major}.${v.minor}`;
const lineText = ([major, minor]: KernelLine): string => `${major}.${minor}`;

/**
 * The kernel's version, or UnsupportedKernelError when it is older than OLDEST_KERNEL (or has
 * no version bae can read). `bae load` calls it before it touches anything.
 */
export function requireSupportedKernel(release: string = os.release()): KernelVersion {
  const v = parseKernelRelease(release);
  if (v === undefined) {
    throw new UnsupportedKernelError(`cannot read a kernel version from '${release}' (uname -r); bae supports ${lineText(OLDEST_KERNEL)} and newer`);
  }
  if (!atLeast(v, OLDEST_KERNEL)) {
    throw new UnsupportedKernelError(`kernel ${lineOf(v)} is older than ${lineText(OLDEST_KERNEL)}, the oldest bae supports (uname -r: ${release})`);
  }
  return v;
}

// ---- the host's facts -------------------------------------------------------------------------

/** What is read from /proc and /sys, without the bpf() system call. */
export interface HostFacts {
  release: string;
  uid: number;
  /** CapEff of /proc/self/status; undefined when unreadable. */
  capEff: bigint | undefined;
  /** /proc/self/uid_map maps every uid to itself: the initial user namespace, where BPF is allowed. */
  initialUserNs: boolean;
  bpffsMounted: boolean;
  /** Size of /sys/kernel/btf/vmlinux; undefined when absent. */
  btfBytes: number | undefined;
  /** /proc/sys/net/core/bpf_jit_enable; undefined when unreadable. */
  jit: string | undefined;
}

export const BPFFS = '/sys/fs/bpf';
export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';

function readOr(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function hostFacts(): HostFacts {
  const capHex = /^CapEff:\s*([0-9a-f]+)$/m.exec(readOr('/proc/self/status') ?? '')?.[1];
  const uidMap = (readOr('/proc/self/uid_map') ?? '').trim().split(/\s+/).join(' ');
  let btfBytes: number | undefined;
  try {
    btfBytes = fs.statSync(VMLINUX_BTF).size;
  } catch {
    btfBytes = undefined;
  }
  return {
    release: os.release(),
    uid: process.getuid?.() ?? -1,
    capEff: capHex === undefined ? undefined : BigInt(`0x${capHex}`),
    initialUserNs: uidMap === '0 0 4294967295',
    bpffsMounted: native.isBpffs(BPFFS),
    btfBytes,
    jit: readOr('/proc/sys/net/core/bpf_jit_enable')?.trim(),
  };
}

// ---- the probes --------------------------------------------------------------------------------

/** The kernel's answers; errno values are positive, 0 is success. */
export interface KernelProbes {
  /** 1 supported, 0 not, negative errno when the probe itself failed. */
  mapType(typeId: number, libbpfName: string): number;
  /** 1 usable from XDP programs, 0 not, negative errno when the probe failed. */
  xdpHelper(helperId: number): number;
  /** 0 when an ARRAY with BPF_F_MMAPABLE is created, its errno otherwise. */
  mmapableArray(): number;
  /** 0 when BPF_PROG_TEST_RUN takes BPF_F_TEST_XDP_LIVE_FRAMES, its errno otherwise. */
  xdpLiveFrames(): number;
  /** socket(AF_XDP) errno, and the errno of setsockopt(XDP_MAX_TX_SKB_BUDGET) on a socket without rings. */
  xsk(): { socket: number; txBudget: number };
}

// linux/bpf.h (UAPI numbers never change)
const BPF_PROG_TYPE_XDP = 6;
const BPF_MAP_TYPE_ARRAY = 2;
const BPF_F_MMAPABLE = 1 << 10;
const EACCES = os.constants.errno.EACCES;
const ENOPROTOOPT = os.constants.errno.ENOPROTOOPT;

export function nativeProbes(): KernelProbes {
  return {
    mapType(typeId, libbpfName) {
      const r = native.probeMapType(typeId);
      // A guard on the hand-copied numbers: libbpf names the type it was asked about.
      if (r.name !== libbpfName) throw new Error(`map type ${typeId} is '${r.name}' for libbpf, not '${libbpfName}'`);
      return r.result;
    },
    xdpHelper: (helperId) => native.probeHelper(BPF_PROG_TYPE_XDP, helperId),
    mmapableArray: () => native.probeMapCreate(BPF_MAP_TYPE_ARRAY, 4, 8, 1, BPF_F_MMAPABLE),
    xdpLiveFrames: () => native.probeXdpLiveFrames(),
    xsk: () => native.probeXsk(),
  };
}

/** A probe's answer: present or not, or no answer (errno) so that the version decides. */
type Answer = { present: boolean } | { errno: number };

const fromLibbpf = (r: number): Answer => (r < 0 ? { errno: -r } : { present: r === 1 });
const fromErrno = (err: number, absentWhen: number[]): Answer =>
  err === 0 ? { present: true } : absentWhen.includes(err) ? { present: false } : { errno: err };

export interface KernelFeature {
  name: string;
  /** The mainline kernel that brought it. */
  since: KernelLine;
  /** How it is probed, for the detail. */
  how: string;
  probe(p: KernelProbes): Answer;
  /** What bae loses without it; `required`: bae cannot run at all. */
  without: string;
  required: boolean;
}

const mapType = (name: string, typeId: number, libbpfName: string, since: KernelLine, usedFor: string): KernelFeature => ({
  name,
  since,
  how: 'libbpf_probe_bpf_map_type',
  probe: (p) => fromLibbpf(p.mapType(typeId, libbpfName)),
  without: `bae.o holds one (${usedFor}), so the kernel refuses to load it`,
  required: true,
});

const xdpHelper = (name: string, helperId: number, since: KernelLine, usedFor: string): KernelFeature => ({
  name,
  since,
  how: 'libbpf_probe_bpf_helper',
  probe: (p) => fromLibbpf(p.xdpHelper(helperId)),
  without: `bae.o calls it (${usedFor}), so the kernel refuses to load it`,
  required: true,
});

/** Every kernel feature bae uses, in the order `bae doctor` prints them. */
export const KERNEL_FEATURES: readonly KernelFeature[] = [
  mapType('LRU_PERCPU_HASH', 10, 'lru_percpu_hash', [4, 10], 'the conversation profiles'),
  mapType('LPM_TRIE', 11, 'lpm_trie', [4, 11], 'the policies\' address prefixes'),
  mapType('RINGBUF', 27, 'ringbuf', [5, 8], 'the policy events'),
  mapType('DEVMAP_HASH', 25, 'devmap_hash', [5, 4], 'the ports of inline mode'),
  mapType('XSKMAP', 17, 'xskmap', [4, 18], 'the delay line\'s sockets'),
  {
    name: 'ARRAY with BPF_F_MMAPABLE',
    since: [5, 5],
    how: 'a map created and closed',
    probe: (p) => fromErrno(p.mmapableArray(), [os.constants.errno.EINVAL]),
    without: 'bae.o holds two (the delay line\'s transmit slots), so the kernel refuses to load it',
    required: true,
  },
  xdpHelper('bpf_loop', 181, [5, 17], 'the policy stage\'s candidate loop'),
  xdpHelper('bpf_xdp_load_bytes', 189, [5, 18], 'the emulation actions'),
  xdpHelper('bpf_xdp_store_bytes', 190, [5, 18], 'the emulation actions and the delay line\'s XDP transmitter'),
  {
    name: 'BPF_F_TEST_XDP_LIVE_FRAMES',
    since: [5, 18],
    how: 'one BPF_PROG_TEST_RUN of a program that drops the frame',
    probe: (p) => fromErrno(p.xdpLiveFrames(), [os.constants.errno.EINVAL]),
    without: 'the delay line has no XDP transmitter: every frame leaves through its AF_XDP sockets',
    required: false,
  },
  {
    name: 'AF_XDP',
    since: [4, 18],
    how: 'socket(AF_XDP) opened and closed',
    probe: (p) => fromErrno(p.xsk().socket, [os.constants.errno.EAFNOSUPPORT]),
    without: '`bae agent` cannot hold a delay line: no delay, duplicate or reorder policies',
    required: false,
  },
  {
    name: 'XDP_MAX_TX_SKB_BUDGET',
    since: [6, 17],
    how: 'setsockopt on an AF_XDP socket',
    // A kernel that knows the option refuses the value on a socket without a TX ring (EACCES).
    probe: (p) => {
      const x = p.xsk();
      if (x.socket !== 0) return { errno: x.socket };
      return x.txBudget === EACCES || x.txBudget === 0 ? { present: true } : fromErrno(x.txBudget, [ENOPROTOOPT]);
    },
    without: 'the delay line\'s socket path sends 32 frames per kick',
    required: false,
  },
];

// ---- the assessment ----------------------------------------------------------------------------

// capability(7) numbers
const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;
const has = (caps: bigint, bit: number): boolean => ((caps >> BigInt(bit)) & 1n) === 1n;

function privilegesCheck(f: HostFacts): FeatureCheck {
  const caps = f.capEff ?? 0n;
  const sysAdmin = has(caps, CAP_SYS_ADMIN); // stands in for CAP_BPF and CAP_PERFMON
  const missing = [
    ...(has(caps, CAP_BPF) || sysAdmin ? [] : ['CAP_BPF']),
    ...(has(caps, CAP_NET_ADMIN) ? [] : ['CAP_NET_ADMIN']),
    ...(has(caps, CAP_PERFMON) || sysAdmin ? [] : ['CAP_PERFMON']),
  ];
  const problems = [
    ...(f.uid === 0 ? [] : [`not root (uid ${f.uid})`]),
    ...(missing.length ? [`CapEff lacks ${missing.join(', ')}`] : []),
    ...(f.initialUserNs ? [] : ['in a user namespace, where the kernel refuses BPF whatever the capabilities']),
  ];
  if (problems.length === 0) {
    return { name: 'privileges', ok: true, detail: 'root with CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON in the initial user namespace' };
  }
  return { name: 'privileges', ok: false, detail: `${problems.join('; ')}: run bae as root on the host (sudo)` };
}

function kernelCheck(release: string): { check: FeatureCheck; kernel: KernelVersion | undefined } {
  try {
    const kernel = requireSupportedKernel(release);
    return { kernel, check: { name: 'kernel', ok: true, detail: `Linux ${release} (bae supports ${lineText(OLDEST_KERNEL)} and newer)` } };
  } catch (err) {
    if (!(err instanceof UnsupportedKernelError)) throw err;
    return { kernel: parseKernelRelease(release), check: { name: 'kernel', ok: false, detail: err.message } };
  }
}

function hostChecks(f: HostFacts): FeatureCheck[] {
  const mib = (n: number) => `${(n / (1 << 20)).toFixed(1)} MiB`;
  const jitOff = f.jit === '0';
  return [
    f.bpffsMounted
      ? { name: 'bpffs', ok: true, detail: `mounted at ${BPFFS}` }
      : { name: 'bpffs', ok: true, degraded: true, detail: `not mounted at ${BPFFS} (in this mount namespace): \`bae load\` mounts it, as bpftool does` },
    f.btfBytes !== undefined
      ? { name: 'BTF', ok: true, detail: `${VMLINUX_BTF} (${mib(f.btfBytes)})` }
      : { name: 'BTF', ok: false, detail: `${VMLINUX_BTF} is missing: bae.o relocates against kernel types (CO-RE), which needs a kernel built with CONFIG_DEBUG_INFO_BTF` },
    f.jit === undefined
      ? { name: 'BPF JIT', ok: true, skipped: true, detail: 'net.core.bpf_jit_enable is not readable here' }
      : jitOff
        ? { name: 'BPF JIT', ok: true, degraded: true, detail: 'off (net.core.bpf_jit_enable=0): programs run in the interpreter, several times slower' }
        : { name: 'BPF JIT', ok: true, detail: `on (net.core.bpf_jit_enable=${f.jit})` },
  ];
}

function featureCheck(feature: KernelFeature, kernel: KernelVersion | undefined, probes: KernelProbes | undefined, notProbed: string): FeatureCheck {
  const byVersion = kernel !== undefined && atLeast(kernel, feature.since);
  const linux = kernel ? `Linux ${lineOf(kernel)}` : 'this kernel';
  const since = `${lineText(feature.since)}+`;
  let answer: Answer | undefined;
  let why = notProbed;
  if (probes) {
    try {
      answer = feature.probe(probes);
    } catch (err) {
      why = `the probe failed: ${(err as Error).message}`;
    }
  }
  if (answer !== undefined && 'present' in answer) {
    if (answer.present) return { name: feature.name, ok: true, detail: `present (probed: ${feature.how})` };
    const odd = byVersion ? ', yet probed absent: a kernel built without it?' : '';
    return missing(feature, `not in ${linux} (${since}${odd}): ${feature.without}`);
  }
  if (answer !== undefined) why = `the probe got ${errnoName(answer.errno)}`;
  if (byVersion) return { name: feature.name, ok: true, detail: `${linux} has it (${since}; by kernel version, not probed: ${why})` };
  return missing(feature, `not in ${linux} (${since}; by kernel version, not probed: ${why}): ${feature.without}`);
}

function missing(feature: KernelFeature, detail: string): FeatureCheck {
  return feature.required ? { name: feature.name, ok: false, detail } : { name: feature.name, ok: true, degraded: true, detail };
}

/** Judges the facts and the probes' answers; without probes (no privileges) the kernel version decides. */
export function assessFeatures(facts: HostFacts, probes: KernelProbes | undefined): FeatureReport {
  const privileges = privilegesCheck(facts);
  const { check, kernel } = kernelCheck(facts.release);
  const usable = privileges.ok ? probes : undefined;
  const notProbed = probes ? 'needs root on the host' : 'no probes';
  const checks = [privileges, check, ...hostChecks(facts), ...KERNEL_FEATURES.map((f) => featureCheck(f, kernel, usable, notProbed))];
  return { kernel, probed: usable !== undefined, checks, ok: checks.every((c) => c.ok) };
}

let cached: FeatureReport | undefined;

/** This host's report, probed once per process. */
export function probeFeatures(): FeatureReport {
  cached ??= assessFeatures(hostFacts(), nativeProbes());
  return cached;
}

/** The features whose absence the delay line (`bae agent`) works around. */
export const DELAY_LINE_FEATURES: readonly string[] = ['AF_XDP', 'BPF_F_TEST_XDP_LIVE_FRAMES', 'XDP_MAX_TX_SKB_BUDGET'];

/**
 * One line per degraded check, "XDP_MAX_TX_SKB_BUDGET: not in Linux 6.1 (6.17+): what is lost",
 * for a log; `names` keeps only those checks.
 */
export function degradations(report: FeatureReport = probeFeatures(), names?: readonly string[]): string[] {
  return report.checks.filter((c) => c.degraded && (names === undefined || names.includes(c.name))).map((c) => `${c.name}: ${c.detail}`);
}
