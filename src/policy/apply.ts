// Writes a compiled policy set into the kernel tables, atomically for packets: everything goes
// into the idle generation, then one write flips policy_ctl.gen. A packet reads gen once, so it
// sees the old set or the new one, never a mix. The generation written now was left by the
// previous flip; a packet still on it would have to have started before that flip, and an XDP
// run takes microseconds, so waiting until GRACE_NS has passed since the flip is enough.
import type { BpfMap } from '../datapath';
import {
  AF_INET,
  AF_INET6,
  POLICY,
  POLICY_MAPS,
  decodePolicyCtl,
  decodePolicyLpmKey,
  decodePolicyComboKey,
  decodePolicyTriggerKey,
  encodePolicyCombo,
  encodePolicyComboKey,
  encodePolicyCtl,
  encodePolicyLpmKey,
  encodePolicyRule,
  LAYOUTS,
  type PolicyCtl,
} from '../datapath/layout';
import type { CompiledRule, CompiledSet } from './compile';
import type { Family } from './net';

export type PolicyMapName = keyof typeof POLICY_MAPS;
export type PolicyMaps = Record<PolicyMapName, BpfMap>;

/** The policy maps of a loaded program: `get` is collection.map or openLoadedMap. */
export function policyMapsOf(get: (name: string) => BpfMap): PolicyMaps {
  return Object.fromEntries(Object.entries(POLICY_MAPS).map(([k, name]) => [k, get(name)])) as PolicyMaps;
}

/** Maps whose bytes an apply may change (the ring buffer has no bytes to compare). */
export const POLICY_TABLE_MAPS: readonly PolicyMapName[] = ['ctl', 'src', 'dst', 'ports', 'combos', 'rules', 'triggers', 'counters', 'blocklist', 'stats'];

/** A generation is rewritten no sooner than this after the flip that left it. */
export const GRACE_NS = 20_000_000n;

export interface ApplyOptions {
  /** CLOCK_MONOTONIC in ns (the clock of bpf_ktime_get_ns); injectable for tests. */
  monotonicNs?: () => bigint;
  sleep?: (ms: number) => Promise<void>;
  /** Called when the idle generation is written, just before the flip (tests look at packets then). */
  beforeFlip?: () => void | Promise<void>;
}

