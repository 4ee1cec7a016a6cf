// A batch of packets packed into a few transferable buffers, so that the capture side hands
// thousands of packets to the writer thread with one postMessage and no per-row copy or clone:
// fixed-size columns, one string table (policy, action, reason repeat a lot), the frames end to
// end in one byte array.
import { PACKET_KINDS, type PacketRecord } from './packet-record';

/** What crosses to the writer thread (every ArrayBuffer is transferred, not copied). */
export interface PackedPackets {
  count: number;
  ts: BigInt64Array;
  /** Per row: ifindex, origLen, data offset, data length, kind, policy, action, reason (string index + 1, 0: null). */
  cols: Uint32Array;
  strings: string[];
  data: Uint8Array;
}

const COLS = 8;

export class PacketBatchBuilder {
  readonly capacity: number;
  count = 0;
  #ts: BigInt64Array;
  #cols: Uint32Array;
  #data: Uint8Array;
  #dataLen = 0;
  #strings: string[] = [];
  #stringIndex = new Map<string, number>();

  constructor(capacity: number, dataBytes = capacity * 256) {
    this.capacity = capacity;
    this.#ts = new BigInt64Array(capacity);
    this.#cols = new Uint32Array(capacity * COLS);
    this.#data = new Uint8Array(dataBytes);
  }

  #str(s: string | null): number {
    if (s === null) return 0;
    let i = this.#stringIndex.get(s);
    if (i === undefined) {
      i = this.#strings.push(s);
      this.#stringIndex.set(s, i);
    }
    return i;
  }

  get full(): boolean {
    return this.count >= this.capacity;
  }

  add(p: PacketRecord): void {
    if (this.full) throw new RangeError('packet batch is full');
    const n = p.data.length;
    if (this.#dataLen + n > this.#data.length) {
      const bigger = new Uint8Array(Math.max(this.#data.length * 2, this.#dataLen + n));
      bigger.set(this.#data.subarray(0, this.#dataLen));
      this.#data = bigger;
    }
    this.#data.set(p.data, this.#dataLen);
    const i = this.count++;
    this.#ts[i] = p.tsNs;
    const c = i * COLS;
    const cols = this.#cols;
    cols[c] = p.ifindex;
    cols[c + 1] = p.origLen;
    cols[c + 2] = this.#dataLen;
    cols[c + 3] = n;
    cols[c + 4] = PACKET_KINDS.indexOf(p.kind);
    cols[c + 5] = this.#str(p.policy);
    cols[c + 6] = this.#str(p.action);
    cols[c + 7] = this.#str(p.reason);
    this.#dataLen += n;
  }

  /** The packed batch and the buffers to transfer; the builder is spent after this. */
  take(): { packed: PackedPackets; transfer: ArrayBuffer[] } {
    const packed: PackedPackets = {
      count: this.count,
      ts: this.#ts,
      cols: this.#cols,
      strings: this.#strings,
      data: this.#data.subarray(0, this.#dataLen),
    };
    return { packed, transfer: [this.#ts.buffer as ArrayBuffer, this.#cols.buffer as ArrayBuffer, this.#data.buffer as ArrayBuffer] };
  }
}

/** The records of a packed batch, each frame a view on the batch's bytes (no copy). */
export function* unpackPackets(b: PackedPackets): IterableIterator<PacketRecord> {
  const str = (i: number) => (i === 0 ? null : b.strings[i - 1]!);
  const bytes = Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  for (let i = 0; i < b.count; i++) {
    const c = i * COLS;
    yield {
      tsNs: b.ts[i]!,
      ifindex: b.cols[c]!,
      origLen: b.cols[c + 1]!,
      data: bytes.subarray(b.cols[c + 2]!, b.cols[c + 2]! + b.cols[c + 3]!),
      kind: PACKET_KINDS[b.cols[c + 4]!]!,
      policy: str(b.cols[c + 5]!),
      action: str(b.cols[c + 6]!),
      reason: str(b.cols[c + 7]!),
    };
  }
}
