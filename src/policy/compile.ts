// Policies -> the tables of the kernel's policy stage (bpf/policy.h). No bytecode: every policy
// set becomes map entries of a fixed program.
//
// One packet costs a fixed number of lookups however many rules there are:
//   - src and dst address -> LPM trie -> prefix class: the longest inserted prefix that holds the
//     address (0: none). Inserted prefixes nest or are disjoint, so that class fixes the set of
//     rule prefixes that hold the address.
//   - sport and dport -> array -> port class: the elementary interval between range boundaries.
//   - proto -> itself when some rule names it, else 255 ("any other").
//   - (proto, src class, dst class, sport class, dport class) -> hash -> up to 8 candidate rules,
//     already in decision order (order.ts). TCP flags and the interface are checked per candidate.
// A rule lands in every combination its match covers; sets whose combinations do not fit the
// maps, or where more than 8 rules overlap, are refused with "too many rules for the maps".
import type { PolicyEmul } from '../datapath/layout';
import { ACTION_BY_KIND } from './actions';
import { compileEmul, ruleSeed } from './emulation';
import { assignDelayClasses, type DelayClass } from './delay';
import { PolicyError } from './errors';
import { METRIC_BY_NAME } from './metrics';
import { MAX_CANDIDATES, SCOPE_IDS, WINDOW_BUCKETS, type Policy, type PortRange } from './model';
import { maskAddress, prefixKey, type Prefix } from './net';
import { orderPolicies } from './order';

/** Capacities of the kernel maps, per generation (bpf/policy.h POLICY_MAX_*). */
export interface PolicyLimits {
  rules: number;
  prefixes: number;
  combos: number;
  portClasses: number;
}

export const DEFAULT_LIMITS: PolicyLimits = {
  rules: 16384,
  prefixes: 16384,
  combos: 65536,
  // A class is 15 bits: the 16th marks classes some combination has (POLICY_PORT_USED).
  portClasses: 32767,
};

/** The proto class of every protocol no rule names. */
export const PROTO_OTHER = 255;

export const ACTION_VERDICT_NONE = 0;
export const ACTION_VERDICT_PASS = 1;
export const ACTION_VERDICT_DROP = 2;

export const TRIGGER_OP_GT = 0;
export const TRIGGER_OP_GE = 1;

/** One policy as the kernel's struct policy_rule holds it. */
export interface CompiledRule {
  policy: Policy;
  id: number;
  actionMask: number;
  /** ACTION_VERDICT_*: what the policy decides when it applies. */
  verdict: number;
  tcpFlagsMask: number;
  tcpFlagsValue: number;
  /** 0: any interface. */
  ifindex: number;
  /** 0: no trigger (the policy applies to every matching packet). */
  metric: number;
  op: number;
  scope: number;
  threshold: bigint;
  bucketNs: bigint;
  /** 0: until the policy is removed. */
  forNs: bigint;
  cooldownNs: bigint;
  blockTtlNs: bigint;
  /** Delay-class actions (delay.ts): the delay line's class, 0 none. */
  delayClass: number;
  /** Emulation actions (emulation.ts): struct policy_emul. */
  emul: PolicyEmul;
}

export interface CompiledPrefix {
  prefix: Prefix;
  cls: number;
}

export interface CompiledCombo {
  proto: number;
  srcClass: number;
  dstClass: number;
  sportClass: number;
  dportClass: number;
  /** Rule slots in decision order. */
  slots: number[];
}

export interface CompiledSet {
  /** In decision order; a rule's index is its slot. */
  rules: CompiledRule[];
  srcPrefixes: CompiledPrefix[];
  dstPrefixes: CompiledPrefix[];
  /** Protocols some rule names (bit p set for protocol p). */
  protoBits: boolean[];
  sportClass: Uint16Array;
  dportClass: Uint16Array;
  combos: CompiledCombo[];
  /** Delay-class actions (delay.ts): the classes the rules use, for the agent's delay line. */
  delayClasses: DelayClass[];
}

