// IPv4 prefix classes as direct tables (bpf/bae.h policy_v4): the program reads at most three
// array entries per address instead of a hash lookup per prefix length or an LPM trie walk.
//
// A region of POLICY.v4Region chunks of 256 entries per (generation, dimension). Chunks 0..255
// together are the /16 level (chunk = first byte, entry = second byte); a /16 that holds longer
// prefixes points to a chunk of its 256 /24s, and a /24 that holds prefixes longer than /24 to a
// chunk of its 256 addresses. An entry is the class of the longest prefix that holds all of its
// addresses, or POLICY.v4Chunk | chunk. Prefixes are painted shortest first, so a longer prefix
// overwrites the shorter ones it nests in, and a new chunk starts as a copy of its parent entry.
import { POLICY } from '../datapath';
import type { CompiledPrefix } from './compiled-set';

const LEVEL0_CHUNKS = 256;

export interface V4Table {
  /** Chunks in region order: 0..255 (the /16 level), then the deeper chunks in use. */
  chunks: Uint32Array[];
}

/**
 * The table of the IPv4 prefixes in `prefixes` (others are ignored), or undefined when it needs
 * more than POLICY.v4Region chunks (the caller then uses hash or trie lookups).
 */
export function buildV4Table(prefixes: readonly CompiledPrefix[]): V4Table | undefined {
  // Shortest first (the order among equal lengths does not matter: they are disjoint), by
  // counting rather than a comparison sort: a 10k-prefix set is sorted on every apply, cold.
  const starts = new Int32Array(34);
  for (let i = 0; i < prefixes.length; i++) {
    const { family, len } = prefixes[i]!.prefix;
    if (family !== 4) continue;
    if (!(len >= 0 && len <= 32 && Number.isInteger(len))) throw new RangeError(`IPv4 prefix length ${len} is not 0..32`);
    starts[len + 1]!++;
  }
  for (let len = 0; len <= 32; len++) starts[len + 1]! += starts[len]!;
  const v4 = new Array<CompiledPrefix>(starts[33]!);
  for (let i = 0; i < prefixes.length; i++) {
    const e = prefixes[i]!;
    if (e.prefix.family === 4) v4[starts[e.prefix.len]!++] = e;
  }
  const level0 = new Uint32Array(65536);
  const chunks: Uint32Array[] = [];
  const region = POLICY.v4Region;
  const chunkOf = (entry: number) => chunks[(entry & ~POLICY.v4Chunk) - LEVEL0_CHUNKS]!;
  // The chunk below an entry, made from the entry's class when there is none yet.
  const descend = (table: Uint32Array, at: number): Uint32Array | undefined => {
    const entry = table[at]!;
    if (entry & POLICY.v4Chunk) return chunkOf(entry);
    if (LEVEL0_CHUNKS + chunks.length >= region) return undefined;
    const chunk = new Uint32Array(256).fill(entry);
    table[at] = (POLICY.v4Chunk | (LEVEL0_CHUNKS + chunks.length)) >>> 0;
    chunks.push(chunk);
    return chunk;
  };
  for (let i = 0; i < v4.length; i++) {
    const { prefix, cls } = v4[i]!;
    const a = prefix.addr;
    const len = prefix.len;
    if (len <= 16) {
      const start = (a[0]! << 8) | a[1]!;
      const span = 1 << (16 - len);
      level0.fill(cls, start & ~(span - 1), (start & ~(span - 1)) + span);
      continue;
    }
    const l2 = descend(level0, (a[0]! << 8) | a[1]!);
    if (!l2) return undefined;
    if (len <= 24) {
      const span = 1 << (24 - len);
      const start = a[2]! & ~(span - 1);
      l2.fill(cls, start, start + span);
      continue;
    }
    const l3 = descend(l2, a[2]!);
    if (!l3) return undefined;
    const span = 1 << (32 - len);
    const start = a[3]! & ~(span - 1);
    l3.fill(cls, start, start + span);
  }
  const out: Uint32Array[] = [];
  for (let t = 0; t < LEVEL0_CHUNKS; t++) out.push(level0.subarray(t * 256, (t + 1) * 256));
  return { chunks: out.concat(chunks) };
}

/** The class the program finds for an IPv4 address (the kernel's policy_v4_class, for tests). */
export function v4Lookup(table: V4Table, addr: Uint8Array): number {
  let entry = table.chunks[addr[0]!]![addr[1]!]!;
  for (let i = 2; i < 4; i++) {
    if (!(entry & POLICY.v4Chunk)) return entry;
    entry = table.chunks[entry & (POLICY.v4Region - 1)]![addr[i]!]!;
  }
  return entry & POLICY.v4Chunk ? 0 : entry;
}
