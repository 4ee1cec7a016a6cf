// Waiting for a result without a fixed sleep: a sleep long enough on a calm machine is too short
// on a loaded one (CI runs beside the kernel matrix's QEMU guests), so tests poll until what they
// wait for holds, bounded in time, and fail naming it.
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `ok` every `everyMs` until it holds (true) or `ms` have passed (false): for a test whose
 * own assertions afterwards say what was missing. */
export async function poll(ok: () => boolean | Promise<boolean>, ms = 10_000, everyMs = 50): Promise<boolean> {
  for (const end = Date.now() + ms; !(await ok()); ) {
    if (Date.now() > end) return false;
    await pause(everyMs);
  }
  return true;
}

/** Polls `ok` every `everyMs` until it holds; fails naming `what` after `ms`. */
export async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000, everyMs = 50): Promise<void> {
  if (!(await poll(ok, ms, everyMs))) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
}

/**
 * Reads `read()` until it has `ready` and then gives the same value (deep-equal) for `quietMs`:
 * what a test counts after traffic is counted once the traffic is over, whatever the machine's
 * load made of its timing. Fails naming `what` (and the last value) after `ms`.
 */
export async function settled<T>(what: string, read: () => T | Promise<T>, opts: { ready?: (v: T) => boolean; quietMs?: number; ms?: number; everyMs?: number } = {}): Promise<T> {
  const { ready = () => true, quietMs = 200, ms = 10_000, everyMs = 50 } = opts;
  const end = Date.now() + ms;
  let last = await read();
  let since = Date.now();
  for (;;) {
    if (ready(last) && Date.now() - since >= quietMs) return last;
    if (Date.now() > end) assert.fail(`timed out after ${ms} ms waiting for ${what} to settle; last: ${JSON.stringify(last, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
    await pause(everyMs);
    const now = await read();
    if (!isDeepStrictEqual(now, last)) {
      last = now;
      since = Date.now();
    }
  }
}