export interface CompileOptions {
  limits?: Partial<PolicyLimits>;
  /** Resolves match.iface; without it interfaces compile to ifindex 0 (any), as `policy check` does. */
  ifindexOf?: (name: string, policy: Policy) => number;
  /** Set-level seed of the emulation actions' random sequences (a policy's spec.seed wins);
   * undefined: each policy without a seed gets a random one. */
  seed?: bigint;
  /** Refuse actions the datapath cannot carry out (apply does; check does not). */
  requireKernelActions?: boolean;
}

function capacity(p: Policy, detail: string): PolicyError {
  return new PolicyError({ ...p.source, policy: p.name }, `too many rules for the maps: ${detail}`);
}

/**
 * A number or string that identifies the prefix of `len` bits of an address: IPv4 as a number
 * (no allocation on the hot path of a 10k-rule compile), IPv6 as text.
 */
function maskedKey(family: 4 | 6, addr: Uint8Array, len: number): number | string {
  if (family === 4) {
    const a = ((addr[0]! << 24) | (addr[1]! << 16) | (addr[2]! << 8) | addr[3]!) >>> 0;
    const masked = len === 0 ? 0 : len === 32 ? a : (a & ~(0xffffffff >>> len)) >>> 0;
    return len * 4294967296 + masked;
  }
  return prefixKey({ family, addr: maskAddress(addr, len), len });
}

/** Prefix classes of one dimension; returns the inserted prefixes and each policy's classes (undefined: any). */
function prefixClasses(
  policies: Policy[],
  pick: (p: Policy) => Prefix[] | undefined,
  what: string,
  limit: number,
): { prefixes: CompiledPrefix[]; classesOf: (number[] | undefined)[]; all: number[] } {
  const byKey = new Map<number | string, { prefix: Prefix; cls: number; refs: number[] }>();
  policies.forEach((p, i) => {
    for (const prefix of pick(p) ?? []) {
      const key = maskedKey(prefix.family, prefix.addr, prefix.len);
      let e = byKey.get(key);
      if (!e) {
        if (byKey.size >= limit) throw capacity(p, `more than ${limit} distinct ${what} prefixes`);
        e = { prefix, cls: byKey.size + 1, refs: [] };
        byKey.set(key, e);
      }
      if (e.refs[e.refs.length - 1] !== i) e.refs.push(i);
    }
  });
  // Lengths in use per family: the ancestors of a prefix are found by masking to each of them.
  const lengths: Record<4 | 6, Set<number>> = { 4: new Set(), 6: new Set() };
  for (const { prefix } of byKey.values()) lengths[prefix.family].add(prefix.len);
  const sets: (number[] | undefined)[] = policies.map(() => undefined);
  for (const e of byKey.values()) {
    for (const len of lengths[e.prefix.family]) {
      if (len > e.prefix.len) continue;
      const ancestor = byKey.get(maskedKey(e.prefix.family, e.prefix.addr, len));
      if (ancestor) for (const i of ancestor.refs) (sets[i] ??= []).push(e.cls);
    }
  }
  const all = [0];
  for (const e of byKey.values()) all.push(e.cls);
  return {
    prefixes: [...byKey.values()].map((e) => ({ prefix: e.prefix, cls: e.cls })),
    // A class is added once per ancestor in the policy's list: nested entries of one list repeat it.
    classesOf: policies.map((p, i) => (pick(p) ? [...new Set(sets[i] ?? [])].sort((a, b) => a - b) : undefined)),
    all,
  };
}

