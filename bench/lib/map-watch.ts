// Watching a pinned BPF map for one key from a worker thread (map-watch-worker.ts), so that a
// benchmark can time "until the entry is in the kernel map" without spinning on a core of its own:
// between lookups the worker sleeps in the kernel (Atomics.wait, a futex with a timeout), and the
// main thread sits in its event loop. The answer is an interval, not a point: the entry appeared
// after the start of the last lookup that missed it and before the end of the one that found it.
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/** Slots of the Int32Array control block. */
export const SLOT = { state: 0, keyLen: 1, lookups: 2 } as const;
/** Slots of the BigInt64Array of CLOCK_MONOTONIC stamps (ns). */
export const STAMP = { firstStart: 0, lastMissStart: 1, hitEnd: 2 } as const;
export const IDLE = 0;
export const WATCH = 1;
export const FOUND = 2;
export const TIMEOUT = 3;
export const QUIT = 4;
const KEY_MAX = 64;

export type WatchMode = 'sleep' | 'busy';

export interface WatchWorkerData {
  mapPath: string;
  mode: WatchMode;
  /** Sleep between two lookups (sleep mode), µs. */
  pollUs: number;
  /** Bound on one watch: the worker gives up after it. */
  maxWaitMs: number;
  ctl: SharedArrayBuffer;
  stamps: SharedArrayBuffer;
  key: SharedArrayBuffer;
}

export interface Sighting {
  /** CLOCK_MONOTONIC ns: the entry was not there yet at this moment (0: no lookup missed it). */
  notBeforeNs: bigint;
  /** CLOCK_MONOTONIC ns: the entry was there at this moment. */
  byNs: bigint;
  /** Start of the first lookup of this watch. */
  firstLookupNs: bigint;
  lookups: number;
}

export class MapWatch {
  readonly #worker: Worker;
  readonly #ctl = new Int32Array(new SharedArrayBuffer(4 * 4));
  readonly #stamps = new BigInt64Array(new SharedArrayBuffer(8 * 4));
  readonly #key = new Uint8Array(new SharedArrayBuffer(KEY_MAX));
  readonly #maxWaitMs: number;
  readonly #exited: Promise<unknown>;
  #pending: ((outcome: number) => void) | undefined;
  #failure: Error | undefined;

  constructor(o: { mapPath: string; mode: WatchMode; pollUs: number; maxWaitMs: number }) {
    this.#maxWaitMs = o.maxWaitMs;
    const data: WatchWorkerData = { ...o, ctl: this.#ctl.buffer as SharedArrayBuffer, stamps: this.#stamps.buffer as SharedArrayBuffer, key: this.#key.buffer as SharedArrayBuffer };
    this.#worker = new Worker(path.join(__dirname, 'map-watch-worker.js'), { workerData: data });
    this.#exited = new Promise((r) => this.#worker.once('exit', r));
    this.#worker.on('message', (outcome: number) => this.#pending?.(outcome));
    this.#worker.on('error', (err) => {
      this.#failure = err;
      this.#pending?.(TIMEOUT);
    });
  }

  /**
   * Starts watching for `key` (call it right before the action that should make the entry), and
   * resolves once the worker saw it; throws after maxWaitMs without it.
   */
  watch(key: Buffer): Promise<Sighting> {
    if (key.length > KEY_MAX) throw new RangeError(`key of ${key.length} bytes: at most ${KEY_MAX}`);
    if (this.#pending) throw new Error('one watch at a time');
    this.#key.set(key);
    this.#ctl[SLOT.keyLen] = key.length;
    const done = new Promise<number>((resolve) => (this.#pending = resolve));
    Atomics.store(this.#ctl, SLOT.state, WATCH);
    Atomics.notify(this.#ctl, SLOT.state);
    return done.then((outcome) => {
      this.#pending = undefined;
      Atomics.store(this.#ctl, SLOT.state, IDLE);
      if (this.#failure) throw this.#failure;
      if (outcome !== FOUND) throw new Error(`key ${key.toString('hex')} not in the map after ${this.#maxWaitMs} ms`);
      return {
        notBeforeNs: this.#stamps[STAMP.lastMissStart]!,
        byNs: this.#stamps[STAMP.hitEnd]!,
        firstLookupNs: this.#stamps[STAMP.firstStart]!,
        lookups: this.#ctl[SLOT.lookups]!,
      };
    });
  }

  async close(): Promise<void> {
    Atomics.store(this.#ctl, SLOT.state, QUIT);
    Atomics.notify(this.#ctl, SLOT.state);
    const t = setTimeout(() => void this.#worker.terminate(), 2000);
    await this.#exited;
    clearTimeout(t);
  }
}
