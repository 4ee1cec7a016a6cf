// Fast little-endian stores into Buffers for the encoders of large tables (policy-layout.ts).
import os from 'node:os';

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

export function writeU64(buf: Buffer, at: number, v: bigint): void {
  const w = wordsOf(buf).u64;
  if (w !== undefined && at % 8 === 0 && v >= 0n && v <= U64_MAX) w[at >>> 3] = v;
  else buf.writeBigUInt64LE(v, at);
}

export function writeU32(buf: Buffer, at: number, v: number): void {
  const w = wordsOf(buf).u32;
  if (w !== undefined && (at & 3) === 0 && v >>> 0 === v) w[at >>> 2] = v;
  else buf.writeUInt32LE(v, at);
}

export function writeU16(buf: Buffer, at: number, v: number): void {
  const w = wordsOf(buf).u16;
  if (w !== undefined && (at & 1) === 0 && (v & 0xffff) === v) w[at >>> 1] = v;
  else buf.writeUInt16LE(v, at);
}
