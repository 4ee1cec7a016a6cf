// Codecs of every value the XDP program shares with user space, built on the kernel ABI that
// scripts/gen-abi.mjs generates from the BTF of build/bpf/bae.o (src/datapath/abi.gen.ts):
// struct layouts and enum values are never written here by hand, so a field added to
// bpf/bae.h needs an edit here only where a codec reads or writes it.
//
// u64 fields decode as bigint (exact), narrower ones as number. Per-CPU maps (bae_stats,
// bae_convs) hand out one value per possible CPU; the merge functions fold them into one.
import os from 'node:os';
import { ENUMS, STRUCTS } from './abi.gen';
import type { AbiStruct } from './abi-types';
import { formatAddress, parseAddress, type IpVersion } from './address';

// ---- bounds and knobs --------------------------------------------------------------------

export const VLAN_MAX = ENUMS.bae_bounds.BAE_VLAN_MAX;
export const IPV6_EXT_MAX = ENUMS.bae_bounds.BAE_IPV6_EXT_MAX;
export const SIZE_BUCKETS = ENUMS.bae_bounds.BAE_SIZE_BUCKETS;
export const TCP_FLAGS = ENUMS.bae_bounds.BAE_TCP_FLAGS;
export const VERDICTS = ENUMS.bae_bounds.BAE_VERDICTS;

/** Map names in build/bpf/bae.o. */
export const MAPS = {
  convs: 'bae_convs',
  tcpFlows: 'bae_tcp_flows',
  stats: 'bae_stats',
  ports: 'bae_ports',
  testClock: 'bae_test_clock',
} as const;

/** The XDP program's name in build/bpf/bae.o. */
export const PROGRAM = 'bae_xdp';

/** `const volatile` knobs, set through loadCollection({ constants }). */
export const CONSTANTS = { mode: 'bae_mode', clock: 'bae_clock' } as const;

export const Mode = { ingress: ENUMS.bae_mode.BAE_MODE_INGRESS, inline: ENUMS.bae_mode.BAE_MODE_INLINE } as const;
export const Clock = { real: ENUMS.bae_clock.BAE_CLOCK_REAL, test: ENUMS.bae_clock.BAE_CLOCK_TEST } as const;

export const AF_INET = 2;
export const AF_INET6 = 10;

type ParseEnumName = Exclude<keyof typeof ENUMS.bae_parse, 'BAE_PARSE_NO_L3' | 'BAE_PARSE_MAX'>;
/** An outcome of enum bae_parse by its C name in lower case without the prefix: 'tcp', 'trunc_l4'. */
export type ParseOutcome = ParseEnumName extends `BAE_PARSE_${infer N}` ? Lowercase<N> : never;

/** enum bae_parse, in order: the index is the outcome's value and its slot in stats.parse. */
export const PARSE_OUTCOMES: readonly ParseOutcome[] = Object.entries(ENUMS.bae_parse)
  .filter(([name]) => name !== 'BAE_PARSE_NO_L3' && name !== 'BAE_PARSE_MAX')
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name.slice('BAE_PARSE_'.length).toLowerCase() as ParseOutcome);
/** Outcomes before this index had an IP header and count in a conversation profile. */
export const PARSE_NO_L3 = ENUMS.bae_parse.BAE_PARSE_NO_L3;

export function parseOutcomeHasL3(outcome: ParseOutcome): boolean {
  return PARSE_OUTCOMES.indexOf(outcome) < PARSE_NO_L3;
}

/** XDP action codes, the index of stats.verdicts. */
export const VERDICT_NAMES = ['aborted', 'drop', 'pass', 'tx', 'redirect'] as const;
export type VerdictName = (typeof VERDICT_NAMES)[number];
export const XDP = { aborted: 0, drop: 1, pass: 2, tx: 3, redirect: 4 } as const;

/** TCP flags in the bit order of the header's flag byte: the index of ConvDir.tcpFlags. */
export const TCP_FLAG_NAMES = ['fin', 'syn', 'rst', 'psh', 'ack', 'urg', 'ece', 'cwr'] as const;
export type TcpFlagName = (typeof TCP_FLAG_NAMES)[number];

export const Dir = { aToB: ENUMS.bae_dir.BAE_DIR_A_TO_B, bToA: ENUMS.bae_dir.BAE_DIR_B_TO_A } as const;

// ---- struct layouts -------------------------------------------------------------------------

/** A struct of bpf/bae.h as the compiler laid it out (generated: abi.gen.ts). */
export type StructLayout = AbiStruct;

/** Every struct of bpf/bae.h, by its C name. */
export const LAYOUTS: Readonly<Record<string, StructLayout>> = STRUCTS;

function off(layout: string, field: string): number {
  return LAYOUTS[layout]!.fields[field]!.offset;
}

function checkSize(what: string, buf: Buffer, at: number, size: number): void {
  if (buf.length < at + size) {
    throw new RangeError(`${what}: need ${size} bytes at offset ${at}, the buffer has ${buf.length}`);
  }
}

// ---- addresses ----------------------------------------------------------------------------------

/** The address family of a kernel key (AF_INET, AF_INET6); policies speak of IpVersion (4, 6). */
export type AddressFamily = typeof AF_INET | typeof AF_INET6;

export const addressFamilyOf = (v: IpVersion): AddressFamily => (v === 4 ? AF_INET : AF_INET6);

/** 16 bytes in network order (IPv4 in the first 4, the rest zero) and the address family. */
export function encodeAddress(addr: string): { family: AddressFamily; bytes: Buffer } {
  const parsed = parseAddress(addr);
  if (!parsed) throw new RangeError(`not an IPv4 or IPv6 address: '${addr}'`);
  return { family: addressFamilyOf(parsed.family), bytes: Buffer.from(parsed.addr) };
}

/** Text form of an address of `family` from its 16 key bytes. */
export function decodeAddress(family: number, bytes: Buffer): string {
  return formatAddress(family === AF_INET ? 4 : 6, bytes);
}

// ---- conversation keys ----------------------------------------------------------------------

export interface ConvKey {
  family: AddressFamily;
  /** The lower address: dir[Dir.aToB] is what a sent to b. */
  a: string;
  b: string;
}

/** The conversation of a packet from `src` to `dst`, and the packet's direction in it. */
export function convKeyFor(src: string, dst: string): { key: ConvKey; dir: 0 | 1 } {
  const s = encodeAddress(src);
  const d = encodeAddress(dst);
  if (s.family !== d.family) throw new RangeError(`addresses of different families: ${src}, ${dst}`);
  const cmp = Buffer.compare(s.bytes, d.bytes);
  return cmp <= 0
    ? { key: { family: s.family, a: src, b: dst }, dir: Dir.aToB }
    : { key: { family: s.family, a: dst, b: src }, dir: Dir.bToA };
}

