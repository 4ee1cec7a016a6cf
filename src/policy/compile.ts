// Policies -> the tables of the kernel's policy stage (bpf/policy.h). No bytecode: every policy
// set becomes map entries of a fixed program.
//
// One packet costs a fixed number of lookups however many rules there are:
//   - src and dst address -> prefix class: the longest inserted prefix that holds the address
//     (0: none); IPv4 from direct array tables (prefix4.ts), else a hash per length or an LPM
//     trie. Inserted prefixes nest or are disjoint, so that class fixes the set of rule prefixes
//     that hold the address.
//   - sport and dport -> array -> port class: the elementary interval between range boundaries.
//   - proto -> itself when some rule names it, else 255 ("any other").
//   - (proto, src class, dst class, sport class, dport class) -> cuckoo table of array slots
//     (combo-table.ts) -> up to 8 candidate rules, already in decision order (order.ts). TCP
//     flags and the interface are checked per candidate.
// A rule lands in every combination its match covers; sets whose combinations do not fit the
// maps, or where more than 8 rules overlap, are refused with "too many rules for the maps".
import * as crypto from 'node:crypto';
import { POLICY, POLICY_RULE_MONITOR } from '../datapath';
import { ACTION_BY_KIND } from './actions';
import { compileEmul, EMUL_SEEDED, ruleSeed } from './actions-model';
import { actionVerdict, blockEscalation, type Escalation } from './escalate';
import { buildComboTable } from './combo-table';
import type { CompiledCombo, CompiledPrefix, CompiledRule, CompiledSet } from './compiled-set';
import { assignDelayClasses } from './delay';
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
  rules: POLICY.maxRules,
  prefixes: POLICY.maxPrefixes,
  combos: POLICY.maxCombos,
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

export interface CompileOptions {
  limits?: Partial<PolicyLimits>;
  /** Resolves match.iface; without it interfaces compile to ifindex 0 (any), as `policy check` does. */
  ifindexOf?: (name: string, policy: Policy) => number;
  /** Set-level seed of the emulation actions' random sequences (a policy's spec.seed wins);
   * undefined: each policy without a seed gets a random one. */
  seed?: bigint;
  /** Refuse actions the datapath cannot carry out (apply does; check does not). */
  requireKernelActions?: boolean;
  /** Monitor-only node: every policy counts and sends events but enforces nothing (as spec.monitor). */
  monitor?: boolean;
}

function capacity(p: Policy, detail: string): PolicyError {
  return new PolicyError({ ...p.source, policy: p.name }, `too many rules for the maps: ${detail}`);
}

/**
 * Prefixes by value: IPv4 in one map per length keyed by the prefix's own bits (below 2^30, a
 * small integer to V8, up to /30: no allocation or hashing of doubles on the hot path of a
 * 10k-rule compile), IPv6 by text.
 */
class PrefixIndex<T> {
  readonly #v4: (Map<number, T> | undefined)[] = [];
  readonly #v6 = new Map<string, T>();

  static #v4Key(addr: Uint8Array, len: number): number {
    return len === 0 ? 0 : (((addr[0]! << 24) | (addr[1]! << 16) | (addr[2]! << 8) | addr[3]!) >>> (32 - len));
  }

  get(family: 4 | 6, addr: Uint8Array, len: number): T | undefined {
    if (family === 4) return this.#v4[len]?.get(PrefixIndex.#v4Key(addr, len));
    return this.#v6.get(prefixKey({ family, addr: maskAddress(addr, len), len }));
  }

  set(family: 4 | 6, addr: Uint8Array, len: number, value: T): void {
    if (family === 4) (this.#v4[len] ??= new Map()).set(PrefixIndex.#v4Key(addr, len), value);
    else this.#v6.set(prefixKey({ family, addr: maskAddress(addr, len), len }), value);
  }
}

/**
 * Prefix classes of one dimension; returns the inserted prefixes and each policy's classes
 * (undefined: any). A policy's classes are those of the inserted prefixes inside one of its own:
 * they are gathered per inserted prefix, so policies that name one prefix share its (read-only)
 * list, and a policy's list is built only when it names several.
 */
