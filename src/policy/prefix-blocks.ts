// The kernel's prefix tables of the blocklist stage: blocked prefixes (policy_block_prefixes,
// each with its own expiry, for `bae block ADDR/LEN`) and protected prefixes (policy_protected:
// no policy may block an address in them; the refusal is an event). Slot 1 of policy_block_used
// tells the program which of the two tables hold entries, so that a bae without them pays no
// trie lookup. Writers hold the apply lock (withApplyLock): two of them never interleave the
// read-modify-write of that slot.
import { AF_INET, AF_INET6, decodePolicyBlockLpmKey, encodePolicyBlockLpmKey, formatAddress, POLICY_BLOCK_FLAGS, type BpfMap } from '../datapath';
import type { PolicyMaps } from './maps';
import { formatPrefix, type Prefix } from './net';

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

function keyOf(p: Prefix): Buffer {
  return encodePolicyBlockLpmKey(p.family === 4 ? AF_INET : AF_INET6, p.addr, p.len);
}

function prefixOf(key: Buffer): Prefix {
  const k = decodePolicyBlockLpmKey(key);
  return { family: k.family === AF_INET ? 4 : 6, addr: new Uint8Array(k.addr), len: k.len };
}

function entries(map: BpfMap): Buffer[] {
  return map.lookupBatch().keys.map((k) => Buffer.from(k));
}

/** Sets or clears `flag` in slot 1 of policy_block_used (`used`) from whether `map` holds entries. */
function syncFlag(used: BpfMap, map: BpfMap, flag: number): void {
  const raw = used.lookup(u32(1));
  const flags = raw ? raw.readUInt32LE(0) : 0;
  const want = entries(map).length > 0 ? flags | flag : flags & ~flag;
  if (want !== flags) used.update(u32(1), u32(want));
}

export interface BlockedPrefix {
  prefix: string;
  version: 4 | 6;
  /** Clock ns (CLOCK_MONOTONIC) when the block ends. */
  expiryNs: bigint;
}

// Map-level operations (the Blocklist of blocks.ts holds single maps), then PolicyMaps wrappers.

/** Blocks every address in `p` until `expiryNs` (CLOCK_MONOTONIC ns); replaces an earlier block of it. */
export function blockPrefixIn(prefixes: BpfMap, used: BpfMap, p: Prefix, expiryNs: bigint): void {
  const v = Buffer.alloc(8);
  v.writeBigUInt64LE(expiryNs);
  // Slot 0 first: the kernel skips the whole policy stage while it is 0 and no rule is live
  // (policy_idle in bpf/policy.h reads no flags). It stays set, like after an address block.
  const listed = used.lookup(u32(0));
  if (!listed || listed.readUInt32LE(0) === 0) used.update(u32(0), u32(1));
  // The entry before the flag: a packet that sees the flag finds the entry.
  prefixes.update(keyOf(p), v);
  syncFlag(used, prefixes, POLICY_BLOCK_FLAGS.prefixes);
}

/** Removes the block of exactly `p`; false when there was none. */
export function unblockPrefixIn(prefixes: BpfMap, used: BpfMap, p: Prefix): boolean {
  const gone = prefixes.delete(keyOf(p));
  syncFlag(used, prefixes, POLICY_BLOCK_FLAGS.prefixes);
  return gone;
}

export function listBlockedPrefixesIn(prefixes: BpfMap): BlockedPrefix[] {
  const { keys, values } = prefixes.lookupBatch();
  return keys.map((k, i) => {
    const p = prefixOf(k);
    return { prefix: formatPrefix(p), version: p.family, expiryNs: values[i]!.readBigUInt64LE(0) };
  });
}

export function listProtectedIn(prot: BpfMap): Prefix[] {
  return entries(prot).map(prefixOf);
}

export const blockPrefix = (maps: PolicyMaps, p: Prefix, expiryNs: bigint): void => blockPrefixIn(maps.blockPrefixes, maps.blockUsed, p, expiryNs);
export const unblockPrefix = (maps: PolicyMaps, p: Prefix): boolean => unblockPrefixIn(maps.blockPrefixes, maps.blockUsed, p);
export const listBlockedPrefixes = (maps: PolicyMaps): BlockedPrefix[] => listBlockedPrefixesIn(maps.blockPrefixes);

/** Protects every address in `p` from blocks by policies (and by `bae block`, which checks it). */
export function protectPrefix(maps: PolicyMaps, p: Prefix): void {
  maps.protected.update(keyOf(p), u32(1));
  syncFlag(maps.blockUsed, maps.protected, POLICY_BLOCK_FLAGS.protected);
}

/** Removes the protection of exactly `p`; false when there was none. */
export function unprotectPrefix(maps: PolicyMaps, p: Prefix): boolean {
  const gone = maps.protected.delete(keyOf(p));
  syncFlag(maps.blockUsed, maps.protected, POLICY_BLOCK_FLAGS.protected);
  return gone;
}

/** Replaces the protected prefixes with `prefixes` (tests, and a node's configured list). */
export function setProtectedPrefixes(maps: PolicyMaps, prefixes: readonly Prefix[]): void {
  for (const k of entries(maps.protected)) maps.protected.delete(k);
  for (const p of prefixes) maps.protected.update(keyOf(p), u32(1));
  syncFlag(maps.blockUsed, maps.protected, POLICY_BLOCK_FLAGS.protected);
}

export function listProtectedPrefixes(maps: PolicyMaps): string[] {
  return listProtectedIn(maps.protected).map(formatPrefix);
}

/** The protected prefix that holds `addr` (4 or 6, 16 bytes), or undefined. */
export function protectedPrefixOf(maps: PolicyMaps, family: 4 | 6, addr: Uint8Array): string | undefined {
  const max = family === 4 ? 32 : 128;
  const hit = maps.protected.lookup(keyOf({ family, addr, len: max }));
  if (!hit) return undefined;
  // The trie answers with the value only: find the longest listed prefix that holds addr.
  const all = entries(maps.protected).map(prefixOf).filter((p) => p.family === family);
  const holds = (p: Prefix) => {
    for (let bit = 0; bit < p.len; bit++) {
      const m = 0x80 >> (bit & 7);
      if ((p.addr[bit >> 3]! & m) !== (addr[bit >> 3]! & m)) return false;
    }
    return true;
  };
  const best = all.filter(holds).sort((a, b) => b.len - a.len)[0];
  return best ? formatPrefix(best) : `${formatAddress(family, addr)}/${max}`;
}