export function encodeConvKey(key: ConvKey): Buffer {
  const layout = LAYOUTS.bae_conv_key!;
  const buf = Buffer.alloc(layout.size);
  const a = encodeAddress(key.a);
  const b = encodeAddress(key.b);
  if (a.family !== key.family || b.family !== key.family) {
    throw new RangeError(`conversation key ${key.a} - ${key.b}: addresses are not of family ${key.family}`);
  }
  if (Buffer.compare(a.bytes, b.bytes) > 0) {
    throw new RangeError(`conversation key ${key.a} - ${key.b}: a must be the lower address (see convKeyFor)`);
  }
  buf[off('bae_conv_key', 'family')] = key.family;
  a.bytes.copy(buf, off('bae_conv_key', 'addr_a'));
  b.bytes.copy(buf, off('bae_conv_key', 'addr_b'));
  return buf;
}

export function decodeConvKey(buf: Buffer): ConvKey {
  checkSize('bae_conv_key', buf, 0, LAYOUTS.bae_conv_key!.size);
  const family = buf[off('bae_conv_key', 'family')]!;
  if (family !== AF_INET && family !== AF_INET6) throw new RangeError(`bae_conv_key: unknown family ${family}`);
  const a = off('bae_conv_key', 'addr_a');
  const b = off('bae_conv_key', 'addr_b');
  return {
    family,
    a: decodeAddress(family, buf.subarray(a, a + 16)),
    b: decodeAddress(family, buf.subarray(b, b + 16)),
  };
}

// ---- conversation profiles --------------------------------------------------------------------

export interface ConvDir {
  packets: bigint;
  /** Frame bytes as on the wire; also the sum of frame sizes. */
  bytes: bigint;
  firstSeenNs: bigint;
  lastSeenNs: bigint;
  sizeSumSq: bigint;
  iatSumNs: bigint;
  /** Sum of (gap_ns >> 10)^2. */
  iatSumSq1024ns: bigint;
  sizeHist: bigint[];
  /** By TCP_FLAG_NAMES. */
  tcpFlags: bigint[];
  retransmits: bigint;
  outOfOrder: bigint;
  zeroWindow: bigint;
  sizeMin: number;
  sizeMax: number;
  ttlMin: number;
  ttlMax: number;
  ttlLast: number;
  /** Inter-arrival gaps behind iatSumNs: packets - 1 for each CPU copy that saw packets. */
  iatCount: bigint;
}

export interface Conv {
  /** By Dir: [a->b, b->a]. */
  dir: [ConvDir, ConvDir];
}

function u64s(buf: Buffer, at: number, n: number): bigint[] {
  return Array.from({ length: n }, (_, i) => buf.readBigUInt64LE(at + 8 * i));
}

/** One CPU's copy of one direction, starting at `at` of `buf`. */
export function decodeConvDir(buf: Buffer, at = 0): ConvDir {
  const L = LAYOUTS.bae_conv_dir!;
  checkSize('bae_conv_dir', buf, at, L.size);
  const u64 = (f: string): bigint => buf.readBigUInt64LE(at + L.fields[f]!.offset);
  const u32 = (f: string): number => buf.readUInt32LE(at + L.fields[f]!.offset);
  const u8 = (f: string): number => buf[at + L.fields[f]!.offset]!;
  const packets = u64('packets');
  return {
    packets,
    bytes: u64('bytes'),
    firstSeenNs: u64('first_seen_ns'),
    lastSeenNs: u64('last_seen_ns'),
    sizeSumSq: u64('size_sum_sq'),
    iatSumNs: u64('iat_sum_ns'),
    iatSumSq1024ns: u64('iat_sum_sq_1024ns'),
    sizeHist: u64s(buf, at + L.fields.size_hist!.offset, SIZE_BUCKETS),
    tcpFlags: u64s(buf, at + L.fields.tcp_flags!.offset, TCP_FLAGS),
    retransmits: u64('retransmits'),
    outOfOrder: u64('out_of_order'),
    zeroWindow: u64('zero_window'),
    sizeMin: u32('size_min'),
    sizeMax: u32('size_max'),
    ttlMin: u8('ttl_min'),
    ttlMax: u8('ttl_max'),
    ttlLast: u8('ttl_last'),
    iatCount: packets > 0n ? packets - 1n : 0n,
  };
}

/** An empty direction (what a direction that never sent decodes and merges to). */
export function emptyConvDir(): ConvDir {
  return decodeConvDir(Buffer.alloc(LAYOUTS.bae_conv_dir!.size));
}

/**
 * Folds per-CPU copies of one direction into one: counts and sums add; first seen, size and TTL
 * minimum take the smallest of the copies that saw packets, last seen and maxima the largest;
 * the latest TTL is that of the copy seen last.
 */
export function mergeConvDirs(parts: readonly ConvDir[]): ConvDir {
  const seen = parts.filter((p) => p.packets > 0n);
  const out = emptyConvDir();
  if (seen.length === 0) return out;
  const latest = seen.reduce((x, y) => (y.lastSeenNs > x.lastSeenNs ? y : x));
  for (const p of seen) {
    out.packets += p.packets;
    out.bytes += p.bytes;
    out.sizeSumSq += p.sizeSumSq;
    out.iatSumNs += p.iatSumNs;
    out.iatSumSq1024ns += p.iatSumSq1024ns;
    out.iatCount += p.iatCount;
    out.retransmits += p.retransmits;
    out.outOfOrder += p.outOfOrder;
    out.zeroWindow += p.zeroWindow;
    p.sizeHist.forEach((v, i) => (out.sizeHist[i]! += v));
    p.tcpFlags.forEach((v, i) => (out.tcpFlags[i]! += v));
  }
  out.firstSeenNs = seen.reduce((m, p) => (p.firstSeenNs < m ? p.firstSeenNs : m), seen[0]!.firstSeenNs);
  out.lastSeenNs = latest.lastSeenNs;
  out.sizeMin = Math.min(...seen.map((p) => p.sizeMin));
  out.sizeMax = Math.max(...seen.map((p) => p.sizeMax));
  out.ttlMin = Math.min(...seen.map((p) => p.ttlMin));
  out.ttlMax = Math.max(...seen.map((p) => p.ttlMax));
  out.ttlLast = latest.ttlLast;
  return out;
}

/** One CPU's struct bae_conv. */
export function decodeConv(buf: Buffer): Conv {
  const size = LAYOUTS.bae_conv_dir!.size;
  return { dir: [decodeConvDir(buf, 0), decodeConvDir(buf, size)] };
}

/** A bae_convs value as lookupPerCpu returns it (one Buffer per CPU), merged. */
export function mergeConvPerCpu(values: readonly Buffer[]): Conv {
  const copies = values.map(decodeConv);
  return { dir: [mergeConvDirs(copies.map((c) => c.dir[0])), mergeConvDirs(copies.map((c) => c.dir[1]))] };
}

