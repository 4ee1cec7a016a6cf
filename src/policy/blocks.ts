// The kernel blocklist by hand: `bae block`/`bae unblock`/`bae blocks` and block commands from the
// bus. An address is an entry of the map policy_blocklist (bpf/policy_maps.h): key {family, addr},
// value the expiry in CLOCK_MONOTONIC ns, which the XDP program checks per packet, so that a block
// lasts its TTL whether or not any bae process runs, and ends on its own. policy_block_used turns
// 1 first, so that the program does the lookup (it skips it while nothing was ever blocked). A
// prefix is an entry of the trie policy_block_prefixes, with its own expiry (prefix-blocks.ts).
// Nothing inside a protected prefix (policy_protected, `bae protect`) is blocked: the refusal
// names the protected prefix.
import {
  AF_INET,
  AF_INET6,
  POLICY_MAPS,
  addressFamilyOf,
  decodePolicyBlockKey,
  decodePolicyOffence,
  encodePolicyBlockKey,
  encodePolicyBlockLpmKey,
  encodePolicyOffence,
  formatAddress,
  openLoadedMap,
  parseAddress,
  type BpfMap,
  type IpVersion,
} from '../datapath';
import { UsageError } from '../errors';
import { escalatedTtl, recordOffence, type Escalation } from './escalate';
import { formatPrefix, parsePrefix, prefixContains, type Prefix } from './net';
import { blockPrefixIn, listBlockedPrefixesIn, listProtectedIn, unblockPrefixIn } from './prefix-blocks';

/** What to block: a single IPv4 or IPv6 address, or a prefix. */
export interface BlockTarget {
  /** Canonical text: formatAddress for an address, ADDR/LEN for a prefix. */
  address: string;
  version: IpVersion;
  addr: Uint8Array;
  /** Prefix length; 32 or 128 (the full length) for a single address. */
  len: number;
}

/** Longest block bae accepts: 10 years (a bound; a block "forever" is a policy without `for`). */
export const MAX_BLOCK_TTL_NS = 10n * 365n * 24n * 3600n * 1_000_000_000n;

/**
 * A single IPv4 or IPv6 address (a /32 or /128 suffix is the same address) or a prefix ADDR/LEN
 * without host bits; a reason (string) when it is neither.
 */
export function parseBlockTarget(text: string): BlockTarget | string {
  const t = String(text).trim();
  const slash = t.indexOf('/');
  const bare = slash >= 0 ? t.slice(0, slash) : t;
  const parsed = parseAddress(bare);
  if (!parsed) return `'${t}' is not an IPv4 or IPv6 address or prefix`;
  const full = parsed.family === 4 ? 32 : 128;
  if (slash >= 0 && t.slice(slash + 1) !== String(full)) {
    const p = parsePrefix(t);
    if (typeof p === 'string') return p;
    return { address: formatPrefix(p), version: p.family, addr: p.addr, len: p.len };
  }
  return { address: formatAddress(parsed.family, parsed.addr), version: parsed.family, addr: parsed.addr, len: full };
}

const isPrefix = (t: BlockTarget): boolean => t.len < (t.version === 4 ? 32 : 128);

/** Refused because the target lies in (or holds) a protected prefix (`bae protect`). */
export class ProtectedError extends UsageError {}

export interface BlockEntry {
  address: string;
  version: IpVersion;
  /** CLOCK_MONOTONIC ns at which the kernel stops dropping (the entry's value). */
  expiryNs: bigint;
  /** Time left at the moment of reading (0 when past). */
  remainingNs: bigint;
  /** Escalating blocks of the address in its history (policy_offences), this one included; 0 for
   * an address without one, and for prefixes (they do not escalate). */
  offences: number;
}

/** CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns (process.hrtime uses it on Linux). */
export const monotonicNs = (): bigint => process.hrtime.bigint();

const ZERO_KEY = Buffer.alloc(4);

