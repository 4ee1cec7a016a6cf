// Per-CPU map values: the kernel hands out one value per possible CPU, each slot rounded up to
// 8 bytes.
import { native } from './native';

let possibleCpus: number | undefined;

/** Number of possible CPUs (not online ones): the length of every per-CPU value array. */
export function numPossibleCpus(): number {
  possibleCpus ??= native.numPossibleCpus();
  return possibleCpus;
}

/** Bytes per CPU slot of a per-CPU value of `valueSize` bytes. */
export function perCpuStride(valueSize: number): number {
  return Math.ceil(valueSize / 8) * 8;
}

/** Splits the kernel's flat per-CPU buffer into one Buffer (of valueSize bytes) per CPU. */
export function splitPerCpu(flat: Buffer, valueSize: number): Buffer[] {
  const stride = perCpuStride(valueSize);
  const out: Buffer[] = [];
  for (let off = 0; off + valueSize <= flat.length; off += stride) out.push(flat.subarray(off, off + valueSize));
  return out;
}

/** Joins one value per CPU into the kernel's flat layout. */
export function joinPerCpu(values: readonly Buffer[], valueSize: number): Buffer {
  const stride = perCpuStride(valueSize);
  const flat = Buffer.alloc(stride * values.length);
  values.forEach((v, i) => v.copy(flat, i * stride, 0, valueSize));
  return flat;
}

/**
 * Sum of per-CPU unsigned little-endian counters. With `offset`, sums the 8-byte counter at that
 * offset of each value (for per-CPU structs of counters). Values shorter than 8 bytes at the
 * offset are read with their own width.
 */
export function sumPerCpu(values: readonly Buffer[], offset = 0): bigint {
  let total = 0n;
  for (const v of values) {
    const width = Math.min(8, v.length - offset);
    if (width <= 0) throw new RangeError(`sumPerCpu: offset ${offset} lies outside a ${v.length}-byte value`);
    total += width === 8 ? v.readBigUInt64LE(offset) : BigInt(v.readUIntLE(offset, width));
  }
  return total;
}