/** Encodes one CPU's copy (for tests and tools that seed the map). */
export function encodeConvDir(d: ConvDir, buf: Buffer = Buffer.alloc(LAYOUTS.bae_conv_dir!.size), at = 0): Buffer {
  const L = LAYOUTS.bae_conv_dir!;
  checkSize('bae_conv_dir', buf, at, L.size);
  const u64 = (f: string, v: bigint): void => void buf.writeBigUInt64LE(v, at + L.fields[f]!.offset);
  u64('packets', d.packets);
  u64('bytes', d.bytes);
  u64('first_seen_ns', d.firstSeenNs);
  u64('last_seen_ns', d.lastSeenNs);
  u64('size_sum_sq', d.sizeSumSq);
  u64('iat_sum_ns', d.iatSumNs);
  u64('iat_sum_sq_1024ns', d.iatSumSq1024ns);
  d.sizeHist.forEach((v, i) => buf.writeBigUInt64LE(v, at + L.fields.size_hist!.offset + 8 * i));
  d.tcpFlags.forEach((v, i) => buf.writeBigUInt64LE(v, at + L.fields.tcp_flags!.offset + 8 * i));
  u64('retransmits', d.retransmits);
  u64('out_of_order', d.outOfOrder);
  u64('zero_window', d.zeroWindow);
  buf.writeUInt32LE(d.sizeMin, at + L.fields.size_min!.offset);
  buf.writeUInt32LE(d.sizeMax, at + L.fields.size_max!.offset);
  buf[at + L.fields.ttl_min!.offset] = d.ttlMin;
  buf[at + L.fields.ttl_max!.offset] = d.ttlMax;
  buf[at + L.fields.ttl_last!.offset] = d.ttlLast;
  return buf;
}

export function encodeConv(conv: Conv): Buffer {
  const size = LAYOUTS.bae_conv_dir!.size;
  const buf = Buffer.alloc(LAYOUTS.bae_conv!.size);
  encodeConvDir(conv.dir[0], buf, 0);
  encodeConvDir(conv.dir[1], buf, size);
  return buf;
}

/** The frame-size histogram bucket of a frame length (see BAE_SIZE_BUCKETS in bae.h). */
export function sizeBucket(len: number): number {
  if (len < 64) return 0;
  return Math.min(SIZE_BUCKETS - 1, Math.floor(Math.log2(len)) - 5);
}

// ---- TCP flows --------------------------------------------------------------------------------

export interface FlowKey {
  family: AddressFamily;
  proto: number;
  a: string;
  portA: number;
  b: string;
  portB: number;
}

export interface TcpHalf {
  seqHigh: number;
  ack: number;
  window: number;
  seen: boolean;
}

/** The flow of a TCP segment, oriented like the program does it, and the segment's direction. */
export function flowKeyFor(src: string, sport: number, dst: string, dport: number): { key: FlowKey; dir: 0 | 1 } {
  const { key: conv, dir: convDir } = convKeyFor(src, dst);
  const dir = conv.a === conv.b || Buffer.compare(encodeAddress(src).bytes, encodeAddress(dst).bytes) === 0
    ? (sport <= dport ? Dir.aToB : Dir.bToA)
    : convDir;
  const key = dir === Dir.aToB
    ? { family: conv.family, proto: 6, a: src, portA: sport, b: dst, portB: dport }
    : { family: conv.family, proto: 6, a: dst, portA: dport, b: src, portB: sport };
  return { key, dir };
}

export function encodeFlowKey(key: FlowKey): Buffer {
  const buf = Buffer.alloc(LAYOUTS.bae_flow_key!.size);
  const a = encodeAddress(key.a);
  const b = encodeAddress(key.b);
  if (a.family !== key.family || b.family !== key.family) {
    throw new RangeError(`flow key ${key.a} - ${key.b}: addresses are not of family ${key.family}`);
  }
  buf[off('bae_flow_key', 'family')] = key.family;
  buf[off('bae_flow_key', 'proto')] = key.proto;
  buf.writeUInt16LE(key.portA, off('bae_flow_key', 'port_a'));
  buf.writeUInt16LE(key.portB, off('bae_flow_key', 'port_b'));
  a.bytes.copy(buf, off('bae_flow_key', 'addr_a'));
  b.bytes.copy(buf, off('bae_flow_key', 'addr_b'));
  return buf;
}

export function decodeFlowKey(buf: Buffer): FlowKey {
  checkSize('bae_flow_key', buf, 0, LAYOUTS.bae_flow_key!.size);
  const family = buf[off('bae_flow_key', 'family')]! as AddressFamily;
  const a = off('bae_flow_key', 'addr_a');
  const b = off('bae_flow_key', 'addr_b');
  return {
    family,
    proto: buf[off('bae_flow_key', 'proto')]!,
    a: decodeAddress(family, buf.subarray(a, a + 16)),
    portA: buf.readUInt16LE(off('bae_flow_key', 'port_a')),
    b: decodeAddress(family, buf.subarray(b, b + 16)),
    portB: buf.readUInt16LE(off('bae_flow_key', 'port_b')),
  };
}

export function decodeTcpFlow(buf: Buffer): [TcpHalf, TcpHalf] {
  const L = LAYOUTS.bae_tcp_half!;
  checkSize('bae_tcp_flow', buf, 0, LAYOUTS.bae_tcp_flow!.size);
  const half = (at: number): TcpHalf => ({
    seqHigh: buf.readUInt32LE(at + L.fields.seq_high!.offset),
    ack: buf.readUInt32LE(at + L.fields.ack!.offset),
    window: buf.readUInt16LE(at + L.fields.window!.offset),
    seen: buf[at + L.fields.seen!.offset] !== 0,
  });
  return [half(0), half(L.size)];
}

// ---- global counters ----------------------------------------------------------------------------

export interface Stats {
  verdicts: Record<VerdictName, bigint>;
  parse: Record<ParseOutcome, bigint>;
  inlineNoPort: bigint;
  convFull: bigint;
  flowFull: bigint;
}

/** One CPU's struct bae_stats. */
export function decodeStats(buf: Buffer): Stats {
  const L = LAYOUTS.bae_stats!;
  checkSize('bae_stats', buf, 0, L.size);
  const v = L.fields.verdicts!.offset;
  const p = L.fields.parse!.offset;
  return {
    verdicts: Object.fromEntries(VERDICT_NAMES.map((n, i) => [n, buf.readBigUInt64LE(v + 8 * i)])) as Stats['verdicts'],
    parse: Object.fromEntries(PARSE_OUTCOMES.map((n, i) => [n, buf.readBigUInt64LE(p + 8 * i)])) as Stats['parse'],
    inlineNoPort: buf.readBigUInt64LE(L.fields.inline_no_port!.offset),
    convFull: buf.readBigUInt64LE(L.fields.conv_full!.offset),
    flowFull: buf.readBigUInt64LE(L.fields.flow_full!.offset),
  };
}

