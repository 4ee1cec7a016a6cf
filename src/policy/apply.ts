// Writes a compiled policy set into the kernel tables, atomically for packets: everything goes
// into the idle generation, then one write flips policy_ctl.gen. A packet reads gen once, so it
// sees the old set or the new one, never a mix. The generation written now was left by the
// previous flip; a packet still on it started before that flip. Every XDP run is a
// non-sleepable BPF program inside an RCU read-side section, so an RCU grace period that began
// after the flip outlasts all of them: only then is that generation rewritten.
import * as crypto from 'node:crypto';
import {
  HOST_LE,
  POLICY,
  LAYOUTS,
  addressFamilyOf,
  decodePolicyCtl,
  decodePolicyLpmKey,
  decodePolicyPrefixKey,
  encodePolicyPrefixKey,
  PolicyLookup,
  type PolicyDim,
  decodePolicyTriggerKey,
  writePolicyComboSlot,
  POLICY_COMBO_PLAIN,
  encodePolicyCtl,
  encodePolicyLpmKey,
  encodePolicyRule,
  writePolicyRule,
  rcuGracePeriod,
  type BpfMap,
  type PolicyCtl,
} from '../datapath';
import type { CompiledRule, CompiledSet } from './compiled-set';
import { foldIdleCounters } from './counters';
import type { PolicyMapName, PolicyMaps } from './maps';
import { buildV4Table, type V4Table } from './prefix4';

/** Maps whose bytes an apply may change (the ring buffer has no bytes to compare). */
export const POLICY_TABLE_MAPS: readonly PolicyMapName[] = ['ctl', 'prefixes', 'src', 'dst', 'v4', 'ports', 'combos', 'rules', 'triggers', 'counters', 'counterBase', 'blocklist', 'blockUsed', 'stats', 'actStates'];

/** Where the kernel refuses the map-in-map that rcuGracePeriod() writes: a fixed wait instead. */
export const GRACE_NS = 20_000_000n;

export interface ApplyOptions {
  /** CLOCK_MONOTONIC in ns (the clock of bpf_ktime_get_ns); injectable for tests. */
  monotonicNs?: () => bigint;
  sleep?: (ms: number) => Promise<void>;
  /** Resolves once every XDP run that started before the call has finished (default: an RCU
   * grace period, rcuGracePeriod(); a GRACE_NS sleep where the kernel refuses it). */
  grace?: () => Promise<void>;
  /** Called when the idle generation is written, just before the flip (tests look at packets then). */
  beforeFlip?: () => void | Promise<void>;
}

