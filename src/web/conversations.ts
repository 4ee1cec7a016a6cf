// The conversation table of the live view and of `bae top`: one read of the kernel's bae_convs
// map (a batch walk), kept as flat arrays of totals so that sorting, filtering and paging 100k
// conversations costs milliseconds; a full profile is decoded only for the rows a page shows and
// for the one conversation a client opens. A ConversationSource reads the map at most once per
// interval, whoever asks, so every client of the page shares one read.
import {
  AF_INET,
  AF_INET6,
  LAYOUTS,
  numPossibleCpus,
  parseAddress,
  perCpuStride,
  type BpfMap,
} from '../datapath';
import { UsageError } from '../errors';
import { parsePrefix, type Prefix } from '../policy';
import { profileFromEntry, type ConversationProfile } from '../profiles';

export const WEB_SORT_KEYS = ['bytes', 'packets', 'retrans'] as const;
export type WebSortKey = (typeof WEB_SORT_KEYS)[number];

/** Rows a page may ask for at once (a bound on the work of one request). */
export const MAX_PAGE_ROWS = 500;

export interface ConversationQuery {
  sort?: WebSortKey;
  /** An address or prefix (v4 or v6): conversations with either end inside it. */
  filter?: string;
  offset?: number;
  limit?: number;
}

/** One row of the table: both directions' totals (64-bit counters as bigint). */
export interface ConversationRow {
  family: 'ipv4' | 'ipv6';
  a: string;
  b: string;
  packets: bigint;
  bytes: bigint;
  retransmits: bigint;
  aToB: { packets: bigint; bytes: bigint };
  bToA: { packets: bigint; bytes: bigint };
  firstSeenNs: bigint;
  lastSeenNs: bigint;
}

export interface ConversationPage {
  /** Conversations in the map at the read. */
  total: number;
  /** Those the filter kept. */
  matched: number;
  offset: number;
  sort: WebSortKey;
  filter: string | null;
  /** CLOCK_MONOTONIC ns of the read (the kernel's clock: ages are nowNs - lastSeenNs). */
  readAtNs: bigint;
  rows: ConversationRow[];
}

const KEY = LAYOUTS.bae_conv_key!;
const DIR = LAYOUTS.bae_conv_dir!;
const CONV = LAYOUTS.bae_conv!;
const F = {
  family: KEY.fields.family!.offset,
  a: KEY.fields.addr_a!.offset,
  b: KEY.fields.addr_b!.offset,
  packets: DIR.fields.packets!.offset,
  bytes: DIR.fields.bytes!.offset,
  retransmits: DIR.fields.retransmits!.offset,
};

/** An unsigned 64-bit little-endian counter as a number (exact below 2^53; for ordering only). */
const u64 = (b: Buffer, at: number): number => b.readUInt32LE(at) + b.readUInt32LE(at + 4) * 4294967296;

/** Checks a filter: an address or a prefix; a UsageError naming it otherwise. */
export function parseFilter(text: string): Prefix {
  const p = parsePrefix(text.trim());
  if (typeof p === 'string') throw new UsageError(`filter: ${p} (give an address such as 10.0.0.1 or a prefix such as 10.0.0.0/8 or fd00::/16)`);
  return p;
}

/** Checks a sort key; a UsageError naming the choices otherwise. */
export function checkSortKey(text: string): WebSortKey {
  if (!(WEB_SORT_KEYS as readonly string[]).includes(text)) throw new UsageError(`sort: '${text}' is not one of ${WEB_SORT_KEYS.join(', ')}`);
  return text as WebSortKey;
}

/** Rows past this offset + limit are paged from a full sort (cached per snapshot); below, a selection. */
const SELECT_MAX = 1000;

/** Totals of one entry (both directions, every CPU) added to `into` at `i`. */
function totalsOf(v: Buffer, base: number, cpus: number, stride: number): [number, number, number] {
  let p = 0;
  let by = 0;
  let r = 0;
  for (let c = 0; c < cpus; c++) {
    for (let d = 0; d < 2; d++) {
      const at = base + c * stride + d * DIR.size;
      p += u64(v, at + F.packets);
      by += u64(v, at + F.bytes);
      r += u64(v, at + F.retransmits);
    }
  }
  return [p, by, r];
}