/** The bae_stats value as lookupPerCpu returns it (one Buffer per CPU), summed. */
export function sumStatsPerCpu(values: readonly Buffer[]): Stats {
  const total = decodeStats(Buffer.alloc(LAYOUTS.bae_stats!.size));
  for (const s of values.map(decodeStats)) {
    for (const n of VERDICT_NAMES) total.verdicts[n] += s.verdicts[n];
    for (const n of PARSE_OUTCOMES) total.parse[n] += s.parse[n];
    total.inlineNoPort += s.inlineNoPort;
    total.convFull += s.convFull;
    total.flowFull += s.flowFull;
  }
  return total;
}

// ==== policy engine =============================================================================
// Owned by the policy engine (src/policy/); mirrors the policy section of bpf/bae.h.

/** Map names of the policy stage (bpf/policy.h). */
export const POLICY_MAPS = {
  ctl: 'policy_ctl',
  prefixes: 'policy_prefixes',
  src: 'policy_src',
  dst: 'policy_dst',
  ports: 'policy_ports',
  v4: 'policy_v4',
  combos: 'policy_combos',
  rules: 'policy_rules',
  triggers: 'policy_triggers',
  counters: 'policy_counters',
  counterBase: 'policy_counter_base',
  blocklist: 'policy_blocklist',
  blockUsed: 'policy_block_used',
  stats: 'policy_stats',
  events: 'policy_events',
  actStates: 'policy_act_states',
} as const;

const PB = ENUMS.policy_bounds;
/** Bounds of bae.h's policy section (POLICY_*). */
export const POLICY = {
  maxRules: PB.POLICY_MAX_RULES,
  maxPrefixes: PB.POLICY_MAX_PREFIXES,
  maxCombos: PB.POLICY_MAX_COMBOS,
  maxCandidates: PB.POLICY_MAX_CANDIDATES,
  windowBuckets: PB.POLICY_WINDOW_BUCKETS,
  ports: PB.POLICY_PORTS,
  portsPerEntry: ENUMS.policy_ports_layout.POLICY_PORTS_PER_ENTRY,
  /** POLICY_PORT_USED: the bit on a port class that some combination has. */
  portUsed: ENUMS.policy_ports_layout.POLICY_PORT_USED,
  protoOther: PB.POLICY_PROTO_OTHER,
  /** enum policy_table: src, dst, ports, combos, rules. */
  tables: ENUMS.policy_table.POLICY_TABLES,
  /** POLICY_HASH_LENGTHS: a dimension with at most this many prefix lengths uses hash lookups. */
  hashLengths: ENUMS.policy_lookup_bounds.POLICY_HASH_LENGTHS,
  /** POLICY_V4_REGION: chunks of policy_v4 per (generation, dimension); the first 256 are the /16 level. */
  v4Region: ENUMS.policy_v4_layout.POLICY_V4_REGION,
  /** POLICY_V4_CHUNK: an entry of policy_v4 that names a chunk, not a class. */
  v4Chunk: 2 ** ENUMS.policy_v4_layout.POLICY_V4_CHUNK_BIT,
  /** POLICY_COMBO_WAYS: slots per bucket of the combination table. */
  comboWays: ENUMS.policy_combo_layout.POLICY_COMBO_WAYS,
  /** POLICY_COMBO_SLOTS: slots of one generation's combination table. */
  comboSlots: ENUMS.policy_combo_layout.POLICY_COMBO_SLOTS,
  /** POLICY_CORRUPT_BITS_MAX: bits one corrupt action flips in one packet. */
  corruptBitsMax: PB.POLICY_CORRUPT_BITS_MAX,
  /** POLICY_PROB_ONE: probabilities are fractions of 2^32. */
  probOne: 1n << BigInt(ENUMS.policy_prob.POLICY_PROB_BITS),
} as const;

export const PolicyEventKind = {
  fire: ENUMS.policy_event_kind.POLICY_EVENT_FIRE,
  block: ENUMS.policy_event_kind.POLICY_EVENT_BLOCK,
  match: ENUMS.policy_event_kind.POLICY_EVENT_MATCH,
} as const;

function pf(layout: string, field: string): number {
  return off(layout, field);
}

/** enum policy_lookup */
export const PolicyLookup = {
  none: ENUMS.policy_lookup.POLICY_LOOKUP_NONE,
  hash: ENUMS.policy_lookup.POLICY_LOOKUP_HASH,
  trie: ENUMS.policy_lookup.POLICY_LOOKUP_TRIE,
  v4: ENUMS.policy_lookup.POLICY_LOOKUP_V4,
} as const;

export interface PolicyDim {
  mode: number;
  /** Longest first, at most POLICY.hashLengths. */
  lens: number[];
}

export interface PolicyGenInfo {
  rules: number;
  /** Bit 0: some rule names source ports; bit 1: destination ports. */
  portDirs: number;
  /** Bit 0: some combination has source class 0; bit 1: destination class 0. */
  zeroClasses: number;
  /** [source, destination][IPv4, IPv6]. */
  dims: [[PolicyDim, PolicyDim], [PolicyDim, PolicyDim]];
  /** Four 64-bit words: bit p of the protocol bitmap is bit (p % 64) of word p / 64. */
  protoBits: [bigint, bigint, bigint, bigint];
  /** The same layout: proto classes some combination has. */
  comboProtos: [bigint, bigint, bigint, bigint];
  /** The combination table (src/policy/combo-table.ts): buckets - 1, hash seed, epoch of its slots. */
  comboMask: number;
  comboSeed: number;
  comboEpoch: number;
  /** Digest of each table's content for this generation (enum policy_table order), 0n: unknown. */
  digests: bigint[];
}

export interface PolicyCtl {
  gen: number;
  flipNs: bigint;
  g: [PolicyGenInfo, PolicyGenInfo];
}

export function encodePolicyCtl(ctl: PolicyCtl): Buffer {
  const buf = Buffer.alloc(LAYOUTS.policy_ctl!.size);
  buf.writeUInt32LE(ctl.gen, pf('policy_ctl', 'gen'));
  buf.writeBigUInt64LE(ctl.flipNs, pf('policy_ctl', 'flip_ns'));
  const g0 = pf('policy_ctl', 'g');
  const gs = LAYOUTS.policy_gen_info!.size;
  ctl.g.forEach((g, i) => {
    buf.writeUInt32LE(g.rules, g0 + i * gs + pf('policy_gen_info', 'rules'));
    buf[g0 + i * gs + pf('policy_gen_info', 'port_dirs')] = g.portDirs;
    buf[g0 + i * gs + pf('policy_gen_info', 'zero_classes')] = g.zeroClasses;
    g.dims.flat().forEach((d, k) => {
      const at = g0 + i * gs + pf('policy_gen_info', 'dims') + k * LAYOUTS.policy_dim!.size;
      if (d.lens.length > POLICY.hashLengths) throw new RangeError(`policy_dim: ${d.lens.length} lengths, at most ${POLICY.hashLengths}`);
      buf[at + pf('policy_dim', 'mode')] = d.mode;
      buf[at + pf('policy_dim', 'count')] = d.lens.length;
      d.lens.forEach((len, j) => (buf[at + pf('policy_dim', 'lens') + j] = len));
    });
    g.protoBits.forEach((w, k) => buf.writeBigUInt64LE(w, g0 + i * gs + pf('policy_gen_info', 'proto_bits') + 8 * k));
    g.comboProtos.forEach((w, k) => buf.writeBigUInt64LE(w, g0 + i * gs + pf('policy_gen_info', 'combo_protos') + 8 * k));
    buf.writeUInt32LE(g.comboMask, g0 + i * gs + pf('policy_gen_info', 'combo_mask'));
    buf.writeUInt32LE(g.comboSeed, g0 + i * gs + pf('policy_gen_info', 'combo_seed'));
    buf.writeUInt32LE(g.comboEpoch, g0 + i * gs + pf('policy_gen_info', 'combo_epoch'));
    g.digests.forEach((d, k) => buf.writeBigUInt64LE(d, g0 + i * gs + pf('policy_gen_info', 'digests') + 8 * k));
  });
  return buf;
}

