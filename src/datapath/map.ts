// BpfMap: one kernel map, shaped like cilium/ebpf's Map. Keys and values are Buffers of exactly
// the map's key and value size; per-CPU values are one Buffer per possible CPU. A missing key is
// `undefined`, not an exception.
import { BpfError, bpfError, fromNative, nativeCall } from './errors';
import { BpfHandle } from './handle';
import { native, type NativeHandle, type NativeMapInfo } from './native';
import { joinPerCpu, numPossibleCpus, perCpuStride, splitPerCpu } from './percpu';

export type UpdateFlag = 'any' | 'noexist' | 'exist';
const updateFlags: Record<UpdateFlag, number> = { any: 0, noexist: 1, exist: 2 }; // BPF_ANY, BPF_NOEXIST, BPF_EXIST

export interface BatchResult {
  keys: Buffer[];
  /** One value per key; for per-CPU maps the kernel's flat per-CPU layout (see splitPerCpu). */
  values: Buffer[];
}

// Map types whose value is one slot per possible CPU.
const perCpuTypes = new Set(['percpu_hash', 'percpu_array', 'lru_percpu_hash', 'percpu_cgroup_storage']);
// Map types without keys to walk or values to read from user space.
const keylessTypes = new Set(['ringbuf', 'user_ringbuf', 'perf_event_array']);

/** Chunk of batch operations: each chunk is one system call, short enough not to stall the loop. */
const DEFAULT_BATCH_CHUNK = 8192;

export class BpfMap extends BpfHandle {
  protected readonly kind = 'map';
  /** libbpf's name of the map type, e.g. 'lru_hash', 'percpu_array', 'ringbuf'. */
  readonly type: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly id: number;
  readonly isPerCpu: boolean;
  /** true for libbpf's global-data maps (.rodata, .data, .bss). */
  readonly internal: boolean;

  /** @internal Use loadCollection(...).map(name) or openPinnedMap(path). */
  constructor(handle: NativeHandle, info: NativeMapInfo, name: string = info.name, internal = false) {
    super(handle, name);
    this.type = info.type;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.flags = info.flags;
    this.id = info.id;
    this.isPerCpu = perCpuTypes.has(info.type);
    this.internal = internal;
  }

  lookup(key: Buffer): Buffer | undefined {
    const fd = this.openFd('lookup');
    if (this.isPerCpu) throw this.#usage('lookup', 'is a per-CPU map: use lookupPerCpu()');
    this.#checkKey('lookup', key);
    return nativeCall(this.name, () => native.mapLookup(fd, key, this.valueSize));
  }

