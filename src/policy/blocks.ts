// The kernel blocklist by hand: `bae block`/`bae unblock`/`bae blocks` and block commands from the
// bus. An entry is the map policy_blocklist's (bpf/policy_maps.h): key {family, addr}, value the
// expiry in CLOCK_MONOTONIC ns, which the XDP program checks per packet, so that a block lasts its
// TTL whether or not any bae process runs, and ends on its own. policy_block_used turns 1 first,
// so that the program does the lookup (it skips it while nothing was ever blocked).
import {
  AF_INET,
  AF_INET6,
  POLICY_MAPS,
  addressFamilyOf,
  decodePolicyBlockKey,
  encodePolicyBlockKey,
  formatAddress,
  openLoadedMap,
  parseAddress,
  type BpfMap,
  type IpVersion,
} from '../datapath';

/** One address to block: a single IPv4 or IPv6 address. */
export interface BlockTarget {
  /** Canonical text (formatAddress). */
  address: string;
  version: IpVersion;
  addr: Uint8Array;
}

/** Longest block bae accepts: 10 years (a bound; a block "forever" is a policy without `for`). */
export const MAX_BLOCK_TTL_NS = 10n * 365n * 24n * 3600n * 1_000_000_000n;

/**
 * A single IPv4 or IPv6 address (a /32 or /128 suffix is the same address); a reason (string)
 * when it is not one. Prefixes need a kernel blocklist keyed by prefix, which bae does not have yet.
 */
export function parseBlockTarget(text: string): BlockTarget | string {
  const t = String(text).trim();
  const slash = t.indexOf('/');
  const bare = slash >= 0 ? t.slice(0, slash) : t;
  const parsed = parseAddress(bare);
  if (!parsed) return `'${t}' is not an IPv4 or IPv6 address`;
  if (slash >= 0) {
    const len = t.slice(slash + 1);
    const full = parsed.family === 4 ? '32' : '128';
    if (len !== full) {
      return `'${t}' is a prefix: this bae blocks single addresses only (${bare}/${full}); prefix blocks need the kernel's prefix blocklist, which is not there yet`;
    }
  }
  return { address: formatAddress(parsed.family, parsed.addr), version: parsed.family, addr: parsed.addr };
}

export interface BlockEntry {
  address: string;
  version: IpVersion;
  /** CLOCK_MONOTONIC ns at which the kernel stops dropping (the entry's value). */
  expiryNs: bigint;
  /** Time left at the moment of reading (0 when past). */
  remainingNs: bigint;
}

/** CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns (process.hrtime uses it on Linux). */
export const monotonicNs = (): bigint => process.hrtime.bigint();

const ZERO_KEY = Buffer.alloc(4);

export class Blocklist {
  readonly #entries: BpfMap;
  readonly #used: BpfMap;
  readonly #own: boolean;
  readonly #clock: () => bigint;

  /** Over maps the caller owns (the agent's); `clock` is injectable for tests. */
  constructor(entries: BpfMap, used: BpfMap, opts: { clock?: () => bigint; own?: boolean } = {}) {
    this.#entries = entries;
    this.#used = used;
    this.#own = opts.own ?? false;
    this.#clock = opts.clock ?? monotonicNs;
  }

  /** The blocklist of the bae loaded at `pinDir` (BAE_NOT_LOADED when none is). */
  static open(pinDir: string, command = 'bae block'): Blocklist {
    const entries = openLoadedMap(POLICY_MAPS.blocklist, pinDir, command);
    try {
      return new Blocklist(entries, openLoadedMap(POLICY_MAPS.blockUsed, pinDir, command), { own: true });
    } catch (err) {
      entries.close();
      throw err;
    }
  }

  /** Blocks `target` for `ttlNs` from now (replacing an earlier expiry: the last word counts). */
  block(target: BlockTarget, ttlNs: bigint): BlockEntry {
    if (ttlNs <= 0n || ttlNs > MAX_BLOCK_TTL_NS) throw new RangeError(`block TTL ${ttlNs} ns is outside 1 ns..10 years`);
    // Before the entry, so that no packet skips the lookup once the entry exists.
    const used = this.#used.lookup(ZERO_KEY);
    if (!used || used.readUInt32LE(0) === 0) {
      const one = Buffer.alloc(4);
      one.writeUInt32LE(1);
      this.#used.update(ZERO_KEY, one);
    }
    const expiryNs = this.#clock() + ttlNs;
    const value = Buffer.alloc(8);
    value.writeBigUInt64LE(expiryNs);
    this.#entries.update(this.#key(target), value);
    return { address: target.address, version: target.version, expiryNs, remainingNs: ttlNs };
  }

  /** Lifts the block of `target`; whether there was an entry (expired or not). */
  unblock(target: BlockTarget): boolean {
    return this.#entries.delete(this.#key(target));
  }

  /** Entries still in force (expiry ahead), soonest expiry first. */
  list(): BlockEntry[] {
    const now = this.#clock();
    const { keys, values } = this.#entries.lookupBatch();
    const out: BlockEntry[] = [];
    keys.forEach((k, i) => {
      const { family, addr } = decodePolicyBlockKey(k);
      if (family !== AF_INET && family !== AF_INET6) return;
      const expiryNs = values[i]!.readBigUInt64LE(0);
      if (expiryNs <= now) return;
      const version: IpVersion = family === AF_INET ? 4 : 6;
      out.push({ address: formatAddress(version, addr), version, expiryNs, remainingNs: expiryNs - now });
    });
    return out.sort((a, b) => (a.expiryNs < b.expiryNs ? -1 : a.expiryNs > b.expiryNs ? 1 : 0));
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
  }
}