export interface ApplyResult {
  gen: number;
  rules: number;
  /** Stable ids whose counters and trigger state were dropped (policies no longer in the set). */
  removed: number[];
  ms: { clear: number; write: number; total: number };
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

export const familyCode = (f: Family): number => (f === 4 ? AF_INET : AF_INET6);

export function ruleValue(r: CompiledRule): Buffer {
  return encodePolicyRule({
    id: r.id,
    actionMask: r.actionMask,
    ifindex: r.ifindex,
    verdict: r.verdict,
    tcpFlagsMask: r.tcpFlagsMask,
    tcpFlagsValue: r.tcpFlagsValue,
    metric: r.metric,
    op: r.op,
    scope: r.scope,
    threshold: r.threshold,
    bucketNs: r.bucketNs,
    forNs: r.forNs,
    cooldownNs: r.cooldownNs,
    blockTtlNs: r.blockTtlNs,
    params: [0n, 0n, 0n, 0n],
  });
}

export function readCtl(maps: PolicyMaps): PolicyCtl {
  const raw = maps.ctl.lookup(u32(0));
  if (!raw) throw new Error('policy_ctl has no slot 0');
  return decodePolicyCtl(raw);
}

function protoBits(bits: boolean[]): [bigint, bigint, bigint, bigint] {
  const words: [bigint, bigint, bigint, bigint] = [0n, 0n, 0n, 0n];
  bits.forEach((b, p) => {
    if (b) words[p >> 6] = words[p >> 6]! | (1n << BigInt(p & 63));
  });
  return words;
}

/** Every key of a map (batch where the map type has it). */
function allKeys(map: BpfMap): Buffer[] {
  return map.lookupBatch().keys;
}

function deleteKeys(map: BpfMap, keys: Buffer[]): void {
  if (keys.length === 0) return;
  try {
    map.deleteBatch(keys);
  } catch {
    for (const k of keys) map.delete(k);
  }
}

function writeEntries(map: BpfMap, keys: Buffer[], values: Buffer[]): void {
  if (keys.length === 0) return;
  try {
    map.updateBatch(keys, values);
  } catch (err) {
    const errno = (err as { errno?: number }).errno;
    if (errno !== 22 && errno !== 95 && errno !== 524) throw err;
    keys.forEach((k, i) => map.update(k, values[i]!));
  }
}

let portKeyCache: Buffer[][] | undefined;
/** Keys of the port-class array for one generation: sport then dport, 65536 each. */
function portKeys(gen: number): Buffer[] {
  portKeyCache ??= [[], []];
  const cached = portKeyCache[gen]!;
  if (cached.length === 0) {
    for (let i = 0; i < 2 * POLICY.ports; i++) cached.push(u32(gen * 2 * POLICY.ports + i));
  }
  return cached;
}

const monotonic = () => process.hrtime.bigint();
const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Writes `set` into the idle generation and flips to it. The set must come from compilePolicies(). */
export async function applyCompiled(maps: PolicyMaps, set: CompiledSet, options: ApplyOptions = {}): Promise<ApplyResult> {
  const now = options.monotonicNs ?? monotonic;
  const sleep = options.sleep ?? sleepMs;
  const t0 = performance.now();
  const ctl = readCtl(maps);
  const active = ctl.gen & 1;
  const next = active ^ 1;

  const sinceFlip = now() - ctl.flipNs;
  if (ctl.flipNs !== 0n && sinceFlip >= 0n && sinceFlip < GRACE_NS) await sleep(Number((GRACE_NS - sinceFlip) / 1_000_000n) + 1);

  // Clear what the idle generation held: its prefixes and combinations (rules and ports are
  // overwritten slot by slot; rule slots past the new count are never referenced).
  deleteKeys(maps.src, allKeys(maps.src).filter((k) => decodePolicyLpmKey(k).gen === next));
  deleteKeys(maps.dst, allKeys(maps.dst).filter((k) => decodePolicyLpmKey(k).gen === next));
  deleteKeys(maps.combos, allKeys(maps.combos).filter((k) => decodePolicyComboKey(k).gen === next));
  const t1 = performance.now();

  writeEntries(
    maps.rules,
    set.rules.map((_, slot) => u32(next * POLICY.maxRules + slot)),
    set.rules.map(ruleValue),
  );
  const classValues: Buffer[] = new Array<Buffer>(2 * POLICY.ports);
  const valueOf = new Map<number, Buffer>();
  const classBuf = (c: number) => {
    let b = valueOf.get(c);
    if (!b) valueOf.set(c, (b = u32(c)));
    return b;
  };
  for (let p = 0; p < POLICY.ports; p++) {
    classValues[p] = classBuf(set.sportClass[p]!);
    classValues[POLICY.ports + p] = classBuf(set.dportClass[p]!);
  }
  writeEntries(maps.ports, portKeys(next), classValues);
  const classValue = (c: number) => u32(c);
  writeEntries(
    maps.src,
    set.srcPrefixes.map((e) => encodePolicyLpmKey({ gen: next, family: familyCode(e.prefix.family) as 2 | 10, addr: e.prefix.addr, len: e.prefix.len })),
    set.srcPrefixes.map((e) => classValue(e.cls)),
  );
  writeEntries(
    maps.dst,
    set.dstPrefixes.map((e) => encodePolicyLpmKey({ gen: next, family: familyCode(e.prefix.family) as 2 | 10, addr: e.prefix.addr, len: e.prefix.len })),
    set.dstPrefixes.map((e) => classValue(e.cls)),
  );
  writeEntries(
    maps.combos,
    set.combos.map((c) => encodePolicyComboKey({ gen: next, proto: c.proto, sportClass: c.sportClass, dportClass: c.dportClass, srcClass: c.srcClass, dstClass: c.dstClass })),
    set.combos.map((c) => encodePolicyCombo(c.slots)),
  );
  // Counters of new policies start at zero; those of unchanged policies (same id) keep counting.
  const existing = new Set(allKeys(maps.counters).map((k) => k.readUInt32LE(0)));
  const zero = Buffer.alloc(LAYOUTS.policy_counters!.size);
  const fresh = set.rules.filter((r) => !existing.has(r.id));
  writeEntries(maps.counters, fresh.map((r) => u32(r.id)), fresh.map(() => zero));

  // The idle generation's header first (packets do not read it), then the flip.
  const g = [...ctl.g] as PolicyCtl['g'];
  g[next] = { rules: set.rules.length, protoBits: protoBits(set.protoBits) };
  maps.ctl.update(u32(0), encodePolicyCtl({ gen: active, flipNs: ctl.flipNs, g }));
  await options.beforeFlip?.();
  maps.ctl.update(u32(0), encodePolicyCtl({ gen: next, flipNs: now(), g }));
  const t2 = performance.now();

  // State of policies that left the set: packets on the old generation may still look their
  // counters up (a miss is skipped), so dropping them now is safe.
  const ids = new Set(set.rules.map((r) => r.id));
  const removed = [...existing].filter((id) => !ids.has(id));
  if (removed.length) {
    const gone = new Set(removed);
    deleteKeys(maps.counters, removed.map(u32));
    deleteKeys(maps.triggers, allKeys(maps.triggers).filter((k) => gone.has(decodePolicyTriggerKey(k).id)));
  }
  return { gen: next, rules: set.rules.length, removed, ms: { clear: t1 - t0, write: t2 - t1, total: performance.now() - t0 } };
}

/** A byte-exact dump of every policy table (ring buffer excluded), to prove an apply changed nothing. */
export function dumpPolicyMaps(maps: PolicyMaps): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of POLICY_TABLE_MAPS) {
    const { keys, values } = maps[name].lookupBatch();
    const rows = keys.map((k, i) => `${k.toString('hex')}=${values[i]!.toString('hex')}`).sort();
    out[name] = rows.join('\n');
  }
  return out;
}