/** Entries of bae_convs gathered step by step, then frozen into a snapshot. */
class SnapshotBuilder {
  /** The steps' flat buffers as the kernel filled them: no Buffer per entry (100k of them would
   * weigh on every garbage collection). */
  readonly keyChunks: Buffer[] = [];
  readonly valueChunks: Buffer[] = [];
  /** Entry i's value: valueChunks[valueChunk[i]] from valueOffset[i]. */
  readonly valueChunk: number[] = [];
  readonly valueOffset: number[] = [];
  readonly valueLen: number;
  count = 0;
  readonly packets: number[] = [];
  readonly bytes: number[] = [];
  readonly retrans: number[] = [];
  token: Buffer | null = null;
  done = false;
  batchMs = 0;
  workMs = 0;
  readonly #cpus: number;
  readonly #stride = perCpuStride(CONV.size);

  constructor(readonly map: BpfMap) {
    this.#cpus = map.isPerCpu ? numPossibleCpus() : 1;
    this.valueLen = map.isPerCpu ? this.#stride * this.#cpus : CONV.size;
  }

  /** Reads up to `count` more entries. */
  step(count: number): void {
    const t0 = performance.now();
    const res = this.map.lookupBatchStep(this.token, count);
    const t1 = performance.now();
    const chunk = this.valueChunks.length;
    this.keyChunks.push(res.keys.subarray(0, res.count * KEY.size));
    this.valueChunks.push(res.values);
    for (let i = 0; i < res.count; i++) {
      const [p, by, r] = totalsOf(res.values, i * this.valueLen, this.#cpus, this.#stride);
      this.valueChunk.push(chunk);
      this.valueOffset.push(i * this.valueLen);
      this.packets.push(p);
      this.bytes.push(by);
      this.retrans.push(r);
    }
    this.count += res.count;
    this.token = res.token;
    this.done = res.done || res.count === 0;
    this.batchMs += t1 - t0;
    this.workMs += performance.now() - t0;
  }

  freeze(): ConversationSnapshot {
    return new ConversationSnapshot(this, this.#cpus);
  }
}

/** One walk of bae_convs. */
export class ConversationSnapshot {
  readonly count: number;
  /** CLOCK_MONOTONIC ns when the walk ended. */
  readonly readAtNs: bigint;
  /** Time the walk took in this process (ms), all its steps together. */
  readonly readMs: number;
  /** Of which the kernel's batch lookups (ms). */
  readonly batchMs: number;
  readonly #keys: Buffer;
  readonly #valueChunks: Buffer[];
  readonly #valueChunk: Int32Array;
  readonly #valueOffset: Int32Array;
  readonly #valueLen: number;
  readonly #cpus: number;
  readonly #packets: Float64Array;
  readonly #bytes: Float64Array;
  readonly #retrans: Float64Array;
  readonly #sorted = new Map<WebSortKey, Uint32Array>();

  constructor(b: SnapshotBuilder, cpus: number) {
    this.#keys = Buffer.concat(b.keyChunks);
    this.#valueChunks = b.valueChunks;
    this.#valueChunk = Int32Array.from(b.valueChunk);
    this.#valueOffset = Int32Array.from(b.valueOffset);
    this.#valueLen = b.valueLen;
    this.#cpus = cpus;
    this.count = b.count;
    this.#packets = Float64Array.from(b.packets);
    this.#bytes = Float64Array.from(b.bytes);
    this.#retrans = Float64Array.from(b.retrans);
    this.readAtNs = process.hrtime.bigint();
    this.readMs = b.workMs;
    this.batchMs = b.batchMs;
  }

  /** Reads the whole map at once (one batch walk; entries evicted meanwhile are missed). */
  static read(convs: BpfMap): ConversationSnapshot {
    checkConvMap(convs);
    const b = new SnapshotBuilder(convs);
    while (!b.done) b.step(8192);
    return b.freeze();
  }

  #primary(key: WebSortKey): Float64Array {
    return key === 'bytes' ? this.#bytes : key === 'packets' ? this.#packets : this.#retrans;
  }

  /** Negative when entry x comes before y: larger first, ties by bytes, then by the key bytes. */
  #compare(primary: Float64Array, x: number, y: number): number {
    return primary[y]! - primary[x]! || this.#bytes[y]! - this.#bytes[x]! || this.#keys.compare(this.#keys, y * KEY.size, (y + 1) * KEY.size, x * KEY.size, (x + 1) * KEY.size);
  }