export interface ApplyResult {
  gen: number;
  rules: number;
  /** Stable ids whose trigger windows were dropped (policies no longer in the set). */
  removed: number[];
  /** Tables that were written (the others already held the same content in that generation). */
  written: string[];
  /** grace: waiting for the packets on the generation written (time not spent computing meanwhile). */
  ms: { grace: number; clear: number; write: number; total: number };
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

/** struct policy_rule of a compiled rule (a CompiledRule carries every field of one). */
export function ruleValue(r: CompiledRule): Buffer {
  return encodePolicyRule(r);
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

const PORT_ENTRIES = POLICY.ports / POLICY.portsPerEntry;

/** `n` keys of an array map in one Buffer, set through a typed-array view where host order is little-endian. */
function u32Keys(n: number): { buf: Buffer; set(k: number, index: number): void } {
  const buf = Buffer.alloc(4 * n);
  // Buffer.alloc gives the buffer its own (aligned) memory.
  const words = HOST_LE && buf.byteOffset % 4 === 0 ? new Uint32Array(buf.buffer, buf.byteOffset, n) : undefined;
  return { buf, set: words ? (k, index) => (words[k] = index) : (k, index) => buf.writeUInt32LE(index, 4 * k) };
}

/** Keys of the port-class array for one generation, flat: source ports then destination ports. */
const portKeyCache: Buffer[] = [];
function portKeys(gen: number): Buffer {
  let keys = portKeyCache[gen];
  if (!keys) {
    keys = Buffer.alloc(4 * 2 * PORT_ENTRIES);
    for (let i = 0; i < 2 * PORT_ENTRIES; i++) keys.writeUInt32LE(gen * 2 * PORT_ENTRIES + i, 4 * i);
    portKeyCache[gen] = keys;
  }
  return keys;
}

/** The port-class entries of a set, flat: POLICY.portsPerEntry little-endian u16 classes each, sport then dport. */
function portValues(set: CompiledSet): Buffer {
  const all = Buffer.alloc(2 * POLICY.ports * 2);
  // Classes that some combination has carry POLICY_PORT_USED (the kernel's prefilter): each class
  // maps to the entry it becomes, then each port to its class's entry.
  const entryOf = [new Uint16Array(POLICY.portUsed), new Uint16Array(POLICY.portUsed)] as const;
  for (let c = 0; c < POLICY.portUsed; c++) entryOf[0][c] = entryOf[1][c] = c;
  for (let i = 0; i < set.combos.length; i++) {
    const c = set.combos[i]!;
    entryOf[0][c.sportClass] = c.sportClass | POLICY.portUsed;
    entryOf[1][c.dportClass] = c.dportClass | POLICY.portUsed;
  }
  const sport = set.sportClass;
  const dport = set.dportClass;
  if (HOST_LE) {
    // The buffer is its own allocation (8-aligned): u16 entries through a view, in host order.
    const entries = new Uint16Array(all.buffer, all.byteOffset, 2 * POLICY.ports);
    for (let p = 0; p < POLICY.ports; p++) {
      entries[p] = entryOf[0][sport[p]!]!;
      entries[POLICY.ports + p] = entryOf[1][dport[p]!]!;
    }
    return all;
  }
  for (let p = 0; p < POLICY.ports; p++) {
    all.writeUInt16LE(entryOf[0][sport[p]!]!, 2 * p);
    all.writeUInt16LE(entryOf[1][dport[p]!]!, 2 * (POLICY.ports + p));
  }
  return all;
}

/** 64 bits of SHA-256 over the parts; never 0 (0 means "unknown" in policy_gen_info.digests). */
function digest(...parts: (string | Uint8Array)[]): bigint {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest().readBigUInt64LE(0) || 1n;
}

// The digests' inputs are 32-bit words in typed arrays, filled without a call per entry (they
// are built on every apply, mostly as cold code) and hashed in host byte order: a digest is only
// ever compared with one this code computed on this machine.

/** Prefixes and their classes, 6 words each: family and length, the 16 address bytes, class. */
function prefixWords(list: CompiledSet['srcPrefixes']): Uint32Array {
  const out = new Uint32Array(6 * list.length);
  const bytes = new Uint8Array(out.buffer);
  for (let i = 0; i < list.length; i++) {
    const { prefix, cls } = list[i]!;
    out[6 * i] = prefix.family | (prefix.len << 8);
    bytes.set(prefix.addr.length <= 16 ? prefix.addr : prefix.addr.subarray(0, 16), 24 * i + 4);
    out[6 * i + 5] = cls;
  }
  return out;
}

/** Words per combination in comboWordsOf(). */
const COMBO_WORDS = 4 + Math.ceil(POLICY.maxCandidates / 2);

/** Combinations, COMBO_WORDS each: proto, candidate count and plain; the four classes; slots two per word. */
function comboWordsOf(combos: CompiledSet['combos']): Uint32Array {
  const out = new Uint32Array(COMBO_WORDS * combos.length);
  for (let i = 0; i < combos.length; i++) {
    const c = combos[i]!;
    const at = COMBO_WORDS * i;
    out[at] = c.proto | (c.slots.length << 8) | (c.plain ? 1 << 16 : 0);
    out[at + 1] = c.srcClass;
    out[at + 2] = c.dstClass;
    out[at + 3] = c.sportClass | (c.dportClass << 16);
    for (let k = 0; k < c.slots.length; k++) out[at + 4 + (k >> 1)]! |= c.slots[k]! << (16 * (k & 1));
  }
  return out;
}

const bytesOf = (a: Uint32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * What each table of a compiled set holds, as digests in enum policy_table order. Over words,
 * not text: a 10k-rule set costs a few milliseconds.
 */
export function setDigests(set: CompiledSet): bigint[] {
  const combos = bytesOf(comboWordsOf(set.combos));
  // A rule is its policy's id (a digest of its content) plus the resolved interface and its
  // delay class (which depends on the other policies of the set): ruleSlotHolds() reads the same.
  const rules = new Uint32Array(3 * set.rules.length);
  for (let i = 0; i < set.rules.length; i++) {
    const r = set.rules[i]!;
    rules[3 * i] = r.id;
    rules[3 * i + 1] = r.ifindex;
    rules[3 * i + 2] = r.delayClass;
  }
  return [
    digest('src', bytesOf(prefixWords(set.srcPrefixes))),
    digest('dst', bytesOf(prefixWords(set.dstPrefixes))),
    // The used bits on port classes follow from the combinations: both go into this digest.
    digest('ports', bytesOf(set.sportClass), bytesOf(set.dportClass), combos),
    digest('combos', combos),
    digest('rules', bytesOf(rules)),
  ];
}

const RULE_FIELDS = LAYOUTS.policy_rule!.fields;

/** Whether `held` (a policy_rule's bytes at `at`) is rule `r`: the same id, interface and delay class. */
function ruleSlotHolds(held: Buffer, at: number, r: CompiledRule): boolean {
  return (
    held.readUInt32LE(at + RULE_FIELDS.id!.offset) === r.id &&
    held.readUInt32LE(at + RULE_FIELDS.ifindex!.offset) === r.ifindex &&
    held[at + RULE_FIELDS.delay_class!.offset] === r.delayClass
  );
}

/**
 * Writes the rules of `set` into generation `gen`, skipping the slots that already hold the same
 * rule (one batch read of the slots): changing one policy of 10k encodes and writes one rule.
 * Rule slots past the new count are never referenced: no need to clear them. `neverWritten`: no
 * apply has flipped to a generation yet, so no slot holds a rule worth keeping (none is read).
 */
function writeRules(map: BpfMap, set: CompiledSet, gen: number, neverWritten: boolean): void {
  const first = gen * POLICY.maxRules;
  const size = map.valueSize;
  const held = set.rules.length && !neverWritten ? map.lookupRange(first, set.rules.length).values : Buffer.alloc(0);
  const slots: number[] = [];
  for (let slot = 0; slot < set.rules.length; slot++) {
    if ((slot + 1) * size <= held.length && ruleSlotHolds(held, slot * size, set.rules[slot]!)) continue;
    slots.push(slot);
  }
  const keys = u32Keys(slots.length);
  const values = Buffer.alloc(size * slots.length);
  for (let k = 0; k < slots.length; k++) {
    keys.set(k, first + slots[k]!);
    writePolicyRule(values, size * k, set.rules[slots[k]!]!);
  }
  map.updateBatchFlat(keys.buf, values);
}

const TABLE = { src: 0, dst: 1, ports: 2, combos: 3, rules: 4 } as const;

/**
 * How the kernel looks one address dimension up, per family: IPv4 in the direct tables of
 * policy_v4 (prefix4.ts) while they fit; otherwise by hash per prefix length (longest first) when
 * the rules use at most POLICY.hashLengths lengths, else in the LPM trie. `v4` is the IPv4 table
 * when that mode is chosen.
 */
export function dimsOf(prefixes: CompiledSet['srcPrefixes']): { dims: [PolicyDim, PolicyDim]; v4?: V4Table } {
  let v4: V4Table | undefined;
  // Distinct lengths per family in one pass (10k prefixes use a handful).
  const lensOf: [number[], number[]] = [[], []];
  for (let i = 0; i < prefixes.length; i++) {
    const { family, len } = prefixes[i]!.prefix;
    const lens = lensOf[family === 4 ? 0 : 1];
    if (!lens.includes(len)) lens.push(len);
  }
  const dims = ([4, 6] as const).map((family) => {
    const lens = lensOf[family === 4 ? 0 : 1].sort((a, b) => b - a);
    if (lens.length === 0) return { mode: PolicyLookup.none, lens: [] };
    if (family === 4 && (v4 = buildV4Table(prefixes))) return { mode: PolicyLookup.v4, lens: [] };
    if (lens.length <= POLICY.hashLengths) return { mode: PolicyLookup.hash, lens };
    return { mode: PolicyLookup.trie, lens: [] };
  }) as [PolicyDim, PolicyDim];
  return v4 ? { dims, v4 } : { dims };
}

const monotonic = () => process.hrtime.bigint();
const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** policy_ctl map id -> the last flip this process made and the grace period it started after it. */
const graceAfterFlip = new Map<number, { flipNs: bigint; done: Promise<void> }>();

/** Writes `set` into the idle generation and flips to it. The set must come from compilePolicies(). */
export async function applyCompiled(maps: PolicyMaps, set: CompiledSet, options: ApplyOptions = {}): Promise<ApplyResult> {
  const now = options.monotonicNs ?? monotonic;
  const sleep = options.sleep ?? sleepMs;
  const grace =
    options.grace ??
    (() => rcuGracePeriod().catch(() => sleep(Number(GRACE_NS / 1_000_000n))));
  const t0 = performance.now();
  const ctl = readCtl(maps);
  const active = ctl.gen & 1;
  const next = active ^ 1;
  const ctlId = maps.ctl.id;

  // Packets may still be on the generation written now: wait for a grace period that began after
  // the flip that left it. When this process made that flip, the one it started then (below) is
  // usually over; otherwise one starts now and runs while the digests are computed.
  const mine = graceAfterFlip.get(ctlId);
  const waiting = ctl.flipNs === 0n ? undefined : mine?.flipNs === ctl.flipNs ? mine.done : grace();
  const digests = setDigests(set);
  const tGrace = performance.now();
  await waiting;
  const graceMs = performance.now() - tGrace;

  // The idle generation's counters move to the base of the policies that stay.
  const ids = new Set(set.rules.map((r) => r.id));
  foldIdleCounters(maps, ctl, ids);

  // Tables the idle generation already holds exactly are left as they are (re-applying a set,
  // or changing one policy of many, rewrites only what differs). The others are marked unknown
  // before they are touched, so that an apply that dies half way is never trusted later.
  const stale = ctl.g[next].digests;
  const changed = digests.map((d, k) => stale[k] !== d);
  const g = [...ctl.g] as PolicyCtl['g'];
  g[next] = { ...g[next], digests: stale.map((d, k) => (changed[k] ? 0n : d)) };
  maps.ctl.update(u32(0), encodePolicyCtl({ gen: active, flipNs: ctl.flipNs, g }));

  let clearMs = 0;
  const clear = (map: BpfMap, mine: (k: Buffer) => boolean) => {
    const c = performance.now();
    deleteKeys(map, allKeys(map).filter(mine));
    clearMs += performance.now() - c;
  };
  const plans = [dimsOf(set.srcPrefixes), dimsOf(set.dstPrefixes)] as const;
  const dims = [plans[0].dims, plans[1].dims] as const;
  const writePrefixes = (dim: 0 | 1, trie: BpfMap, prefixes: CompiledSet['srcPrefixes']) => {
    clear(trie, (k) => decodePolicyLpmKey(k).gen === next);
    clear(maps.prefixes, (k) => {
      const key = decodePolicyPrefixKey(k);
      return key.gen === next && key.dim === dim;
    });
    const hashed = prefixes.filter((e) => dims[dim][e.prefix.family === 4 ? 0 : 1].mode === PolicyLookup.hash);
    const tried = prefixes.filter((e) => dims[dim][e.prefix.family === 4 ? 0 : 1].mode === PolicyLookup.trie);
    const family = (e: CompiledSet['srcPrefixes'][number]) => addressFamilyOf(e.prefix.family);
    writeEntries(
      maps.prefixes,
      hashed.map((e) => encodePolicyPrefixKey({ gen: next, dim, family: family(e), len: e.prefix.len, addr: e.prefix.addr })),
      hashed.map((e) => u32(e.cls)),
    );
    writeEntries(
      trie,
      tried.map((e) => encodePolicyLpmKey({ gen: next, family: family(e), addr: e.prefix.addr, len: e.prefix.len })),
      tried.map((e) => u32(e.cls)),
    );
    // IPv4 direct tables: every chunk the table uses; the others are never referenced.
    const v4 = plans[dim].v4;
    if (v4) {
      const base = (next * 2 + dim) * POLICY.v4Region;
      writeEntries(
        maps.v4,
        v4.chunks.map((_, i) => u32(base + i)),
        v4.chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)),
      );
    }
  };
  if (changed[TABLE.src]) writePrefixes(0, maps.src, set.srcPrefixes);
  if (changed[TABLE.dst]) writePrefixes(1, maps.dst, set.dstPrefixes);
  if (changed[TABLE.ports]) maps.ports.updateBatchFlat(portKeys(next), portValues(set));
  // The combination table: only its own slots are written, under an epoch no older slot of
  // the region carries (the program ignores slots of other epochs).
  let combo = { comboMask: ctl.g[next].comboMask, comboSeed: ctl.g[next].comboSeed, comboEpoch: ctl.g[next].comboEpoch };
  if (changed[TABLE.combos]) {
    const table = set.comboTable;
    const epoch = (Math.max(ctl.g[0].comboEpoch, ctl.g[1].comboEpoch) + 1) >>> 0 || 1;
    const base = next * POLICY.comboSlots;
    const size = maps.combos.valueSize;
    const keys = u32Keys(table.slots.size);
    const values = Buffer.alloc(size * table.slots.size);
    let k = 0;
    // One key object for all slots (the writer copies it), and no entry arrays from the Map.
    const key = { gen: 0, proto: 0, sportClass: 0, dportClass: 0, srcClass: 0, dstClass: 0 };
    table.slots.forEach((c, i) => {
      keys.set(k, base + i);
      key.proto = c.proto;
      key.sportClass = c.sportClass;
      key.dportClass = c.dportClass;
      key.srcClass = c.srcClass;
      key.dstClass = c.dstClass;
      writePolicyComboSlot(values, size * k++, key, epoch, c.slots, c.plain ? POLICY_COMBO_PLAIN : 0);
    });
    maps.combos.updateBatchFlat(keys.buf, values);
    combo = { comboMask: table.mask, comboSeed: table.seed, comboEpoch: epoch };
  }
  // Before the first flip no slot can hold a rule worth keeping: nothing to read back.
  if (changed[TABLE.rules]) writeRules(maps.rules, set, next, ctl.flipNs === 0n);

  // The idle generation's header first (packets do not read it), then the flip.
  const portDirs = (set.sportClass.some((c) => c !== 0) ? 1 : 0) | (set.dportClass.some((c) => c !== 0) ? 2 : 0);
  const comboProtos = new Array<boolean>(256).fill(false);
  for (const c of set.combos) comboProtos[c.proto] = true;
  const zeroClasses = (set.combos.some((c) => c.srcClass === 0) ? 1 : 0) | (set.combos.some((c) => c.dstClass === 0) ? 2 : 0);
  g[next] = { rules: set.rules.length, portDirs, zeroClasses, protoBits: protoBits(set.protoBits), comboProtos: protoBits(comboProtos), dims: [dims[0], dims[1]], ...combo, digests };
  maps.ctl.update(u32(0), encodePolicyCtl({ gen: active, flipNs: ctl.flipNs, g }));
  await options.beforeFlip?.();
  const flipNs = now();
  maps.ctl.update(u32(0), encodePolicyCtl({ gen: next, flipNs, g }));
  const t2 = performance.now();
  // The next apply's wait starts now (off the event loop): one that comes later in this process,
  // as an agent's or a benchmark's does, finds it over.
  const done = grace();
  done.catch(() => undefined);
  graceAfterFlip.set(ctlId, { flipNs, done });

  // Windows of policies that are not in the set (none can have left when the rules are those of
  // the generation that was active). A packet still on the old generation may recreate one; the
  // next apply removes it again.
  const removed = new Set<number>();
  if (ctl.g[active].digests[TABLE.rules] !== digests[TABLE.rules]) {
    const stale = allKeys(maps.triggers).filter((k) => !ids.has(decodePolicyTriggerKey(k).id));
    for (const k of stale) removed.add(decodePolicyTriggerKey(k).id);
    deleteKeys(maps.triggers, stale);
    // Emulation states (random sequences, buckets) likewise.
    deleteKeys(maps.actStates, allKeys(maps.actStates).filter((k) => !ids.has(decodePolicyTriggerKey(k).id)));
  }
  return {
    gen: next,
    rules: set.rules.length,
    removed: [...removed],
    written: Object.keys(TABLE).filter((_, k) => changed[k]),
    ms: { grace: graceMs, clear: clearMs, write: t2 - t0 - clearMs - graceMs, total: performance.now() - t0 },
  };
}