export function decodePolicyCtl(buf: Buffer): PolicyCtl {
  checkSize('policy_ctl', buf, 0, LAYOUTS.policy_ctl!.size);
  const g0 = pf('policy_ctl', 'g');
  const gs = LAYOUTS.policy_gen_info!.size;
  const gen = (i: number): PolicyGenInfo => {
    const at = g0 + i * gs;
    const bits = at + pf('policy_gen_info', 'proto_bits');
    const dim = (k: number): PolicyDim => {
      const d = at + pf('policy_gen_info', 'dims') + k * LAYOUTS.policy_dim!.size;
      const count = Math.min(buf[d + pf('policy_dim', 'count')]!, POLICY.hashLengths);
      return { mode: buf[d + pf('policy_dim', 'mode')]!, lens: [...buf.subarray(d + pf('policy_dim', 'lens'), d + pf('policy_dim', 'lens') + count)] };
    };
    return {
      rules: buf.readUInt32LE(at + pf('policy_gen_info', 'rules')),
      portDirs: buf[at + pf('policy_gen_info', 'port_dirs')]!,
      zeroClasses: buf[at + pf('policy_gen_info', 'zero_classes')]!,
      dims: [
        [dim(0), dim(1)],
        [dim(2), dim(3)],
      ],
      protoBits: [0, 1, 2, 3].map((k) => buf.readBigUInt64LE(bits + 8 * k)) as PolicyGenInfo['protoBits'],
      comboProtos: [0, 1, 2, 3].map((k) => buf.readBigUInt64LE(at + pf('policy_gen_info', 'combo_protos') + 8 * k)) as PolicyGenInfo['comboProtos'],
      comboMask: buf.readUInt32LE(at + pf('policy_gen_info', 'combo_mask')),
      comboSeed: buf.readUInt32LE(at + pf('policy_gen_info', 'combo_seed')),
      comboEpoch: buf.readUInt32LE(at + pf('policy_gen_info', 'combo_epoch')),
      digests: Array.from({ length: POLICY.tables }, (_, k) => buf.readBigUInt64LE(at + pf('policy_gen_info', 'digests') + 8 * k)),
    };
  };
  return { gen: buf.readUInt32LE(pf('policy_ctl', 'gen')), flipNs: buf.readBigUInt64LE(pf('policy_ctl', 'flip_ns')), g: [gen(0), gen(1)] };
}

export interface PolicyLpmKey {
  gen: number;
  family: AddressFamily;
  /** 16 bytes, IPv4 in the first 4. */
  addr: Uint8Array;
  /** Address prefix length (0..32 or 0..128), without the 16 bits of gen and family. */
  len: number;
}

export function encodePolicyLpmKey(k: PolicyLpmKey): Buffer {
  const buf = Buffer.alloc(LAYOUTS.policy_lpm_key!.size);
  buf.writeUInt32LE(16 + k.len, pf('policy_lpm_key', 'prefixlen'));
  buf[pf('policy_lpm_key', 'gen')] = k.gen;
  buf[pf('policy_lpm_key', 'family')] = k.family;
  buf.set(k.addr, pf('policy_lpm_key', 'addr'));
  return buf;
}

export function decodePolicyLpmKey(buf: Buffer): PolicyLpmKey {
  checkSize('policy_lpm_key', buf, 0, LAYOUTS.policy_lpm_key!.size);
  const a = pf('policy_lpm_key', 'addr');
  return {
    gen: buf[pf('policy_lpm_key', 'gen')]!,
    family: buf[pf('policy_lpm_key', 'family')]! as AddressFamily,
    addr: Uint8Array.from(buf.subarray(a, a + 16)),
    len: buf.readUInt32LE(pf('policy_lpm_key', 'prefixlen')) - 16,
  };
}

export interface PolicyPrefixKey {
  gen: number;
  /** 0 source, 1 destination. */
  dim: number;
  family: AddressFamily;
  len: number;
  /** 16 bytes, masked to len bits. */
  addr: Uint8Array;
}

export function encodePolicyPrefixKey(k: PolicyPrefixKey): Buffer {
  const buf = Buffer.alloc(LAYOUTS.policy_prefix_key!.size);
  buf[pf('policy_prefix_key', 'gen')] = k.gen;
  buf[pf('policy_prefix_key', 'dim')] = k.dim;
  buf[pf('policy_prefix_key', 'family')] = k.family;
  buf[pf('policy_prefix_key', 'len')] = k.len;
  buf.set(k.addr.subarray(0, 16), pf('policy_prefix_key', 'addr'));
  return buf;
}

export function decodePolicyPrefixKey(buf: Buffer): PolicyPrefixKey {
  checkSize('policy_prefix_key', buf, 0, LAYOUTS.policy_prefix_key!.size);
  const a = pf('policy_prefix_key', 'addr');
  return {
    gen: buf[pf('policy_prefix_key', 'gen')]!,
    dim: buf[pf('policy_prefix_key', 'dim')]!,
    family: buf[pf('policy_prefix_key', 'family')]! as AddressFamily,
    len: buf[pf('policy_prefix_key', 'len')]!,
    addr: Uint8Array.from(buf.subarray(a, a + 16)),
  };
}

export interface PolicyComboKey {
  gen: number;
  proto: number;
  sportClass: number;
  dportClass: number;
  srcClass: number;
  dstClass: number;
}

/** POLICY_COMBO_PLAIN: every candidate of the combination is plain (see bae.h). */
export const POLICY_COMBO_PLAIN = ENUMS.policy_combo_flag.POLICY_COMBO_PLAIN;

let comboSlotAt: { key: number; epoch: number; combo: number; k: Record<'gen' | 'proto' | 'sport_class' | 'dport_class' | 'src_class' | 'dst_class', number>; c: Record<'count' | 'flags' | 'slots', number> } | undefined;