function prefixClasses(
  policies: Policy[],
  pick: (p: Policy) => Prefix[] | undefined,
  what: string,
  limit: number,
): { prefixes: CompiledPrefix[]; classesOf: (number[] | undefined)[]; all: number[] } {
  const byValue = new PrefixIndex<number>();
  // In class order: prefixes[c - 1] has class c, inner[c - 1] the classes inside it.
  const prefixes: CompiledPrefix[] = [];
  const inner: number[][] = [];
  // Each policy's class when its list has one prefix; its classes when it has several.
  const own = new Int32Array(policies.length);
  const several = new Map<number, number[]>();
  for (let i = 0; i < policies.length; i++) {
    const list = pick(policies[i]!);
    if (!list) continue;
    for (let j = 0; j < list.length; j++) {
      const prefix = list[j]!;
      let cls = byValue.get(prefix.family, prefix.addr, prefix.len);
      if (cls === undefined) {
        if (prefixes.length >= limit) throw capacity(policies[i]!, `more than ${limit} distinct ${what} prefixes`);
        cls = prefixes.length + 1;
        byValue.set(prefix.family, prefix.addr, prefix.len, cls);
        prefixes.push({ prefix, cls });
        inner.push([]);
      }
      if (list.length === 1) own[i] = cls;
      else {
        const mine = several.get(i);
        if (mine) mine.push(cls);
        else several.set(i, [cls]);
      }
    }
  }
  // Lengths in use per family: the ancestors of a prefix are found by masking to each of them.
  const lengths: Record<4 | 6, number[]> = { 4: [], 6: [] };
  for (let c = 0; c < prefixes.length; c++) {
    const { family, len } = prefixes[c]!.prefix;
    if (!lengths[family].includes(len)) lengths[family].push(len);
  }
  // Prefixes are visited in class order, so each list grows sorted, each class once.
  for (let c = 0; c < prefixes.length; c++) {
    const { family, addr, len } = prefixes[c]!.prefix;
    const lens = lengths[family];
    for (let l = 0; l < lens.length; l++) {
      const at = lens[l]!;
      if (at > len) continue;
      const ancestor = at === len ? c + 1 : byValue.get(family, addr, at);
      if (ancestor !== undefined) inner[ancestor - 1]!.push(c + 1);
    }
  }
  const all = new Array<number>(prefixes.length + 1);
  for (let c = 0; c <= prefixes.length; c++) all[c] = c;
  const classesOf = new Array<number[] | undefined>(policies.length);
  for (let i = 0; i < policies.length; i++) {
    const list = pick(policies[i]!);
    if (!list) classesOf[i] = undefined;
    else if (list.length === 1) classesOf[i] = inner[own[i]! - 1];
    else {
      // Nested prefixes of one list hold the same classes: keep each once.
      const merged = new Set<number>();
      for (const cls of several.get(i) ?? []) for (const x of inner[cls - 1]!) merged.add(x);
      classesOf[i] = [...merged].sort((x, y) => x - y);
    }
  }
  return { prefixes, classesOf, all };
}