export class Blocklist {
  readonly #entries: BpfMap;
  readonly #used: BpfMap;
  readonly #prefixes: BpfMap | undefined;
  readonly #protected: BpfMap | undefined;
  readonly #offences: BpfMap | undefined;
  readonly #own: boolean;
  readonly #clock: () => bigint;

  /** Over maps the caller owns (the agent's); `clock` is injectable for tests. Without the
   * prefix tables, prefixes are refused and nothing is checked for protection. */
  constructor(entries: BpfMap, used: BpfMap, opts: { clock?: () => bigint; own?: boolean; prefixes?: BpfMap; protected?: BpfMap; offences?: BpfMap } = {}) {
    this.#entries = entries;
    this.#used = used;
    this.#prefixes = opts.prefixes;
    this.#protected = opts.protected;
    this.#offences = opts.offences;
    this.#own = opts.own ?? false;
    this.#clock = opts.clock ?? monotonicNs;
  }

  /** The blocklist of the bae loaded at `pinDir` (BAE_NOT_LOADED when none is). */
  static open(pinDir: string, command = 'bae block'): Blocklist {
    const opened: BpfMap[] = [];
    const open = (name: string) => {
      const m = openLoadedMap(name, pinDir, command);
      opened.push(m);
      return m;
    };
    try {
      return new Blocklist(open(POLICY_MAPS.blocklist), open(POLICY_MAPS.blockUsed), {
        own: true,
        prefixes: open(POLICY_MAPS.blockPrefixes),
        protected: open(POLICY_MAPS.protected),
        offences: open(POLICY_MAPS.offences),
      });
    } catch (err) {
      opened.forEach((m) => m.close());
      throw err;
    }
  }

