// The worker thread of map-watch.ts: waits (futex, no CPU) until the main thread names a key, then
// looks it up in the pinned map, sleeping `pollUs` between lookups (Atomics.wait with a timeout:
// the thread yields its core; the kernel's timer slack, 50 µs for an ordinary thread, rounds the
// sleep up), or without sleeping in 'busy' mode. Each lookup is bracketed by CLOCK_MONOTONIC
// stamps (process.hrtime, the clock every process on the host shares), so the moment the entry
// appeared lies between the start of the last lookup that missed it and the end of the one that
// found it. Layout of the shared memory: map-watch.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { openPinnedMap } from '../../src/datapath';
import { QUIT, SLOT, STAMP, WATCH, FOUND, TIMEOUT, type WatchWorkerData } from './map-watch';

const data = workerData as WatchWorkerData;
const ctl = new Int32Array(data.ctl);
const stamps = new BigInt64Array(data.stamps);
const keyBytes = new Uint8Array(data.key);
const map = openPinnedMap(data.mapPath);
const sleepMs = data.mode === 'busy' ? 0 : data.pollUs / 1000;
const now = () => process.hrtime.bigint();

try {
  for (;;) {
    // Asleep until the main thread sets WATCH or QUIT (FOUND/TIMEOUT stay until it has read them).
    let state = Atomics.load(ctl, SLOT.state);
    while (state !== WATCH && state !== QUIT) {
      Atomics.wait(ctl, SLOT.state, state);
      state = Atomics.load(ctl, SLOT.state);
    }
    if (state === QUIT) break;
    const key = Buffer.from(keyBytes.subarray(0, ctl[SLOT.keyLen]));
    const deadline = now() + BigInt(data.maxWaitMs) * 1_000_000n;
    let lastMissStart = 0n;
    let lookups = 0;
    let outcome = TIMEOUT;
    for (;;) {
      const start = now();
      const hit = map.lookup(key) !== undefined;
      const end = now();
      if (lookups++ === 0) stamps[STAMP.firstStart] = start;
      if (hit) {
        stamps[STAMP.lastMissStart] = lastMissStart;
        stamps[STAMP.hitEnd] = end;
        outcome = FOUND;
        break;
      }
      if (end > deadline) break;
      lastMissStart = start;
      if (sleepMs > 0) Atomics.wait(ctl, SLOT.state, WATCH, sleepMs);
      if (Atomics.load(ctl, SLOT.state) !== WATCH) break; // the main thread gave up
    }
    ctl[SLOT.lookups] = lookups;
    Atomics.store(ctl, SLOT.state, outcome);
    parentPort!.postMessage(outcome);
  }
} finally {
  map.close();
}