/** Port classes: elementary intervals between range boundaries; 0 for ports no range holds. */
function portClasses(
  policies: Policy[],
  pick: (p: Policy) => PortRange[] | undefined,
  what: string,
  limit: number,
): { table: Uint16Array; classesOf: (number[] | undefined)[]; all: number[] } {
  const cuts = new Set<number>([0, 65536]);
  for (const p of policies) for (const r of pick(p) ?? []) {
    cuts.add(r.lo);
    cuts.add(r.hi + 1);
  }
  const bounds = [...cuts].sort((a, b) => a - b);
  // Interval k is [bounds[k], bounds[k+1]); it gets a class when some range covers it.
  const covered = new Array<boolean>(bounds.length - 1).fill(false);
  const intervalsOf = (r: PortRange): [number, number] => {
    const first = bisect(bounds, r.lo);
    const last = bisect(bounds, r.hi + 1) - 1;
    return [first, last];
  };
  for (const p of policies) for (const r of pick(p) ?? []) {
    const [a, b] = intervalsOf(r);
    for (let k = a; k <= b; k++) covered[k] = true;
  }
  const classOfInterval = new Array<number>(bounds.length - 1).fill(0);
  let next = 1;
  covered.forEach((c, k) => {
    if (c) classOfInterval[k] = next++;
  });
  if (next - 1 > limit) throw capacity(policies[0]!, `more than ${limit} ${what} port classes`);
  const table = new Uint16Array(65536);
  for (let k = 0; k < bounds.length - 1; k++) table.fill(classOfInterval[k]!, bounds[k]!, bounds[k + 1]!);
  const classesOf = policies.map((p) => {
    const ranges = pick(p);
    if (!ranges) return undefined;
    const s = new Set<number>();
    for (const r of ranges) {
      const [a, b] = intervalsOf(r);
      for (let k = a; k <= b; k++) s.add(classOfInterval[k]!);
    }
    return [...s].sort((a, b) => a - b);
  });
  const all = [0];
  for (let c = 1; c < next; c++) all.push(c);
  return { table, classesOf, all };
}

