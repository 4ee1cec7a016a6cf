// Codecs of every value the XDP program shares with user space, built on the kernel ABI that
// scripts/gen-abi.mjs generates from the BTF of build/bpf/bae.o (src/datapath/abi.gen.ts):
// struct layouts and enum values are never written here by hand, so a field added to
// bpf/bae.h needs an edit here only where a codec reads or writes it.
//
// u64 fields decode as bigint (exact), narrower ones as number. Per-CPU maps (bae_stats,
// bae_convs) hand out one value per possible CPU; the merge functions fold them into one.
import { ENUMS, STRUCTS } from './abi.gen';
import type { AbiStruct } from './abi-types';
import { formatAddress, parseAddress, type IpVersion } from './address';

// ---- bounds and knobs --------------------------------------------------------------------

export const VLAN_MAX = ENUMS.bae_bounds.BAE_VLAN_MAX;
export const IPV6_EXT_MAX = ENUMS.bae_bounds.BAE_IPV6_EXT_MAX;
export const SIZE_BUCKETS = ENUMS.bae_bounds.BAE_SIZE_BUCKETS;
export const IAT_BUCKETS = ENUMS.bae_bounds.BAE_IAT_BUCKETS;
export const TCP_FLAGS = ENUMS.bae_bounds.BAE_TCP_FLAGS;
export const VERDICTS = ENUMS.bae_bounds.BAE_VERDICTS;

/** Map names in build/bpf/bae.o. */
export const MAPS = {
  convs: 'bae_convs',
  tcpFlows: 'bae_tcp_flows',
  stats: 'bae_stats',
  ports: 'bae_ports',
  testClock: 'bae_test_clock',
  httpPorts: 'bae_http_ports',
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

/** A field's offset in a struct of the generated ABI. */
export function off(layout: string, field: string): number {
  return LAYOUTS[layout]!.fields[field]!.offset;
}

export function checkSize(what: string, buf: Buffer, at: number, size: number): void {
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
  /**
   * Inter-arrival gaps by decade bucket (IAT_BUCKET_EDGES_NS, docs/profiles.md). The kernel
   * stores buckets 1..7; bucket 0 (< 10 us) is the rest of the copy's iatCount. Encoding writes
   * buckets 1..7 only.
   */
  iatHist: bigint[];
  /** By TCP_FLAG_NAMES. */
  tcpFlags: bigint[];
  retransmits: bigint;
  outOfOrder: bigint;
  zeroWindow: bigint;
  /** HTTP/1.x seen at the start of TCP payloads on an HTTP port (docs/profiles.md "Layer 7"). */
  httpRequests: bigint;
  httpResponses: bigint;
  /** Responses with a 4xx or 5xx status; http5xx: with a 5xx status. */
  httpErrors: bigint;
  http5xx: bigint;
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

export function u64s(buf: Buffer, at: number, n: number): bigint[] {
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
  const iatCount = packets > 0n ? packets - 1n : 0n;
  const stored = u64s(buf, at + L.fields.iat_hist!.offset, IAT_BUCKETS - 1);
  const rest = iatCount - stored.reduce((x, y) => x + y, 0n);
  return {
    packets,
    bytes: u64('bytes'),
    firstSeenNs: u64('first_seen_ns'),
    lastSeenNs: u64('last_seen_ns'),
    sizeSumSq: u64('size_sum_sq'),
    iatSumNs: u64('iat_sum_ns'),
    iatSumSq1024ns: u64('iat_sum_sq_1024ns'),
    sizeHist: u64s(buf, at + L.fields.size_hist!.offset, SIZE_BUCKETS),
    // Never below 0, even for a copy seeded by hand or raced in the shared (atomic) variant.
    iatHist: [rest > 0n ? rest : 0n, ...stored],
    tcpFlags: u64s(buf, at + L.fields.tcp_flags!.offset, TCP_FLAGS),
    retransmits: u64('retransmits'),
    outOfOrder: u64('out_of_order'),
    zeroWindow: u64('zero_window'),
    httpRequests: u64('http_requests'),
    httpResponses: u64('http_responses'),
    httpErrors: u64('http_errors'),
    http5xx: u64('http_5xx'),
    sizeMin: u32('size_min'),
    sizeMax: u32('size_max'),
    ttlMin: u8('ttl_min'),
    ttlMax: u8('ttl_max'),
    ttlLast: u8('ttl_last'),
    iatCount,
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
    out.httpRequests += p.httpRequests;
    out.httpResponses += p.httpResponses;
    out.httpErrors += p.httpErrors;
    out.http5xx += p.http5xx;
    p.sizeHist.forEach((v, i) => (out.sizeHist[i]! += v));
    p.iatHist.forEach((v, i) => (out.iatHist[i]! += v));
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
  d.iatHist.slice(1).forEach((v, i) => buf.writeBigUInt64LE(v, at + L.fields.iat_hist!.offset + 8 * i));
  u64('retransmits', d.retransmits);
  u64('out_of_order', d.outOfOrder);
  u64('zero_window', d.zeroWindow);
  u64('http_requests', d.httpRequests);
  u64('http_responses', d.httpResponses);
  u64('http_errors', d.httpErrors);
  u64('http_5xx', d.http5xx);
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

/**
 * Lower edges of the inter-arrival buckets in ns (see BAE_IAT_BUCKETS in bae.h): bucket i holds
 * gaps in [IAT_BUCKET_EDGES_NS[i], IAT_BUCKET_EDGES_NS[i + 1]); the last has no upper edge.
 */
export const IAT_BUCKET_EDGES_NS: readonly bigint[] = Array.from({ length: IAT_BUCKETS }, (_, i) => (i === 0 ? 0n : 10n ** BigInt(i + 3)));

/** The inter-arrival histogram bucket of a gap in ns. */
export function iatBucket(gapNs: bigint): number {
  let b = 0;
  while (b + 1 < IAT_BUCKETS && gapNs >= IAT_BUCKET_EDGES_NS[b + 1]!) b++;
  return b;
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

// ---- layer 7 ----------------------------------------------------------------------------------

/** TCP ports whose payload bae reads for HTTP/1.x lines when `bae load` names none (bpf/l7.h). */
export const DEFAULT_HTTP_PORTS: readonly number[] = [80, 8080];

/** The bae_http_ports bitmap of `ports`: one little-endian u64 per 64 ports, bit port & 63. */
export function encodeHttpPorts(ports: readonly number[]): Buffer[] {
  const words = ENUMS.bae_bounds.BAE_HTTP_PORT_WORDS;
  const bits = new BigUint64Array(words);
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`bad HTTP port ${p}: a whole number from 1 to 65535`);
    bits[p >> 6]! |= 1n << BigInt(p & 63);
  }
  return Array.from(bits, (w) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(w);
    return b;
  });
}

/** The ports set in a bae_http_ports map's words (index order). */
export function decodeHttpPorts(words: readonly Buffer[]): number[] {
  const out: number[] = [];
  words.forEach((w, i) => {
    const v = w.readBigUInt64LE();
    for (let b = 0; b < 64; b++) if ((v >> BigInt(b)) & 1n) out.push(i * 64 + b);
  });
  return out;
}