/** Writes struct policy_combo_slot into `buf` at `at` (the bytes there must be zero: padding and unused candidates are not written). */
export function writePolicyComboSlot(buf: Buffer, at: number, key: PolicyComboKey, epoch: number, slots: readonly number[], flags = 0): void {
  if (slots.length > POLICY.maxCandidates) throw new RangeError(`policy_combo: ${slots.length} slots, at most ${POLICY.maxCandidates}`);
  checkSize('policy_combo_slot', buf, at, LAYOUTS.policy_combo_slot!.size);
  const o = (comboSlotAt ??= {
    ...offsetsOf('policy_combo_slot', ['key', 'epoch', 'combo'] as const),
    k: offsetsOf('policy_combo_key', ['gen', 'proto', 'sport_class', 'dport_class', 'src_class', 'dst_class'] as const),
    c: offsetsOf('policy_combo', ['count', 'flags', 'slots'] as const),
  });
  const k = at + o.key;
  buf[k + o.k.gen] = key.gen;
  buf[k + o.k.proto] = key.proto;
  writeU16(buf, k + o.k.sport_class, key.sportClass);
  writeU16(buf, k + o.k.dport_class, key.dportClass);
  writeU32(buf, k + o.k.src_class, key.srcClass);
  writeU32(buf, k + o.k.dst_class, key.dstClass);
  writeU32(buf, at + o.epoch, epoch);
  const c = at + o.combo;
  writeU16(buf, c + o.c.count, slots.length);
  writeU16(buf, c + o.c.flags, flags);
  for (let i = 0; i < slots.length; i++) writeU16(buf, c + o.c.slots + 2 * i, slots[i]!);
}

/** struct policy_emul: parameters of the emulation actions (probabilities in 2^-32 units). */
export interface PolicyEmul {
  seed: bigint;
  lossP: bigint;
  lossCorr: bigint;
  lossBad: bigint;
  lossGood: bigint;
  corruptP: bigint;
  rateBps: bigint;
  rateCap: bigint;
  rateFullNs: bigint;
  truncateLen: number;
  lossModel: number;
  corruptBits: number;
  corruptRegion: number;
  corruptFix: number;
  truncateMode: number;
  truncateFix: number;
  tcpSet: number;
  tcpClear: number;
  rateScope: number;
}

const EMUL_U64 = [['seed', 'seed'], ['lossP', 'loss_p'], ['lossCorr', 'loss_corr'], ['lossBad', 'loss_bad'], ['lossGood', 'loss_good'], ['corruptP', 'corrupt_p'], ['rateBps', 'rate_bps'], ['rateCap', 'rate_cap'], ['rateFullNs', 'rate_full_ns']] as const;
const EMUL_U8 = [['lossModel', 'loss_model'], ['corruptBits', 'corrupt_bits'], ['corruptRegion', 'corrupt_region'], ['corruptFix', 'corrupt_fix'], ['truncateMode', 'truncate_mode'], ['truncateFix', 'truncate_fix'], ['tcpSet', 'tcp_set'], ['tcpClear', 'tcp_clear'], ['rateScope', 'rate_scope']] as const;

export function emptyPolicyEmul(): PolicyEmul {
  return { seed: 0n, lossP: 0n, lossCorr: 0n, lossBad: 0n, lossGood: 0n, corruptP: 0n, rateBps: 0n, rateCap: 0n, rateFullNs: 0n, truncateLen: 0, lossModel: 0, corruptBits: 0, corruptRegion: 0, corruptFix: 0, truncateMode: 0, truncateFix: 0, tcpSet: 0, tcpClear: 0, rateScope: 0 };
}

/** Byte offsets of a struct's fields, looked up once (encoders of large tables call per entry). */
function offsetsOf<F extends string>(layout: string, fields: readonly F[]): Record<F, number> {
  return Object.fromEntries(fields.map((f) => [f, pf(layout, f)])) as Record<F, number>;
}

const U64_MAX = (1n << 64n) - 1n;
/** Typed arrays store in host order and the layouts are little-endian: a view may stand in for a write only where this holds. */
export const HOST_LE = os.endianness() === 'LE';
/** Word views of the buffer the table encoders write last (they write one buffer entry by entry). */
let words: { buf: Buffer; u16: Uint16Array | undefined; u32: Uint32Array | undefined; u64: BigUint64Array | undefined } | undefined;

/** 16-, 32- and 64-bit views of `buf` (each undefined where the host or the buffer's alignment rules it out). */
function wordsOf(buf: Buffer): NonNullable<typeof words> {
  if (words?.buf !== buf) {
    const { buffer, byteOffset, length } = buf;
    words = {
      buf,
      u16: HOST_LE && byteOffset % 2 === 0 ? new Uint16Array(buffer, byteOffset, length >>> 1) : undefined,
      u32: HOST_LE && byteOffset % 4 === 0 ? new Uint32Array(buffer, byteOffset, length >>> 2) : undefined,
      u64: HOST_LE && byteOffset % 8 === 0 ? new BigUint64Array(buffer, byteOffset, length >>> 3) : undefined,
    };
  }
  return words;
}

// The encoders of large tables run mostly as cold code, 10k entries at a time: a Buffer write
// method is a call with checks per field (and for BigInts makes several BigInts per call), while
// a typed-array store is cheap even there. Where the word is unaligned or the value out of range
// (a view would wrap it), the Buffer method writes or refuses it. Callers have checked that the
// struct fits the buffer.

function writeU64(buf: Buffer, at: number, v: bigint): void {
  const w = wordsOf(buf).u64;
  if (w !== undefined && at % 8 === 0 && v >= 0n && v <= U64_MAX) w[at >>> 3] = v;
  else buf.writeBigUInt64LE(v, at);
}

function writeU32(buf: Buffer, at: number, v: number): void {
  const w = wordsOf(buf).u32;
  if (w !== undefined && (at & 3) === 0 && v >>> 0 === v) w[at >>> 2] = v;
  else buf.writeUInt32LE(v, at);
}

function writeU16(buf: Buffer, at: number, v: number): void {
  const w = wordsOf(buf).u16;
  if (w !== undefined && (at & 1) === 0 && (v & 0xffff) === v) w[at >>> 1] = v;
  else buf.writeUInt16LE(v, at);
}

let emulAt: Record<(typeof EMUL_U64)[number][1] | (typeof EMUL_U8)[number][1] | 'truncate_len', number> | undefined;

