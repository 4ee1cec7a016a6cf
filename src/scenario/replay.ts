// Offline replay: frames through the bae program under BPF_PROG_TEST_RUN with the test clock,
// the policies applied to the program's own (unpinned) maps, and a decision log per frame.
//
// The program is the one `bae load` attaches (build/bpf/bae.o), in inline mode (delay classes are
// inline only; with no peer port a forwarded frame is `pass`), loaded afresh
// for each replay: nothing is shared with a loaded bae, so a replay never touches the traffic of
// the box. Each frame runs at its own time on the test clock, so trigger windows, rate buckets
// and block expiries see the recorded timeline; the emulation actions draw from their seeded
// random sequences. Two replays of the same frames, policies and seed give the same log:
// that is what `bae replay` checks (docs/scenarios.md).
import * as crypto from 'node:crypto';
import {
  CONSTANTS,
  Clock,
  DEFAULT_HTTP_PORTS,
  DELAY_MAPS,
  MAPS,
  Mode,
  PROGRAM,
  RingBuffer,
  XDP_PASS,
  decodePolicyEvent,
  encodeHttpPorts,
  fillHttpPorts,
  decodeAddress,
  loader,
  loadCollection,
  sumPolicyDelayStatsPerCpu,
  type BpfMap,
  type Collection,
} from '../datapath';
import { EVENT_KINDS, applyCompiled, compilePolicies, policyMapsOf, readCounters, type Policy, type PolicyMaps } from '../policy';

export interface ReplayFrame {
  /** Time of the frame on the clock the kernel read (ns); only differences and bucket edges matter. */
  timeNs: bigint;
  /** Interface the frame arrived on (policies with `iface` match on it); 0: unknown. */
  ifindex: number;
  /** The frame from its Ethernet header on. */
  data: Buffer;
}

export interface ReplayOptions {
  /** Set-level seed of the emulation actions (a policy's own spec.seed wins). */
  seed?: bigint;
  /** Monitor-only, as `bae policy apply --monitor`. */
  monitor?: boolean;
  /** TCP ports read for HTTP/1.x lines (default as `bae load`). */
  httpPorts?: readonly number[];
  /** The ifindex a policy's `iface` stands for in the recording (default: none, such a policy
   * matches no frame: a replay has no interfaces of its own). */
  ifindexOf?: (iface: string) => number;
  /** The BPF object (default: the one `bae load` uses). */
  objectPath?: string;
  /** Called every `progressEvery` frames (default 10000) with the frames done. */
  onProgress?: (done: number, total: number) => void;
  progressEvery?: number;
}

/** What the program did with one frame. */
export interface Decision {
  index: number;
  timeNs: bigint;
  /** 'pass' | 'drop' | 'tx' | 'redirect' | 'aborted'. */
  verdict: string;
  /** Policies whose actions applied to the frame, in name order. */
  applied: string[];
  /** Policies whose trigger fired on it. */
  fired: string[];
  /** Policies that wrote a blocklist entry on it. */
  blocked: string[];
  /** A delay-class action chose it (the delay line would have held it). */
  delayed: boolean;
  /** When the frame left changed (corrupt, truncate, tcp-flags): its length and digest. */
  modified?: { len: number; sha256: string };
  /** Kernel events it caused, as `kind policy src>dst value`. */
  events: string[];
}

export interface ReplayResult {
  decisions: Decision[];
  /** Decision counts by verdict, and of delays, modifications, fires, blocks and events. */
  totals: Record<string, number>;
}

const VERDICTS = ['aborted', 'drop', 'pass', 'tx', 'redirect'];

class Replayer {
  readonly collection: Collection;
  readonly maps: PolicyMaps;
  readonly clock: BpfMap;
  readonly delayStats: BpfMap;
  readonly ring: RingBuffer;
  readonly pending: Buffer[] = [];

  constructor(objectPath: string, httpPorts: readonly number[]) {
    this.collection = loadCollection(objectPath, {
      constants: { [CONSTANTS.mode]: Mode.inline, [CONSTANTS.clock]: Clock.test },
    });
    try {
      this.maps = policyMapsOf((n) => this.collection.map(n));
      this.clock = this.collection.map(MAPS.testClock);
      this.delayStats = this.collection.map(DELAY_MAPS.stats);
      if (this.collection.maps.has(MAPS.httpPorts)) fillHttpPorts(this.collection.map(MAPS.httpPorts), encodeHttpPorts(httpPorts));
      this.ring = new RingBuffer(this.maps.events, (r) => this.pending.push(Buffer.from(r)));
    } catch (err) {
      this.collection.close();
      throw err;
    }
  }

  setClock(ns: bigint): void {
    const v = Buffer.alloc(8);
    v.writeBigUInt64LE(ns);
    this.clock.update(Buffer.alloc(4), v);
  }

  delayNoSocket(): bigint {
    return sumPolicyDelayStatsPerCpu(this.delayStats.lookupPerCpu(Buffer.alloc(4)) ?? []).noSocket;
  }