  /** One value per possible CPU, or undefined when the key is absent. */
  lookupPerCpu(key: Buffer): Buffer[] | undefined {
    const fd = this.openFd('lookupPerCpu');
    if (!this.isPerCpu) throw this.#usage('lookupPerCpu', 'is not a per-CPU map: use lookup()');
    this.#checkKey('lookupPerCpu', key);
    const flat = nativeCall(this.name, () => native.mapLookup(fd, key, this.#valueLen()));
    return flat === undefined ? undefined : splitPerCpu(flat, this.valueSize);
  }

  /**
   * Creates or replaces the value of `key`. For per-CPU maps `value` is one Buffer per possible
   * CPU, or a single Buffer that every CPU gets. 'noexist' fails with EEXIST when the key is
   * there, 'exist' with ENOENT when it is not.
   */
  update(key: Buffer, value: Buffer | readonly Buffer[], flag: UpdateFlag = 'any'): void {
    const fd = this.openFd('update');
    this.#checkKey('update', key);
    const raw = this.#encodeValue('update', value);
    const flags = this.#flag('update', flag);
    nativeCall(this.name, () => native.mapUpdate(fd, key, raw, flags));
  }

  /** Deletes `key`; false when it was not there. */
  delete(key: Buffer): boolean {
    const fd = this.openFd('delete');
    this.#checkKey('delete', key);
    return nativeCall(this.name, () => native.mapDelete(fd, key));
  }

  /**
   * Walks the keys with bpf_map_get_next_key. The next key is fetched before the current one is
   * handed out, so deleting the current key (draining) is safe; when the kernel restarts the
   * walk because another key vanished, keys already seen are skipped.
   */
  *keys(): IterableIterator<Buffer> {
    const fd = this.openFd('keys');
    if (keylessTypes.has(this.type)) throw this.#usage('keys', `is a ${this.type} map: it has no keys to walk`);
    const seen = new Set<string>();
    const maxSteps = 4 * this.maxEntries + 1024; // bound against a walk that keeps restarting
    let current = nativeCall(this.name, () => native.mapNextKey(fd, null, this.keySize));
    for (let steps = 0; current !== undefined && steps < maxSteps; steps++) {
      const prev: Buffer = current;
      const next = nativeCall(this.name, () => native.mapNextKey(this.openFd('keys'), prev, this.keySize));
      const id = prev.toString('latin1');
      if (!seen.has(id)) {
        seen.add(id);
        yield prev;
      }
      current = next;
    }
  }

  /** [key, value] pairs; per-CPU values are one Buffer per CPU. Keys deleted meanwhile are skipped. */
  *entries(): IterableIterator<[Buffer, Buffer | Buffer[]]> {
    for (const key of this.keys()) {
      const value = this.isPerCpu ? this.lookupPerCpu(key) : this.lookup(key);
      if (value !== undefined) yield [key, value];
    }
  }

  [Symbol.iterator](): IterableIterator<[Buffer, Buffer | Buffer[]]> {
    return this.entries();
  }

  /**
   * Every entry through BPF_MAP_LOOKUP_BATCH, `chunk` entries per system call (8192 by default).
   * Maps without batch support are walked key by key instead.
   */
  lookupBatch(opts: { chunk?: number } = {}): BatchResult {
    const fd = this.openFd('lookupBatch');
    let chunk = this.#chunk('lookupBatch', opts.chunk);
    const valueLen = this.#valueLen();
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    let token: Buffer | null = null;
    for (;;) {
      let res;
      try {
        const inBatch: Buffer | null = token;
        res = native.mapLookupBatch(fd, inBatch, this.keySize, valueLen, chunk, false);
      } catch (err) {
        const errno = (err as { errno?: number }).errno;
        if (errno === 28 /* ENOSPC: one hash bucket holds more than chunk */ && chunk < 1 << 20) {
          chunk *= 2;
          continue;
        }
        if (token === null && noBatchSupport(errno)) return this.#lookupByIteration();
        throw fromNative(err, this.name);
      }
      for (let i = 0; i < res.count; i++) {
        keys.push(res.keys.subarray(i * this.keySize, (i + 1) * this.keySize));
        values.push(res.values.subarray(i * valueLen, (i + 1) * valueLen));
      }
      if (res.done) break;
      token = res.outBatch;
    }
    return { keys, values };
  }

  /**
   * One step of a batch walk of a hash map: up to `count` entries after `token` (null: from the
   * start), as two flat Buffers (key i at i * keySize, value i at i * the value length; per-CPU
   * values in the kernel's flat layout), and the token of the next step; `done` after the last.
   * For a reader that spreads a walk of a large map over time (the live view).
   */
  lookupBatchStep(token: Buffer | null, count: number): { count: number; keys: Buffer; values: Buffer; token: Buffer | null; done: boolean } {
    const fd = this.openFd('lookupBatchStep');
    let chunk = this.#chunk('lookupBatchStep', count);
    const valueLen = this.#valueLen();
    for (;;) {
      try {
        const res = native.mapLookupBatch(fd, token, this.keySize, valueLen, chunk, false);
        return { count: res.count, keys: res.keys, values: res.values, token: res.outBatch, done: res.done };
      } catch (err) {
        // ENOSPC: one hash bucket holds more entries than the step may return.
        if ((err as { errno?: number }).errno === 28 && chunk < 1 << 20) {
          chunk *= 2;
          continue;
        }
        throw fromNative(err, this.name);
      }
    }
  }

  /**
   * Every entry of an array map, in index order, as one buffer of values (BPF_MAP_LOOKUP_BATCH
   * without a Buffer per entry: what a digest of a large array needs). Other map types: TypeError.
   */
  arrayValues(): Buffer {
    if (this.type !== 'array' && this.type !== 'percpu_array') throw new TypeError(`map '${this.name}' is a ${this.type} map, not an array`);
    const fd = this.openFd('arrayValues');
    const valueLen = this.#valueLen();
    const parts: Buffer[] = [];
    let token: Buffer | null = null;
    for (;;) {
      let res;
      try {
        res = native.mapLookupBatch(fd, token, this.keySize, valueLen, 8192, false);
      } catch (err) {
        throw fromNative(err, this.name);
      }
      parts.push(res.values.subarray(0, res.count * valueLen));
      if (res.done) break;
      token = res.outBatch;
    }
    return Buffer.concat(parts);
  }

  /** Writes many entries (BPF_MAP_UPDATE_BATCH, in chunks; one by one where the map type has no batch update); values as in update(). */
  updateBatch(keys: readonly Buffer[], values: readonly (Buffer | readonly Buffer[])[], flag: UpdateFlag = 'any'): void {
    const fd = this.openFd('updateBatch');
    if (!Array.isArray(keys) || !Array.isArray(values) || keys.length !== values.length)
      throw this.#usage('updateBatch', `needs arrays of keys and values of equal length (got ${describeLength(keys)} and ${describeLength(values)})`);
    const flags = this.#flag('updateBatch', flag);
    const valueLen = this.#valueLen();
    keys.forEach((k) => this.#checkKey('updateBatch', k));
    const encoded = values.map((v) => this.#encodeValue('updateBatch', v));
    for (let start = 0; start < keys.length; start += DEFAULT_BATCH_CHUNK) {
      const end = Math.min(keys.length, start + DEFAULT_BATCH_CHUNK);
      const keyBuf = Buffer.concat(keys.slice(start, end), (end - start) * this.keySize);
      const valueBuf = Buffer.concat(encoded.slice(start, end), (end - start) * valueLen);
      try {
        native.mapUpdateBatch(fd, keyBuf, valueBuf, end - start, flags);
      } catch (err) {
        const e = err as { errno?: number; count?: number };
        if (!(start === 0 && noBatchSupport(e.errno))) throw fromNative(err, this.name);
        // No batch update for this map type: one element at a time.
        keys.forEach((k, i) => nativeCall(this.name, () => native.mapUpdate(fd, k, encoded[i]!, flags)));
        return;
      }
    }
  }

  /** Deletes many keys (BPF_MAP_DELETE_BATCH, or one by one where unsupported); absent keys are skipped. Returns how many were deleted. */
  deleteBatch(keys: readonly Buffer[]): number {
    const fd = this.openFd('deleteBatch');
    if (!Array.isArray(keys)) throw this.#usage('deleteBatch', 'needs an array of keys');
    keys.forEach((k) => this.#checkKey('deleteBatch', k));
    let deleted = 0;
    let start = 0;
    while (start < keys.length) {
      const end = Math.min(keys.length, start + DEFAULT_BATCH_CHUNK);
      const keyBuf = Buffer.concat(keys.slice(start, end), (end - start) * this.keySize);
      try {
        deleted += native.mapDeleteBatch(fd, keyBuf, end - start);
        start = end;
      } catch (err) {
        const e = err as { errno?: number; count?: number };
        if (e.errno === 2 && typeof e.count === 'number') {
          // The kernel stops at the first absent key: count it out and go on after it.
          deleted += e.count;
          start += e.count + 1;
          continue;
        }
        if (start === 0 && noBatchSupport(e.errno)) {
          for (const k of keys) if (nativeCall(this.name, () => native.mapDelete(fd, k))) deleted++;
          return deleted;
        }
        throw fromNative(err, this.name);
      }
    }
    return deleted;
  }

  /**
   * Up to `count` entries of an array map from index `first` on, through BPF_MAP_LOOKUP_BATCH, as
   * two flat Buffers: key i at i * keySize, value i at i * the value length (per-CPU values in the
   * kernel's flat layout). No Buffer per entry: for reading a slice of a large array.
   */
  lookupRange(first: number, count: number): { count: number; keys: Buffer; values: Buffer } {
    const fd = this.openFd('lookupRange');
    if (!this.type.includes('array') || this.keySize !== 4) throw this.#usage('lookupRange', `is a ${this.type} map: lookupRange reads array maps`);
    if (!Number.isInteger(first) || first < 0 || !Number.isInteger(count) || count < 0 || first + count > this.maxEntries)
      throw this.#usage('lookupRange', `needs 0 <= first and first + count <= ${this.maxEntries} (whole numbers), got first ${first}, count ${count}`);
    const valueLen = this.#valueLen();
    const keyParts: Buffer[] = [];
    const valueParts: Buffer[] = [];
    let got = 0;
    // The batch token of an array is the index read last: start after first - 1.
    let token: Buffer | null = null;
    if (first > 0) {
      token = Buffer.alloc(4);
      token.writeUInt32LE(first - 1);
    }
    while (got < count) {
      const want = Math.min(count - got, 1 << 20);
      const inBatch: Buffer | null = token;
      const res = nativeCall(this.name, () => native.mapLookupBatch(fd, inBatch, 4, valueLen, want, false));
      keyParts.push(res.keys.subarray(0, res.count * 4));
      valueParts.push(res.values.subarray(0, res.count * valueLen));
      got += res.count;
      if (res.done || res.count === 0) break;
      token = res.outBatch;
    }
    const one = keyParts.length === 1;
    return { count: got, keys: one ? keyParts[0]! : Buffer.concat(keyParts), values: one ? valueParts[0]! : Buffer.concat(valueParts) };
  }

  /**
   * Writes entries given as two flat Buffers (key i at i * keySize, value i at i * the value
   * length; per-CPU values in the kernel's flat layout) with BPF_MAP_UPDATE_BATCH, one by one
   * where the map type has no batch update. No Buffer per entry: for writing many at once.
   */
  updateBatchFlat(keys: Buffer, values: Buffer, flag: UpdateFlag = 'any'): void {
    const fd = this.openFd('updateBatchFlat');
    const valueLen = this.#valueLen();
    if (!Buffer.isBuffer(keys) || !Buffer.isBuffer(values) || keys.length % this.keySize !== 0 || values.length !== (keys.length / this.keySize) * valueLen)
      throw this.#usage('updateBatchFlat', `needs n keys of ${this.keySize} bytes and n values of ${valueLen} bytes (got ${describeBuffer(keys)} and ${describeBuffer(values)})`);
    const flags = this.#flag('updateBatchFlat', flag);
    const n = keys.length / this.keySize;
    if (n === 0) return;
    try {
      native.mapUpdateBatch(fd, keys, values, n, flags);
    } catch (err) {
      // No batch update for this map type (or a bad entry, which the single update names).
      if (!noBatchSupport((err as { errno?: number }).errno)) throw fromNative(err, this.name);
      for (let i = 0; i < n; i++) {
        const k = keys.subarray(i * this.keySize, (i + 1) * this.keySize);
        const v = values.subarray(i * valueLen, (i + 1) * valueLen);
        nativeCall(this.name, () => native.mapUpdate(fd, k, v, flags));
      }
    }
  }

  /** Removes every entry; array maps (whose entries cannot be deleted) are zeroed instead. */
  clear(): void {
    this.openFd('clear');
    if (this.type.includes('array')) {
      const zero = Buffer.alloc(this.#valueLen());
      const keys: Buffer[] = [];
      for (let i = 0; i < this.maxEntries; i++) {
        const k = Buffer.alloc(this.keySize);
        k.writeUInt32LE(i);
        keys.push(k);
      }
      const values = this.isPerCpu ? keys.map(() => splitPerCpu(zero, this.valueSize)) : keys.map(() => zero);
      this.updateBatch(keys, values);
      return;
    }
    this.deleteBatch(this.lookupBatch().keys.map((k) => Buffer.from(k)));
  }

  #lookupByIteration(): BatchResult {
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    const fd = this.openFd('lookupBatch');
    for (const key of this.keys()) {
      const value = nativeCall(this.name, () => native.mapLookup(fd, key, this.#valueLen()));
      if (value === undefined) continue;
      keys.push(key);
      values.push(value);
    }
    return { keys, values };
  }

  #valueLen(): number {
    return this.isPerCpu ? perCpuStride(this.valueSize) * numPossibleCpus() : this.valueSize;
  }

  #checkKey(op: string, key: unknown): asserts key is Buffer {
    if (!Buffer.isBuffer(key) || key.length !== this.keySize)
      throw this.#usage(op, `key must be a ${this.keySize}-byte Buffer, got ${describeBuffer(key)}`);
  }

  #encodeValue(op: string, value: unknown): Buffer {
    if (this.isPerCpu) {
      const ncpu = numPossibleCpus();
      if (Buffer.isBuffer(value)) {
        if (value.length !== this.valueSize) throw this.#usage(op, `value must be a ${this.valueSize}-byte Buffer, got ${describeBuffer(value)}`);
        return joinPerCpu(new Array<Buffer>(ncpu).fill(value), this.valueSize);
      }
      if (!Array.isArray(value) || value.length !== ncpu)
        throw this.#usage(op, `per-CPU value must be ${ncpu} Buffers (one per possible CPU) or one Buffer, got ${describeLength(value)}`);
      value.forEach((v: unknown, cpu) => {
        if (!Buffer.isBuffer(v) || v.length !== this.valueSize)
          throw this.#usage(op, `value of CPU ${cpu} must be a ${this.valueSize}-byte Buffer, got ${describeBuffer(v)}`);
      });
      return joinPerCpu(value as Buffer[], this.valueSize);
    }
    if (!Buffer.isBuffer(value) || value.length !== this.valueSize)
      throw this.#usage(op, `value must be a ${this.valueSize}-byte Buffer, got ${describeBuffer(value)}`);
    return value;
  }

  #flag(op: string, flag: unknown): number {
    if (typeof flag !== 'string' || !(flag in updateFlags))
      throw this.#usage(op, `flag must be 'any', 'noexist' or 'exist', got ${JSON.stringify(flag)}`);
    return updateFlags[flag as UpdateFlag];
  }

  #chunk(op: string, chunk: number | undefined): number {
    if (chunk === undefined) return Math.max(1, Math.min(DEFAULT_BATCH_CHUNK, this.maxEntries));
    if (!Number.isInteger(chunk) || chunk < 1 || chunk > 1 << 20) throw this.#usage(op, `chunk must be an integer from 1 to ${1 << 20}, got ${chunk}`);
    return chunk;
  }

  #usage(op: string, message: string): BpfError {
    return bpfError(op, 'EINVAL', message.startsWith('is ') ? `map ${this.name} ${message}` : message, this.name);
  }
}

/**
 * Resolves after an RCU grace period: every XDP run (a non-sleepable BPF program, inside an RCU
 * read-side section) that started before the call has finished. The kernel waits in
 * synchronize_rcu() when a map-in-map slot is written; this writes one of two throwaway maps,
 * off the event loop. A few jiffies (8-16 ms measured with HZ=250).
 */
export async function rcuGracePeriod(): Promise<void> {
  try {
    await native.rcuGracePeriod();
  } catch (err) {
    throw fromNative(err, 'bae_grace');
  }
}

/** Opens a map pinned at `path` (e.g. by another process). */
export function openPinnedMap(path: string): BpfMap {
  if (typeof path !== 'string' || path.length === 0) throw bpfError('openPinnedMap', 'EINVAL', 'path must be a non-empty string');
  const handle = nativeCall(path, () => native.objGet(path));
  try {
    const info = nativeCall(path, () => native.mapInfo(handle.fd));
    return new BpfMap(handle, info);
  } catch (err) {
    handle.close();
    throw err;
  }
}

// EINVAL, EOPNOTSUPP and the kernel's ENOTSUPP: what a map type without a batch operation returns.
function noBatchSupport(errno: number | undefined): boolean {
  return errno === 22 || errno === 95 || errno === 524;
}

function describeBuffer(v: unknown): string {
  return Buffer.isBuffer(v) ? `${v.length} bytes` : v === null ? 'null' : typeof v;
}

function describeLength(v: unknown): string {
  return Array.isArray(v) ? `${v.length} items` : v === null ? 'null' : typeof v;
}