/** Writes struct policy_emul into `buf` at `at` (the bytes there must be zero). */
function writePolicyEmul(buf: Buffer, at: number, e: PolicyEmul): void {
  const o = (emulAt ??= offsetsOf('policy_emul', [...EMUL_U64.map(([, f]) => f), ...EMUL_U8.map(([, f]) => f), 'truncate_len'] as const));
  // Field by field, not by a loop over names, and a call only for a non-zero field (most rules
  // have no emulation): encoders of 10k rules run mostly as cold code.
  if (e.seed !== 0n) writeU64(buf, at + o.seed, e.seed);
  if (e.lossP !== 0n) writeU64(buf, at + o.loss_p, e.lossP);
  if (e.lossCorr !== 0n) writeU64(buf, at + o.loss_corr, e.lossCorr);
  if (e.lossBad !== 0n) writeU64(buf, at + o.loss_bad, e.lossBad);
  if (e.lossGood !== 0n) writeU64(buf, at + o.loss_good, e.lossGood);
  if (e.corruptP !== 0n) writeU64(buf, at + o.corrupt_p, e.corruptP);
  if (e.rateBps !== 0n) writeU64(buf, at + o.rate_bps, e.rateBps);
  if (e.rateCap !== 0n) writeU64(buf, at + o.rate_cap, e.rateCap);
  if (e.rateFullNs !== 0n) writeU64(buf, at + o.rate_full_ns, e.rateFullNs);
  writeU16(buf, at + o.truncate_len, e.truncateLen);
  buf[at + o.loss_model] = e.lossModel;
  buf[at + o.corrupt_bits] = e.corruptBits;
  buf[at + o.corrupt_region] = e.corruptRegion;
  buf[at + o.corrupt_fix] = e.corruptFix;
  buf[at + o.truncate_mode] = e.truncateMode;
  buf[at + o.truncate_fix] = e.truncateFix;
  buf[at + o.tcp_set] = e.tcpSet;
  buf[at + o.tcp_clear] = e.tcpClear;
  buf[at + o.rate_scope] = e.rateScope;
}

export function encodePolicyEmul(e: PolicyEmul): Buffer {
  const buf = Buffer.alloc(LAYOUTS.policy_emul!.size);
  writePolicyEmul(buf, 0, e);
  return buf;
}

export function decodePolicyEmul(buf: Buffer): PolicyEmul {
  const L = 'policy_emul';
  checkSize(L, buf, 0, LAYOUTS.policy_emul!.size);
  const e = emptyPolicyEmul();
  for (const [k, f] of EMUL_U64) e[k] = buf.readBigUInt64LE(pf(L, f));
  e.truncateLen = buf.readUInt16LE(pf(L, 'truncate_len'));
  for (const [k, f] of EMUL_U8) e[k] = buf[pf(L, f)]!;
  return e;
}

/** struct policy_act_state (map policy_act_states, keyed by a policy_trigger_key). */
export interface PolicyActState {
  prng: bigint;
  credit: bigint;
  lastNs: bigint;
  lossLast: number;
  geBad: number;
}

export function decodePolicyActState(buf: Buffer): PolicyActState {
  const L = 'policy_act_state';
  checkSize(L, buf, 0, LAYOUTS.policy_act_state!.size);
  return {
    prng: buf.readBigUInt64LE(pf(L, 'prng')),
    credit: buf.readBigUInt64LE(pf(L, 'credit')),
    lastNs: buf.readBigUInt64LE(pf(L, 'last_ns')),
    lossLast: buf[pf(L, 'loss_last')]!,
    geBad: buf[pf(L, 'ge_bad')]!,
  };
}

export interface PolicyRuleValue {
  id: number;
  actionMask: number;
  ifindex: number;
  verdict: number;
  tcpFlagsMask: number;
  tcpFlagsValue: number;
  metric: number;
  op: number;
  scope: number;
  threshold: bigint;
  bucketNs: bigint;
  forNs: bigint;
  cooldownNs: bigint;
  blockTtlNs: bigint;
  /** Emulation actions (bpf/actions.h); absent: all zero. */
  emul?: PolicyEmul;
  /** Delay-class actions: the delay line's class, 0 none (absent: 0). */
  delayClass?: number;
}

const RULE_FIELDS = ['id', 'action_mask', 'ifindex', 'verdict', 'tcp_flags_mask', 'tcp_flags_value', 'metric', 'op', 'scope', 'delay_class', 'threshold', 'bucket_ns', 'for_ns', 'cooldown_ns', 'block_ttl_ns', 'emul'] as const;
let ruleAt: Record<(typeof RULE_FIELDS)[number], number> | undefined;

/** Writes struct policy_rule into `buf` at `at` (the bytes there must be zero: padding is not written). */
export function writePolicyRule(buf: Buffer, at: number, r: PolicyRuleValue): void {
  const o = (ruleAt ??= offsetsOf('policy_rule', RULE_FIELDS));
  checkSize('policy_rule', buf, at, LAYOUTS.policy_rule!.size);
  writeU32(buf, at + o.id, r.id);
  writeU32(buf, at + o.action_mask, r.actionMask);
  writeU32(buf, at + o.ifindex, r.ifindex);
  buf[at + o.verdict] = r.verdict;
  buf[at + o.tcp_flags_mask] = r.tcpFlagsMask;
  buf[at + o.tcp_flags_value] = r.tcpFlagsValue;
  buf[at + o.metric] = r.metric;
  buf[at + o.op] = r.op;
  buf[at + o.scope] = r.scope;
  buf[at + o.delay_class] = r.delayClass ?? 0;
  // The bytes are zero already: rules without a trigger or ban leave these 0.
  if (r.threshold !== 0n) writeU64(buf, at + o.threshold, r.threshold);
  if (r.bucketNs !== 0n) writeU64(buf, at + o.bucket_ns, r.bucketNs);
  if (r.forNs !== 0n) writeU64(buf, at + o.for_ns, r.forNs);
  if (r.cooldownNs !== 0n) writeU64(buf, at + o.cooldown_ns, r.cooldownNs);
  if (r.blockTtlNs !== 0n) writeU64(buf, at + o.block_ttl_ns, r.blockTtlNs);
  if (r.emul) writePolicyEmul(buf, at + o.emul, r.emul);
}

export function encodePolicyRule(r: PolicyRuleValue): Buffer {
  const buf = Buffer.alloc(LAYOUTS.policy_rule!.size);
  writePolicyRule(buf, 0, r);
  return buf;
}

export function decodePolicyRule(buf: Buffer): PolicyRuleValue {
  const L = 'policy_rule';
  checkSize(L, buf, 0, LAYOUTS.policy_rule!.size);
  return {
    id: buf.readUInt32LE(pf(L, 'id')),
    actionMask: buf.readUInt32LE(pf(L, 'action_mask')),
    ifindex: buf.readUInt32LE(pf(L, 'ifindex')),
    verdict: buf[pf(L, 'verdict')]!,
    tcpFlagsMask: buf[pf(L, 'tcp_flags_mask')]!,
    tcpFlagsValue: buf[pf(L, 'tcp_flags_value')]!,
    metric: buf[pf(L, 'metric')]!,
    op: buf[pf(L, 'op')]!,
    scope: buf[pf(L, 'scope')]!,
    delayClass: buf[pf(L, 'delay_class')]!,
    threshold: buf.readBigUInt64LE(pf(L, 'threshold')),
    bucketNs: buf.readBigUInt64LE(pf(L, 'bucket_ns')),
    forNs: buf.readBigUInt64LE(pf(L, 'for_ns')),
    cooldownNs: buf.readBigUInt64LE(pf(L, 'cooldown_ns')),
    blockTtlNs: buf.readBigUInt64LE(pf(L, 'block_ttl_ns')),
    emul: decodePolicyEmul(buf.subarray(pf(L, 'emul'), pf(L, 'emul') + LAYOUTS.policy_emul!.size)),
  };
}