  /** The protected prefix that holds the target or lies inside it, if any. */
  protectedBy(target: BlockTarget): string | undefined {
    if (!this.#protected) return undefined;
    // A single address: one longest-prefix lookup in the trie says whether any protected prefix
    // holds it (a block command's path; the listing below reads the whole table), and the
    // listing names that prefix only when one does.
    if (!isPrefix(target) && !this.#protected.lookup(encodePolicyBlockLpmKey(addressFamilyOf(target.version), target.addr, target.len))) return undefined;
    const t: Prefix = { family: target.version, addr: target.addr, len: target.len };
    const hit = listProtectedIn(this.#protected).find((p) => p.family === t.family && (prefixContains(p, t) || prefixContains(t, p)));
    return hit ? formatPrefix(hit) : undefined;
  }

  /** Blocks `target` for `ttlNs` from now (replacing an earlier expiry: the last word counts);
   * ProtectedError, and nothing changed, when a protected prefix covers any of it. With
   * `escalate`, an address's block lasts ttlNs x factor^n (escalate.ts) and counts in its history,
   * the same one the program's escalating block actions keep; a prefix does not escalate. */
  block(target: BlockTarget, ttlNs: bigint, escalate?: Escalation): BlockEntry {
    if (ttlNs <= 0n || ttlNs > MAX_BLOCK_TTL_NS) throw new RangeError(`block TTL ${ttlNs} ns is outside 1 ns..10 years`);
    const guard = this.protectedBy(target);
    if (guard) throw new ProtectedError(`${target.address} is protected (${guard}, see \`bae protect list\`): not blocked`);
    if (isPrefix(target)) {
      if (!this.#prefixes) throw new UsageError(`${target.address} is a prefix: this blocklist has no prefix table`);
      const expiryNs = this.#clock() + ttlNs;
      blockPrefixIn(this.#prefixes, this.#used, { family: target.version, addr: target.addr, len: target.len }, expiryNs);
      return { address: target.address, version: target.version, expiryNs, remainingNs: ttlNs, offences: 0 };
    }
    // Before the entry, so that no packet skips the lookup once the entry exists.
    const used = this.#used.lookup(ZERO_KEY);
    if (!used || used.readUInt32LE(0) === 0) {
      const one = Buffer.alloc(4);
      one.writeUInt32LE(1);
      this.#used.update(ZERO_KEY, one);
    }
    const now = this.#clock();
    const key = this.#key(target);
    let offences: number | undefined;
    if (escalate) {
      if (!this.#offences) throw new UsageError(`${target.address}: this blocklist has no offence history to escalate with`);
      const raw = this.#offences.lookup(key);
      const e = escalatedTtl(ttlNs, escalate, raw ? decodePolicyOffence(raw) : undefined, now);
      ttlNs = e.ttlNs;
      offences = e.n + 1;
      this.#offences.update(key, encodePolicyOffence(recordOffence(e.n, now, ttlNs)));
    }
    const expiryNs = now + ttlNs;
    const value = Buffer.alloc(8);
    value.writeBigUInt64LE(expiryNs);
    this.#entries.update(key, value);
    // Without escalation the history is only reported: read after the update, off the path to it.
    offences ??= this.#offencesOf(key);
    return { address: target.address, version: target.version, expiryNs, remainingNs: ttlNs, offences };
  }

  /** The count of the address's history (0: none). */
  #offencesOf(key: Buffer): number {
    const raw = this.#offences?.lookup(key);
    return raw ? decodePolicyOffence(raw).count : 0;
  }

  /** Lifts the block of `target` (exactly that address or prefix); whether there was an entry (expired or not). */
  unblock(target: BlockTarget): boolean {
    if (isPrefix(target)) {
      return this.#prefixes ? unblockPrefixIn(this.#prefixes, this.#used, { family: target.version, addr: target.addr, len: target.len }) : false;
    }
    return this.#entries.delete(this.#key(target));
  }

  /** Entries still in force (expiry ahead), soonest expiry first. */
  list(): BlockEntry[] {
    const now = this.#clock();
    const { keys, values } = this.#entries.lookupBatch();
    const history = this.#offenceCounts();
    const out: BlockEntry[] = [];
    keys.forEach((k, i) => {
      const { family, addr } = decodePolicyBlockKey(k);
      if (family !== AF_INET && family !== AF_INET6) return;
      const expiryNs = values[i]!.readBigUInt64LE(0);
      if (expiryNs <= now) return;
      const version: IpVersion = family === AF_INET ? 4 : 6;
      out.push({ address: formatAddress(version, addr), version, expiryNs, remainingNs: expiryNs - now, offences: history.get(k.toString('hex')) ?? 0 });
    });
    if (this.#prefixes) {
      for (const b of listBlockedPrefixesIn(this.#prefixes)) {
        if (b.expiryNs <= now) continue;
        out.push({ address: b.prefix, version: b.version, expiryNs: b.expiryNs, remainingNs: b.expiryNs - now, offences: 0 });
      }
    }
    return out.sort((a, b) => (a.expiryNs < b.expiryNs ? -1 : a.expiryNs > b.expiryNs ? 1 : 0));
  }

  /** How many entries list() would give (addresses and prefixes in force), without decoding them: one batch read per map. */
  count(): number {
    const now = this.#clock();
    const inForce = (values: Buffer[]) => values.reduce((n, v) => n + (v.readBigUInt64LE(0) > now ? 1 : 0), 0);
    return inForce(this.#entries.lookupBatch().values) + (this.#prefixes ? inForce(this.#prefixes.lookupBatch().values) : 0);
  }

  /** Every address's count of escalating blocks, by its key in hex: one batch read, not one lookup an entry. */
  #offenceCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    if (!this.#offences) return counts;
    const { keys, values } = this.#offences.lookupBatch();
    keys.forEach((k, i) => counts.set(k.toString('hex'), decodePolicyOffence(values[i]!).count));
    return counts;
  }

  #key(t: BlockTarget): Buffer {
    const addr = new Uint8Array(16);
    addr.set(t.addr);
    return encodePolicyBlockKey(addressFamilyOf(t.version), addr);
  }

  close(): void {
    if (!this.#own) return;
    this.#entries.close();
    this.#used.close();
    this.#prefixes?.close();
    this.#protected?.close();
    this.#offences?.close();
  }
}