function bisect(sorted: number[], value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (sorted[mid]! <= value) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export function compileRule(p: Policy, ifindex: number, setSeed?: bigint): CompiledRule {
  let actionMask = 0;
  let verdict = ACTION_VERDICT_NONE;
  let blockTtlNs = 0n;
  for (const a of p.actions) {
    const def = ACTION_BY_KIND.get(a.kind)!;
    actionMask |= 1 << def.bit;
    if (def.verdict === 'pass') verdict = ACTION_VERDICT_PASS;
    if (def.verdict === 'drop') verdict = ACTION_VERDICT_DROP;
    if (a.kind === 'block') blockTtlNs = a.params.ttl as bigint;
  }
  const t = p.trigger;
  return {
    policy: p,
    id: p.id,
    actionMask,
    verdict,
    tcpFlagsMask: p.match.tcpFlags?.mask ?? 0,
    tcpFlagsValue: p.match.tcpFlags?.value ?? 0,
    ifindex,
    metric: t ? METRIC_BY_NAME.get(t.metric)!.id : 0,
    op: t?.op === '>=' ? TRIGGER_OP_GE : TRIGGER_OP_GT,
    scope: t ? SCOPE_IDS[t.scope] : 0,
    threshold: t?.threshold ?? 0n,
    bucketNs: t ? t.withinNs / BigInt(WINDOW_BUCKETS) : 0n,
    forNs: p.forNs ?? 0n,
    cooldownNs: p.cooldownNs,
    blockTtlNs,
    delayClass: 0,
    emul: compileEmul(p, ruleSeed(p, setSeed)),
  };
}

/** Validates the set as a whole and builds every table; throws a PolicyError before anything is written. */
export function compilePolicies(input: readonly Policy[], options: CompileOptions = {}): CompiledSet {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const policies = orderPolicies(input);
  const seenIds = new Map<number, Policy>();
  for (const p of policies) {
    const prev = seenIds.get(p.id);
    if (prev) throw new PolicyError({ ...p.source, policy: p.name }, `stable id ${p.id} collides with policy '${prev.name}'; rename one of them`);
    seenIds.set(p.id, p);
    if (options.requireKernelActions) {
      for (const a of p.actions) {
        if (!ACTION_BY_KIND.get(a.kind)!.kernel) {
          throw new PolicyError({ ...(a.source ?? p.source), policy: p.name }, `action '${a.kind}' is not supported by this datapath yet (policy check accepts it; apply cannot carry it out)`);
        }
      }
    }
  }
  if (policies.length > limits.rules) throw capacity(policies[limits.rules]!, `more than ${limits.rules} policies`);

  const rules = policies.map((p) => compileRule(p, p.match.iface && options.ifindexOf ? options.ifindexOf(p.match.iface, p) : 0, options.seed));
  // Delay-class actions: one delay-line class per distinct parameter set (delay.ts).
  const delay = assignDelayClasses(policies);
  rules.forEach((r, i) => (r.delayClass = delay.classOf[i]!));
  const src = prefixClasses(policies, (p) => p.match.src, 'source', limits.prefixes);
  const dst = prefixClasses(policies, (p) => p.match.dst, 'destination', limits.prefixes);
  const sport = portClasses(policies, (p) => p.match.sport, 'source', limits.portClasses);
  const dport = portClasses(policies, (p) => p.match.dport, 'destination', limits.portClasses);
  const protoBits = new Array<boolean>(256).fill(false);
  for (const p of policies) for (const proto of p.match.proto ?? []) protoBits[proto] = true;
  const allProtos = [...protoBits.flatMap((b, i) => (b ? [i] : [])), PROTO_OTHER];

  // Count before building: a set that does not fit fails fast and names the policy that overflows.
  let total = 0;
  policies.forEach((p, i) => {
    const n =
      (src.classesOf[i] ?? src.all).length *
      (dst.classesOf[i] ?? dst.all).length *
      (p.match.proto ?? allProtos).length *
      (sport.classesOf[i] ?? sport.all).length *
      (dport.classesOf[i] ?? dport.all).length;
    total += n;
    if (total > limits.combos * MAX_CANDIDATES) {
      throw capacity(p, `the set needs more than ${limits.combos} (proto, src, dst, port) combinations; overlapping wide matches multiply`);
    }
  });

  // Two number-keyed levels (proto, src, dst) -> (sport, dport): classes fit 15 and 16 bits.
  const combos = new Map<number, Map<number, CompiledCombo>>();
  let comboCount = 0;
  policies.forEach((p, slot) => {
    for (const proto of p.match.proto ?? allProtos)
      for (const s of src.classesOf[slot] ?? src.all)
        for (const d of dst.classesOf[slot] ?? dst.all) {
          const outerKey = (proto * 32768 + s) * 32768 + d;
          let inner = combos.get(outerKey);
          if (!inner) combos.set(outerKey, (inner = new Map()));
          for (const sp of sport.classesOf[slot] ?? sport.all)
            for (const dp of dport.classesOf[slot] ?? dport.all) {
              const key = sp * 65536 + dp;
              let c = inner.get(key);
              if (!c) {
                if (comboCount >= limits.combos) throw capacity(p, `more than ${limits.combos} (proto, src, dst, port) combinations`);
                c = { proto, srcClass: s, dstClass: d, sportClass: sp, dportClass: dp, slots: [] };
                inner.set(key, c);
                comboCount++;
              }
              if (c.slots.length >= MAX_CANDIDATES) {
                const names = c.slots.map((x) => policies[x]!.name).join(', ');
                throw capacity(p, `more than ${MAX_CANDIDATES} policies overlap on the same packets (${names}, ${p.name})`);
              }
              c.slots.push(slot);
            }
        }
  });

  return {
    rules,
    srcPrefixes: src.prefixes,
    dstPrefixes: dst.prefixes,
    protoBits,
    sportClass: sport.table,
    dportClass: dport.table,
    combos: [...combos.values()].flatMap((inner) => [...inner.values()]),
    delayClasses: delay.classes,
  };
}

/** A short, human summary of a compiled set (for `policy check`). */
export function summarize(set: CompiledSet): Record<string, number> {
  return {
    rules: set.rules.length,
    srcPrefixes: set.srcPrefixes.length,
    dstPrefixes: set.dstPrefixes.length,
    sportClasses: set.sportClass.reduce((m, c) => Math.max(m, c), 0),
    dportClasses: set.dportClass.reduce((m, c) => Math.max(m, c), 0),
    combinations: set.combos.length,
    maxCandidates: set.combos.reduce((m, c) => Math.max(m, c.slots.length), 0),
  };
}