export interface PolicyTriggerKey {
  id: number;
  scope: number;
  family: number;
  addrA: Buffer;
  addrB: Buffer;
}

export function decodePolicyTriggerKey(buf: Buffer): PolicyTriggerKey {
  const L = 'policy_trigger_key';
  checkSize(L, buf, 0, LAYOUTS.policy_trigger_key!.size);
  const a = pf(L, 'addr_a');
  const b = pf(L, 'addr_b');
  return {
    id: buf.readUInt32LE(pf(L, 'id')),
    scope: buf[pf(L, 'scope')]!,
    family: buf[pf(L, 'family')]!,
    addrA: Buffer.from(buf.subarray(a, a + 16)),
    addrB: Buffer.from(buf.subarray(b, b + 16)),
  };
}

export interface PolicyTriggerState {
  bucketBase: bigint;
  firedUntil: bigint;
  cooldownUntil: bigint;
  counts: bigint[];
}

export function decodePolicyTrigger(buf: Buffer): PolicyTriggerState {
  const L = 'policy_trigger';
  checkSize(L, buf, 0, LAYOUTS.policy_trigger!.size);
  return {
    bucketBase: buf.readBigUInt64LE(pf(L, 'bucket_base')),
    firedUntil: buf.readBigUInt64LE(pf(L, 'fired_until')),
    cooldownUntil: buf.readBigUInt64LE(pf(L, 'cooldown_until')),
    counts: u64s(buf, pf(L, 'counts'), POLICY.windowBuckets),
  };
}

export interface PolicyCountersValue {
  matched: bigint;
  applied: bigint;
  fired: bigint;
  blocks: bigint;
}

export function encodePolicyCounters(c: PolicyCountersValue): Buffer {
  const L = 'policy_counters';
  const buf = Buffer.alloc(LAYOUTS.policy_counters!.size);
  buf.writeBigUInt64LE(c.matched, pf(L, 'matched'));
  buf.writeBigUInt64LE(c.applied, pf(L, 'applied'));
  buf.writeBigUInt64LE(c.fired, pf(L, 'fired'));
  buf.writeBigUInt64LE(c.blocks, pf(L, 'blocks'));
  return buf;
}

/** policy_counters as lookupPerCpu returns it (one Buffer per CPU), summed; also one plain value. */
export function sumPolicyCountersPerCpu(values: readonly Buffer[]): PolicyCountersValue {
  const L = 'policy_counters';
  const total: PolicyCountersValue = { matched: 0n, applied: 0n, fired: 0n, blocks: 0n };
  for (const buf of values) {
    checkSize(L, buf, 0, LAYOUTS.policy_counters!.size);
    total.matched += buf.readBigUInt64LE(pf(L, 'matched'));
    total.applied += buf.readBigUInt64LE(pf(L, 'applied'));
    total.fired += buf.readBigUInt64LE(pf(L, 'fired'));
    total.blocks += buf.readBigUInt64LE(pf(L, 'blocks'));
  }
  return total;
}

export function encodePolicyBlockKey(family: number, addr: Uint8Array): Buffer {
  const buf = Buffer.alloc(LAYOUTS.policy_block_key!.size);
  buf[pf('policy_block_key', 'family')] = family;
  buf.set(addr.subarray(0, 16), pf('policy_block_key', 'addr'));
  return buf;
}

export function decodePolicyBlockKey(buf: Buffer): { family: number; addr: Buffer } {
  checkSize('policy_block_key', buf, 0, LAYOUTS.policy_block_key!.size);
  const a = pf('policy_block_key', 'addr');
  return { family: buf[pf('policy_block_key', 'family')]!, addr: Buffer.from(buf.subarray(a, a + 16)) };
}

export interface PolicyStatsValue {
  blocklistDrops: bigint;
  eventsLost: bigint;
  triggerFull: bigint;
  actStateFull: bigint;
}

export function sumPolicyStatsPerCpu(values: readonly Buffer[]): PolicyStatsValue {
  const L = 'policy_stats';
  const total: PolicyStatsValue = { blocklistDrops: 0n, eventsLost: 0n, triggerFull: 0n, actStateFull: 0n };
  for (const buf of values) {
    checkSize(L, buf, 0, LAYOUTS.policy_stats!.size);
    total.blocklistDrops += buf.readBigUInt64LE(pf(L, 'blocklist_drops'));
    total.eventsLost += buf.readBigUInt64LE(pf(L, 'events_lost'));
    total.triggerFull += buf.readBigUInt64LE(pf(L, 'trigger_full'));
    total.actStateFull += buf.readBigUInt64LE(pf(L, 'act_state_full'));
  }
  return total;
}

// ---- delay-class actions (owned by src/agent/; bae.h delay section) ----

/** Maps of the delay-class actions (bpf/policy.h). */
export const DELAY_MAPS = { xsks: 'bae_xsks', stats: 'policy_delay_stats' } as const;

/** XSKMAP slots per port (bae.h POLICY_DELAY_CLASSES); class 0 is "no delay". */
export const POLICY_DELAY_CLASSES = ENUMS.policy_delay_bounds.POLICY_DELAY_CLASSES;

export interface PolicyDelayStats {
  redirected: bigint;
  noSocket: bigint;
}

export function sumPolicyDelayStatsPerCpu(values: readonly Buffer[]): PolicyDelayStats {
  const L = 'policy_delay_stats';
  const total: PolicyDelayStats = { redirected: 0n, noSocket: 0n };
  for (const buf of values) {
    checkSize(L, buf, 0, LAYOUTS.policy_delay_stats!.size);
    total.redirected += buf.readBigUInt64LE(pf(L, 'redirected'));
    total.noSocket += buf.readBigUInt64LE(pf(L, 'no_socket'));
  }
  return total;
}

export interface PolicyEventRecord {
  timeNs: bigint;
  value: bigint;
  policyId: number;
  kind: number;
  scope: number;
  family: number;
  addrA: Buffer;
  addrB: Buffer;
}

export function decodePolicyEvent(buf: Buffer): PolicyEventRecord {
  const L = 'policy_event';
  checkSize(L, buf, 0, LAYOUTS.policy_event!.size);
  const a = pf(L, 'addr_a');
  const b = pf(L, 'addr_b');
  return {
    timeNs: buf.readBigUInt64LE(pf(L, 'time_ns')),
    value: buf.readBigUInt64LE(pf(L, 'value')),
    policyId: buf.readUInt32LE(pf(L, 'policy_id')),
    kind: buf[pf(L, 'kind')]!,
    scope: buf[pf(L, 'scope')]!,
    family: buf[pf(L, 'family')]!,
    addrA: Buffer.from(buf.subarray(a, a + 16)),
    addrB: Buffer.from(buf.subarray(b, b + 16)),
  };
}
// ==== end of the policy engine section ==========================================================