/** Port classes: elementary intervals between range boundaries; 0 for ports no range holds. */
function portClasses(
  policies: Policy[],
  pick: (p: Policy) => PortRange[] | undefined,
  what: string,
  limit: number,
): { table: Uint16Array; classesOf: (number[] | undefined)[]; all: number[] } {
  // Many policies name the same ranges: the work below is per distinct range, and policies with
  // one range share its (read-only) class list.
  const distinct = new Map<number, { range: PortRange; classes: number[] }>();
  const rangesOf = new Array<{ range: PortRange; classes: number[] }[] | undefined>(policies.length).fill(undefined);
  for (let i = 0; i < policies.length; i++) {
    const ranges = pick(policies[i]!);
    if (!ranges) continue;
    const mine = [];
    for (let j = 0; j < ranges.length; j++) {
      const range = ranges[j]!;
      const key = (range.lo << 16) | range.hi;
      let d = distinct.get(key);
      if (!d) distinct.set(key, (d = { range, classes: [] }));
      mine.push(d);
    }
    rangesOf[i] = mine;
  }
  const cuts = new Set<number>([0, 65536]);
  for (const { range } of distinct.values()) {
    cuts.add(range.lo);
    cuts.add(range.hi + 1);
  }
  const bounds = [...cuts].sort((a, b) => a - b);
  // Interval k is [bounds[k], bounds[k+1]); it gets a class when some range covers it.
  const covered = new Array<boolean>(bounds.length - 1).fill(false);
  const intervalsOf = (r: PortRange): [number, number] => [bisect(bounds, r.lo), bisect(bounds, r.hi + 1) - 1];
  for (const { range } of distinct.values()) {
    const [a, b] = intervalsOf(range);
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
  // The intervals of one range are all covered: its classes are consecutive and ascending.
  for (const d of distinct.values()) {
    const [a, b] = intervalsOf(d.range);
    for (let k = a; k <= b; k++) d.classes.push(classOfInterval[k]!);
  }
  const classesOf = rangesOf.map((mine) => {
    if (!mine) return undefined;
    if (mine.length === 1) return mine[0]!.classes;
    const s = new Set<number>();
    for (const d of mine) for (const c of d.classes) s.add(c);
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

/**
 * The seed of the random sequence of each policy with emulation actions, as ruleSeed() draws it
 * (undefined for the others), with the random ones (no spec.seed, no set seed) read from one
 * getrandom() call instead of one call per policy.
 */
function ruleSeeds(policies: readonly Policy[], masks: Int32Array, setSeed: bigint | undefined): (bigint | undefined)[] {
  const seeds = new Array<bigint | undefined>(policies.length).fill(undefined);
  const random: number[] = [];
  for (let i = 0; i < policies.length; i++) {
    // Only emulation actions and capture read policy_emul and its seed.
    if (!(masks[i]! & EMUL_SEEDED)) continue;
    const p = policies[i]!;
    if (setSeed === undefined && p.seed === undefined) random.push(i);
    else seeds[i] = ruleSeed(p, setSeed);
  }
  if (random.length) {
    // A BigUint64Array hands out each seed without the shifts of Buffer.readBigUInt64LE.
    const pool = crypto.randomFillSync(new BigUint64Array(random.length));
    for (let k = 0; k < random.length; k++) seeds[random[k]!] = pool[k]!;
  }
  return seeds;
}

/** `seed`: the start of its random sequence (default: ruleSeed()). */
export function compileRule(p: Policy, ifindex: number, setSeed?: bigint, seed?: bigint, monitor = false): CompiledRule {
  let actionMask = 0;
  let verdict = ACTION_VERDICT_NONE;
  let blockTtlNs = 0n;
  let escalate: Escalation | undefined;
  for (let j = 0; j < p.actions.length; j++) {
    const a = p.actions[j]!;
    const def = ACTION_BY_KIND.get(a.kind)!;
    actionMask |= 1 << def.bit;
    const v = actionVerdict(p, a.kind);
    if (v === 'pass') verdict = ACTION_VERDICT_PASS;
    if (v === 'drop') verdict = ACTION_VERDICT_DROP;
    if (a.kind === 'block') {
      blockTtlNs = a.params.ttl as bigint;
      escalate = blockEscalation(a.params);
    }
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
    flags: p.monitor || monitor ? POLICY_RULE_MONITOR : 0,
    emul: actionMask & EMUL_SEEDED ? compileEmul(p, seed ?? ruleSeed(p, setSeed)) : undefined,
    ...(escalate ? { escalate } : {}),
  };
}

/** Actions a plain rule may have: no state, no event, nothing after the verdict. */
const PLAIN_ACTIONS = (1 << ACTION_BY_KIND.get('pass')!.bit) | (1 << ACTION_BY_KIND.get('drop')!.bit) | (1 << ACTION_BY_KIND.get('count')!.bit);

/** A rule without trigger, delay class or actions beyond pass, drop and count (bae.h POLICY_COMBO_PLAIN). */
export function isPlainRule(r: CompiledRule): boolean {
  return r.metric === 0 && r.delayClass === 0 && !r.flags && (r.actionMask & ~PLAIN_ACTIONS) === 0;
}

/** The combinations of one (proto, src class, dst class), in the order they were first met. */
interface ComboGroup {
  combos: CompiledCombo[];
  /** (sport, dport) -> combination, made once the group has a second one. */
  byPorts: Map<number, CompiledCombo> | undefined;
}

const comboPorts = (c: CompiledCombo): number => c.sportClass * 32768 + c.dportClass;

// compilePolicies() runs once per apply, mostly as cold code. Each of its passes over the
// policies is a small function with the per-policy work in a smaller one: V8 optimizes a small
// function within a few hundred calls and in a millisecond or two, while a loop inside one large
// function waits for that whole function to be compiled for on-stack replacement (tens of
// milliseconds here), by which time a 10k-policy loop is over.

/**
 * Stable ids must not collide, and with `kernel` every action must be one the datapath carries
 * out. Returns the policy's action_mask.
 */
function checkPolicy(p: Policy, seenIds: Map<number, Policy>, kernel: boolean): number {
  // As int32: a small integer to V8, not a heap number per id.
  const key = p.id | 0;
  const prev = seenIds.get(key);
  if (prev) throw new PolicyError({ ...p.source, policy: p.name }, `stable id ${p.id} collides with policy '${prev.name}'; rename one of them`);
  seenIds.set(key, p);
  let mask = 0;
  for (let j = 0; j < p.actions.length; j++) {
    const a = p.actions[j]!;
    const def = ACTION_BY_KIND.get(a.kind)!;
    if (kernel && !def.kernel) {
      throw new PolicyError({ ...(a.source ?? p.source), policy: p.name }, `action '${a.kind}' is not supported by this datapath yet (policy check accepts it; apply cannot carry it out)`);
    }
    mask |= 1 << def.bit;
  }
  return mask;
}

/**
 * checkPolicy() of each policy; returns their action masks: the later passes read them instead
 * of walking every policy's actions again.
 */
function checkPolicies(policies: readonly Policy[], kernel: boolean): Int32Array {
  const seenIds = new Map<number, Policy>();
  const masks = new Int32Array(policies.length);
  for (let i = 0; i < policies.length; i++) masks[i] = checkPolicy(policies[i]!, seenIds, kernel);
  return masks;
}

function compileRules(policies: readonly Policy[], options: CompileOptions, seeds: (bigint | undefined)[], delayClassOf: number[]): CompiledRule[] {
  const rules = new Array<CompiledRule>(policies.length);
  for (let i = 0; i < policies.length; i++) {
    const p = policies[i]!;
    const r = compileRule(p, p.match.iface && options.ifindexOf ? options.ifindexOf(p.match.iface, p) : 0, options.seed, seeds[i], options.monitor);
    r.delayClass = delayClassOf[i]!;
    rules[i] = r;
  }
  return rules;
}

function protoBitsOf(policies: readonly Policy[]): boolean[] {
  const protoBits = new Array<boolean>(256).fill(false);
  for (let i = 0; i < policies.length; i++) {
    const protos = policies[i]!.match.proto;
    if (protos) for (let j = 0; j < protos.length; j++) protoBits[protos[j]!] = true;
  }
  return protoBits;
}

/** Each dimension's classes for every policy (undefined: any) and the classes of "any". */
interface Dims {
  src: { classesOf: (number[] | undefined)[]; all: number[] };
  dst: { classesOf: (number[] | undefined)[]; all: number[] };
  sport: { classesOf: (number[] | undefined)[]; all: number[] };
  dport: { classesOf: (number[] | undefined)[]; all: number[] };
  allProtos: number[];
}

/** The combinations of policy `i`, without building them. */
function comboCountOf(p: Policy, i: number, d: Dims): number {
  return (
    (d.src.classesOf[i] ?? d.src.all).length *
    (d.dst.classesOf[i] ?? d.dst.all).length *
    (p.match.proto ?? d.allProtos).length *
    (d.sport.classesOf[i] ?? d.sport.all).length *
    (d.dport.classesOf[i] ?? d.dport.all).length
  );
}

/** Count before building: a set that does not fit fails fast and names the policy that overflows. */
function checkComboCount(policies: readonly Policy[], d: Dims, limits: PolicyLimits): void {
  let total = 0;
  for (let i = 0; i < policies.length; i++) {
    total += comboCountOf(policies[i]!, i, d);
    if (total > limits.combos * MAX_CANDIDATES) {
      throw capacity(policies[i]!, `the set needs more than ${limits.combos} (proto, src, dst, port) combinations; overlapping wide matches multiply`);
    }
  }
}

/**
 * The combinations under construction: (proto, src, dst) -> its group of combinations; within a
 * group (sport, dport) finds one. The (src, dst) pairs of a protocol are an array indexed by
 * src * dsts + dst while that array stays within a few entries per policy (the classes are dense
 * from 0), else a map keyed by the same small integer. A group gets its own map only when it has
 * a second port combination.
 */
class ComboBuilder {
  readonly groups: ComboGroup[] = [];
  count = 0;
  readonly #dense: boolean;
  readonly #dstCount: number;
  readonly #pairCount: number;
  readonly #denseOf: (ComboGroup | undefined)[][] = [];
  readonly #sparseOf: Map<number, ComboGroup>[] = [];

  constructor(
    readonly policies: readonly Policy[],
    readonly limits: PolicyLimits,
    srcCount: number,
    dstCount: number,
  ) {
    this.#dstCount = dstCount;
    this.#pairCount = srcCount * dstCount;
    this.#dense = this.#pairCount <= Math.max(65536, 8 * policies.length);
  }

  /** The group of (proto, s, d), made on first use. */
  group(proto: number, s: number, d: number): ComboGroup {
    const pair = s * this.#dstCount + d;
    if (this.#dense) {
      const byPair = (this.#denseOf[proto] ??= new Array<ComboGroup | undefined>(this.#pairCount));
      let g = byPair[pair];
      if (!g) this.groups.push((g = byPair[pair] = { combos: [], byPorts: undefined }));
      return g;
    }
    const byKey = (this.#sparseOf[proto] ??= new Map());
    let g = byKey.get(pair);
    if (!g) {
      byKey.set(pair, (g = { combos: [], byPorts: undefined }));
      this.groups.push(g);
    }
    return g;
  }

  /** Rule `slot` joins the combination (proto, s, d, sp, dp). */
  add(g: ComboGroup, slot: number, proto: number, s: number, d: number, sp: number, dp: number): void {
    const ports = sp * 32768 + dp;
    const first = g.combos.length ? g.combos[0]! : undefined;
    let c = g.byPorts ? g.byPorts.get(ports) : first && comboPorts(first) === ports ? first : undefined;
    const p = this.policies[slot]!;
    if (!c) {
      if (this.count >= this.limits.combos) throw capacity(p, `more than ${this.limits.combos} (proto, src, dst, port) combinations`);
      c = { proto, srcClass: s, dstClass: d, sportClass: sp, dportClass: dp, slots: [], plain: false };
      if (g.combos.length === 1) g.byPorts = new Map([[comboPorts(g.combos[0]!), g.combos[0]!]]);
      g.byPorts?.set(ports, c);
      g.combos.push(c);
      this.count++;
    }
    if (c.slots.length >= MAX_CANDIDATES) {
      const names = c.slots.map((x) => this.policies[x]!.name).join(', ');
      throw capacity(p, `more than ${MAX_CANDIDATES} policies overlap on the same packets (${names}, ${p.name})`);
    }
    c.slots.push(slot);
  }

  /** Rule `slot` joins every combination its match covers. */
  addPolicy(slot: number, d: Dims): void {
    const sports = d.sport.classesOf[slot] ?? d.sport.all;
    const dports = d.dport.classesOf[slot] ?? d.dport.all;
    const protos = this.policies[slot]!.match.proto ?? d.allProtos;
    const srcs = d.src.classesOf[slot] ?? d.src.all;
    const dsts = d.dst.classesOf[slot] ?? d.dst.all;
    for (let pi = 0; pi < protos.length; pi++)
      for (let si = 0; si < srcs.length; si++)
        for (let di = 0; di < dsts.length; di++) {
          const g = this.group(protos[pi]!, srcs[si]!, dsts[di]!);
          for (let spi = 0; spi < sports.length; spi++)
            for (let dpi = 0; dpi < dports.length; dpi++) this.add(g, slot, protos[pi]!, srcs[si]!, dsts[di]!, sports[spi]!, dports[dpi]!);
        }
  }

  /** Every combination, group by group in the order the groups were made. */
  combos(): CompiledCombo[] {
    const out: CompiledCombo[] = [];
    for (let i = 0; i < this.groups.length; i++) for (let j = 0; j < this.groups[i]!.combos.length; j++) out.push(this.groups[i]!.combos[j]!);
    return out;
  }
}

function buildCombos(policies: readonly Policy[], d: Dims, limits: PolicyLimits): CompiledCombo[] {
  const builder = new ComboBuilder(policies, limits, d.src.all.length, d.dst.all.length);
  for (let slot = 0; slot < policies.length; slot++) builder.addPolicy(slot, d);
  return builder.combos();
}

/** CompiledCombo.plain of every combination. */
function markPlain(rules: readonly CompiledRule[], combos: CompiledCombo[]): void {
  const plain = new Uint8Array(rules.length);
  for (let i = 0; i < rules.length; i++) plain[i] = isPlainRule(rules[i]!) ? 1 : 0;
  for (let i = 0; i < combos.length; i++) {
    const c = combos[i]!;
    let all = true;
    for (let k = 0; k < c.slots.length && all; k++) all = plain[c.slots[k]!] === 1;
    c.plain = all;
  }
}

/** Validates the set as a whole and builds every table; throws a PolicyError before anything is written. */
export function compilePolicies(input: readonly Policy[], options: CompileOptions = {}): CompiledSet {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const policies = orderPolicies(input);
  const masks = checkPolicies(policies, options.requireKernelActions === true);
  if (policies.length > limits.rules) throw capacity(policies[limits.rules]!, `more than ${limits.rules} policies`);

  const seeds = ruleSeeds(policies, masks, options.seed);
  // Delay-class actions: one delay-line class per distinct parameter set (delay.ts).
  const delay = assignDelayClasses(policies, masks);
  const rules = compileRules(policies, options, seeds, delay.classOf);
  const src = prefixClasses(policies, (p) => p.match.src, 'source', limits.prefixes);
  const dst = prefixClasses(policies, (p) => p.match.dst, 'destination', limits.prefixes);
  const sport = portClasses(policies, (p) => p.match.sport, 'source', limits.portClasses);
  const dport = portClasses(policies, (p) => p.match.dport, 'destination', limits.portClasses);
  const protoBits = protoBitsOf(policies);
  const allProtos = [...protoBits.flatMap((b, i) => (b ? [i] : [])), PROTO_OTHER];
  const dims: Dims = { src, dst, sport, dport, allProtos };
  checkComboCount(policies, dims, limits);
  const combos = buildCombos(policies, dims, limits);
  markPlain(rules, combos);
  const comboTable = buildComboTable(combos);
  if (!comboTable) throw capacity(policies[policies.length - 1]!, `${combos.length} combinations do not fit the combination table`);
  return {
    rules,
    srcPrefixes: src.prefixes,
    dstPrefixes: dst.prefixes,
    protoBits,
    sportClass: sport.table,
    dportClass: dport.table,
    combos,
    comboTable,
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