  /** Every index by `key` (a full sort, cached): for deep pages only. */
  #order(key: WebSortKey): Uint32Array {
    let order = this.#sorted.get(key);
    if (order) return order;
    const primary = this.#primary(key);
    order = new Uint32Array(this.count);
    for (let i = 0; i < order.length; i++) order[i] = i;
    order.sort((x, y) => this.#compare(primary, x, y));
    this.#sorted.set(key, order);
    return order;
  }

  #matches(i: number, p: Prefix): boolean {
    const base = i * KEY.size;
    if ((this.#keys[base + F.family] === AF_INET ? 4 : 6) !== p.family) return false;
    return inPrefix(this.#keys, base + F.a, p) || inPrefix(this.#keys, base + F.b, p);
  }

  /**
   * A page of the table: sorted, filtered, `limit` rows from `offset`. A page within the first
   * SELECT_MAX rows is a selection in one pass (no sort of the whole map); deeper pages use a
   * full sort, kept for the snapshot.
   */
  query(q: ConversationQuery = {}): ConversationPage {
    const sort = q.sort ?? 'bytes';
    const offset = q.offset ?? 0;
    const limit = Math.min(q.limit ?? 50, MAX_PAGE_ROWS);
    const prefix = q.filter ? parseFilter(q.filter) : undefined;
    const want = offset + limit;
    let picked: number[];
    let matched = 0;
    if (want <= SELECT_MAX) {
      const primary = this.#primary(sort);
      // A heap of the best `want` so far with the worst on top: an entry that does not beat the
      // top is skipped, most of them on the primary value alone (one comparison, no call).
      const heap = new Int32Array(want);
      let size = 0;
      const worse = (x: number, y: number) => this.#compare(primary, x, y) > 0;
      const down = (at: number) => {
        for (;;) {
          const l = 2 * at + 1;
          const r = l + 1;
          let top = at;
          if (l < size && worse(heap[l]!, heap[top]!)) top = l;
          if (r < size && worse(heap[r]!, heap[top]!)) top = r;
          if (top === at) return;
          const t = heap[at]!;
          heap[at] = heap[top]!;
          heap[top] = t;
          at = top;
        }
      };
      for (let i = 0; i < this.count; i++) {
        if (prefix && !this.#matches(i, prefix)) continue;
        matched++;
        if (size < want) {
          let at = size++;
          heap[at] = i;
          while (at > 0) {
            const up = (at - 1) >> 1;
            if (!worse(heap[at]!, heap[up]!)) break;
            const t = heap[at]!;
            heap[at] = heap[up]!;
            heap[up] = t;
            at = up;
          }
          continue;
        }
        const worst = heap[0]!;
        if (primary[i]! < primary[worst]! || !worse(worst, i)) continue;
        heap[0] = i;
        down(0);
      }
      const best = Array.from(heap.subarray(0, size)).sort((x, y) => this.#compare(primary, x, y));
      picked = best.slice(offset);
    } else {
      const order = this.#order(sort);
      picked = [];
      for (let j = 0; j < order.length; j++) {
        const i = order[j]!;
        if (prefix && !this.#matches(i, prefix)) continue;
        if (matched >= offset && picked.length < limit) picked.push(i);
        matched++;
      }
    }
    return { total: this.count, matched, offset, sort, filter: q.filter ? q.filter.trim() : null, readAtNs: this.readAtNs, rows: picked.map((i) => this.#row(i)) };
  }

  #profile(i: number): ConversationProfile {
    const off = this.#valueOffset[i]!;
    const v = this.#valueChunks[this.#valueChunk[i]!]!.subarray(off, off + this.#valueLen);
    const stride = perCpuStride(CONV.size);
    const copies = Array.from({ length: this.#cpus }, (_, c) => v.subarray(c * stride, c * stride + CONV.size));
    return profileFromEntry(this.#keys.subarray(i * KEY.size, (i + 1) * KEY.size), copies);
  }

  #row(i: number): ConversationRow {
    const p = this.#profile(i);
    return {
      family: p.family,
      a: p.a,
      b: p.b,
      packets: p.packets,
      bytes: p.bytes,
      retransmits: p.retransmits,
      aToB: { packets: p.aToB.packets, bytes: p.aToB.bytes },
      bToA: { packets: p.bToA.packets, bytes: p.bToA.bytes },
      firstSeenNs: p.firstSeenNs,
      lastSeenNs: p.lastSeenNs,
    };
  }

  /** The whole profile of the conversation between x and y (either order), if present. */
  profile(x: string, y: string): ConversationProfile | undefined {
    const px = parseAddress(x);
    const py = parseAddress(y);
    if (!px || !py || px.family !== py.family) return undefined;
    const family = px.family === 4 ? AF_INET : AF_INET6;
    const bx = Buffer.alloc(16);
    bx.set(px.addr);
    const by = Buffer.alloc(16);
    by.set(py.addr);
    for (let i = 0; i < this.count; i++) {
      const base = i * KEY.size;
      if (this.#keys[base + F.family] !== family) continue;
      const k = this.#keys;
      const a = base + F.a;
      const b = base + F.b;
      const is = (at: number, want: Buffer) => k.compare(want, 0, 16, at, at + 16) === 0;
      if ((is(a, bx) && is(b, by)) || (is(a, by) && is(b, bx))) return this.#profile(i);
    }
    return undefined;
  }
}

/** Whether the 16 address bytes at `at` of key `k` lie in prefix `p`. */
function inPrefix(k: Buffer, at: number, p: Prefix): boolean {
  const whole = p.len >> 3;
  for (let j = 0; j < whole; j++) if (k[at + j] !== p.addr[j]) return false;
  const rest = p.len & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (k[at + whole]! & mask) === (p.addr[whole]! & mask);
}

function checkConvMap(convs: BpfMap): void {
  if (convs.keySize !== KEY.size || convs.valueSize !== CONV.size) {
    throw new RangeError(`map ${convs.name} has ${convs.keySize}-byte keys and ${convs.valueSize}-byte values; a bae_convs map has ${KEY.size} and ${CONV.size}`);
  }
}

/** Entries per step of a walk at first; a step then adapts to take about STEP_TARGET_MS. */
export const FIRST_STEP = 8192;
const STEP_TARGET_MS = 25;

/**
 * The shared reader of the live view: the server calls advance() once per push, which reads one
 * step of the next walk of bae_convs (a step takes about 25 ms, whatever the map holds), and
 * latest() answers every client from the last complete walk. A small map is walked whole at each
 * push; 100k conversations take a few pushes, so no push waits for a whole walk.
 */
export class ConversationSource {
  readonly #open: () => BpfMap;
  #map: BpfMap | undefined;
  #last: ConversationSnapshot | undefined;
  #next: SnapshotBuilder | undefined;
  #step = FIRST_STEP;
  /** Complete walks so far. */
  walks = 0;

  constructor(open: () => BpfMap) {
    this.#open = open;
  }

  #opened(): BpfMap {
    if (!this.#map) {
      const m = this.#open();
      try {
        checkConvMap(m);
      } catch (err) {
        m.close();
        throw err;
      }
      this.#map = m;
    }
    return this.#map;
  }

  /** The last complete walk; the first call walks the whole map at once. */
  latest(): ConversationSnapshot {
    if (!this.#last) {
      this.#last = ConversationSnapshot.read(this.#opened());
      this.walks++;
    }
    return this.#last;
  }

  /** A whole walk now (`bae top`). */
  readAll(): ConversationSnapshot {
    this.#last = ConversationSnapshot.read(this.#opened());
    this.walks++;
    return this.#last;
  }

  /** One step of the next walk; true when it completed (latest() then returns it). */
  advance(): boolean {
    this.#next ??= new SnapshotBuilder(this.#opened());
    const b = this.#next;
    const t = performance.now();
    b.step(this.#step);
    const ms = performance.now() - t;
    if (ms > STEP_TARGET_MS * 1.5 && this.#step > 1024) this.#step >>= 1;
    else if (ms < STEP_TARGET_MS / 2 && this.#step < 1 << 17) this.#step <<= 1;
    if (!b.done) return false;
    this.#last = b.freeze();
    this.#next = undefined;
    this.walks++;
    return true;
  }

  close(): void {
    this.#map?.close();
    this.#map = undefined;
    this.#next = undefined;
  }
}
