// RingBuffer: records of a BPF ring buffer map, delivered in order on the main thread. libuv
// polls the ring's epoll descriptor, so waiting costs nothing and a burst is consumed in one go
// without blocking the event loop for longer than it takes to copy it.
import { EventEmitter } from 'node:events';
import { bpfError, nativeCall } from './errors';
import type { BpfMap } from './map';
import { native, type NativeRingBuffer } from './native';

export type RecordHandler = (record: Buffer) => void;

export interface RingBufferEvents {
  record: [record: Buffer];
}

/**
 * new RingBuffer(map, onRecord?) — records go to onRecord when given, otherwise they are
 * emitted as 'record'. An exception thrown by a handler propagates as an uncaught exception,
 * like one thrown from a socket's 'data' handler. The poll keeps the process alive until close()
 * (or unref()).
 */
export class RingBuffer extends EventEmitter<RingBufferEvents> {
  readonly mapName: string;
  #native: NativeRingBuffer | undefined;
  #delivered = 0;

  constructor(map: BpfMap, onRecord?: RecordHandler) {
    super();
    if (map === null || typeof map !== 'object' || typeof map.fd !== 'number') throw bpfError('RingBuffer', 'EINVAL', 'map must be a BpfMap');
    if (map.type !== 'ringbuf') throw bpfError('RingBuffer', 'EINVAL', `map ${map.name} is a ${map.type} map, not a ringbuf`, map.name);
    if (map.fd < 0) throw bpfError('RingBuffer', 'EBADF', `map ${map.name} is closed`, map.name);
    if (onRecord !== undefined && typeof onRecord !== 'function') throw bpfError('RingBuffer', 'EINVAL', 'onRecord must be a function', map.name);
    this.mapName = map.name;
    const deliver = onRecord ?? ((record: Buffer) => this.emit('record', record));
    this.#native = nativeCall(map.name, () => new native.RingBuffer(map.fd, (records) => {
      this.#delivered += records.length;
      for (const record of records) deliver(record);
    }));
  }

  /** Records delivered so far. */
  get delivered(): number {
    return this.#delivered;
  }

  get closed(): boolean {
    return this.#native === undefined;
  }

  /** Consumes whatever is in the ring now, synchronously; returns how many records it delivered. */
  consume(): number {
    if (this.#native === undefined) throw bpfError('consume', 'EBADF', `ring buffer ${this.mapName} is closed`, this.mapName);
    const rb = this.#native;
    return nativeCall(this.mapName, () => rb.consume());
  }

  /** Lets the process exit while the ring is open. */
  unref(): this {
    this.#native?.unref();
    return this;
  }

  ref(): this {
    this.#native?.ref();
    return this;
  }

  /** Stops polling and releases the ring; safe twice. Records still in the ring are not delivered. */
  close(): void {
    this.#native?.close();
    this.#native = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