  close(): void {
    this.ring.close();
    this.collection.close();
  }
}

/**
 * Runs `frames` in order through a fresh bae with `policies` applied; returns the decision
 * log. Throws a PolicyError when the policies do not compile (nothing else is touched).
 */
export async function replayFrames(frames: readonly ReplayFrame[], policies: readonly Policy[], opts: ReplayOptions = {}): Promise<ReplayResult> {
  const compiled = compilePolicies(policies, {
    requireKernelActions: true,
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.monitor ? { monitor: true } : {}),
    // ifindex 0 would match every interface: an unknown name matches none instead.
    ifindexOf: (iface) => opts.ifindexOf?.(iface) || 0xffffffff,
  });
  const names = new Map(compiled.rules.map((r) => [r.id, r.policy.name]));
  const rp = new Replayer(opts.objectPath ?? loader.DEFAULT_OBJECT, opts.httpPorts ?? DEFAULT_HTTP_PORTS);
  const decisions: Decision[] = [];
  const totals: Record<string, number> = {};
  const count = (k: string, n = 1) => (totals[k] = (totals[k] ?? 0) + n);
  try {
    // The first frame's time starts the clock: windows and buckets are as the recording saw them.
    if (frames.length) rp.setClock(frames[0]!.timeNs);
    await applyCompiled(rp.maps, compiled, { sleep: async () => undefined, grace: async () => undefined });
    let before = readCounters(rp.maps);
    let noSocket = rp.delayNoSocket();
    const every = opts.progressEvery ?? 10_000;
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      rp.setClock(f.timeNs);
      const res = rp.collection.program(PROGRAM).test(f.data, f.ifindex ? { ctxIn: { ingressIfindex: f.ifindex } } : {});
      const after = readCounters(rp.maps);
      const d: Decision = { index: i, timeNs: f.timeNs, verdict: VERDICTS[res.verdict] ?? `verdict-${res.verdict}`, applied: [], fired: [], blocked: [], delayed: false, events: [] };
      for (const [id, c] of after) {
        const b = before.get(id);
        const name = names.get(id) ?? `#${id}`;
        if (c.applied !== (b?.applied ?? 0n)) d.applied.push(name);
        if (c.fired !== (b?.fired ?? 0n)) d.fired.push(name);
        if (c.blocks !== (b?.blocks ?? 0n)) d.blocked.push(name);
      }
      before = after;
      d.applied.sort();
      d.fired.sort();
      d.blocked.sort();
      const ns = rp.delayNoSocket();
      d.delayed = ns !== noSocket;
      noSocket = ns;
      if (res.verdict === XDP_PASS && !res.data.equals(f.data)) {
        d.modified = { len: res.data.length, sha256: crypto.createHash('sha256').update(res.data).digest('hex').slice(0, 16) };
      }
      rp.ring.consume();
      for (const raw of rp.pending.splice(0)) {
        const e = decodePolicyEvent(raw);
        const addr = (a: Buffer) => (e.family ? decodeAddress(e.family, a) : '-');
        d.events.push(`${EVENT_KINDS[e.kind] ?? `kind-${e.kind}`} ${names.get(e.policyId) ?? `#${e.policyId}`} ${addr(e.addrA)}>${addr(e.addrB)} ${e.value}`);
      }
      count(d.verdict);
      if (d.delayed) count('delayed');
      if (d.modified) count('modified');
      if (d.fired.length) count('fired', d.fired.length);
      if (d.blocked.length) count('blocked', d.blocked.length);
      if (d.events.length) count('events', d.events.length);
      decisions.push(d);
      if (opts.onProgress && (i + 1) % every === 0) opts.onProgress(i + 1, frames.length);
    }
  } finally {
    rp.close();
  }
  return { decisions, totals };
}

/** One frame whose decisions differ between two logs. */
export interface DecisionDifference {
  index: number;
  /** Fields that differ, each as [first, second]. */
  fields: Record<string, [string, string]>;
}

const FIELDS = ['verdict', 'applied', 'fired', 'blocked', 'delayed', 'modified', 'events'] as const;

function show(d: Decision | undefined, f: (typeof FIELDS)[number]): string {
  if (!d) return '(no frame)';
  const v = d[f];
  if (v === undefined) return '-';
  if (Array.isArray(v)) return v.join(', ') || '-';
  if (typeof v === 'object') return `${v.len} bytes ${v.sha256}`;
  return String(v);
}

/** Frames whose decisions differ between `a` and `b` (a missing frame differs in every field). */
export function compareDecisions(a: readonly Decision[], b: readonly Decision[]): DecisionDifference[] {
  const out: DecisionDifference[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const fields: Record<string, [string, string]> = {};
    for (const f of FIELDS) {
      const x = show(a[i], f);
      const y = show(b[i], f);
      if (x !== y) fields[f] = [x, y];
    }
    if (Object.keys(fields).length) out.push({ index: i, fields });
  }
  return out;
}
