// The sender of `bae inject` and `bae reconstruct`: frames leave a port byte-exact through
// BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, running bpf/inject.bpf.c (XDP_TX, which the
// kernel turns into a transmit on the ingress device of the run). Bounded in count and rate:
// every frame has a due time `start + frames sent before it / rate` (or a gap drawn from a
// profile), and frames that repeat go out in batches (`repeat`) no larger than the rate allows
// per batch window.
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UnsupportedKernelError, UsageError } from '../errors';
import { loadCollection, native, type Collection, type Program } from '../datapath';
import { moduleLogger } from '../log';
import type { PacketKind, PacketRecord } from './packet-record';

const log = moduleLogger('reconstruct/inject-send');

export const INJECT_OBJECT = process.env.BAE_INJECT_OBJECT ?? path.resolve(__dirname, '../../../build/bpf/inject.o');
const INJECT_PROGRAM = 'inject_tx';

/** Hard bounds of one send, whatever is asked: frames, frames per second, and seconds. */
export const INJECT_MAX_COUNT = 10_000_000;
export const INJECT_MAX_RATE = 10_000_000;
export const INJECT_MAX_SECONDS = 3600;
/** The kernel takes no frame under an Ethernet header, and none over a page for XDP. */
export const INJECT_MIN_FRAME = 14;
export const INJECT_MAX_FRAME = 3500;
/** Repeated frames go out in batches of at most rate x this window: the burst a rate allows. */
const BATCH_WINDOW_NS = 10_000_000n;

/**
 * Resolves when process.hrtime.bigint() has reached `dueNs`, never before (or at once on an abort
 * of `signal`). A timer counts from the event loop's cached clock, which lags when the loop was
 * busy, so it can fire before the time asked for: wait again until the clock says so.
 */
export async function sleepUntilNs(dueNs: bigint, signal?: AbortSignal): Promise<void> {
  for (let wait = dueNs - process.hrtime.bigint(); wait > 0n && !signal?.aborted; wait = dueNs - process.hrtime.bigint()) {
    await sleep(Number((wait + 999_999n) / 1_000_000n), undefined, signal ? { signal } : {}).catch(() => undefined);
  }
}

export interface OutFrame {
  data: Buffer;
  /** Times this frame goes out back to back (default 1). */
  repeat?: number;
  kind: PacketKind;
  policy: string | null;
  action: string | null;
  reason: string | null;
}

export interface SendOptions {
  /** The port the frames leave by. */
  ifindex: number;
  /** Frames per second, at most INJECT_MAX_RATE. */
  rate: number;
  /** Instead of 1/rate, the gap before each distinct frame (ns), e.g. drawn from a profile; the
   *  rate stays the upper bound. */
  gapNs?: () => number;
  /** Each frame (or batch of a repeated frame) as it went out. */
  onSent?: (record: PacketRecord, repeat: number) => void;
  signal?: AbortSignal;
}

export interface SendReport {
  ifindex: number;
  /** Frames on the wire, repeats counted. */
  frames: number;
  /** BPF_PROG_TEST_RUN calls made. */
  calls: number;
  elapsedNs: bigint;
}

/** Refuses a kernel without live frames, with the feature and the kernel named. `probe` gives
 *  0 or the errno of one BPF_PROG_TEST_RUN with the flag (the datapath's probe). */
export function requireLiveFrames(probe: () => number = () => native.probeXdpLiveFrames()): void {
  const err = probe();
  if (err !== 0) {
    throw new UnsupportedKernelError(
      `this kernel (Linux ${os.release()}) does not take BPF_F_TEST_XDP_LIVE_FRAMES ` +
        `(errno ${err}; Linux 5.18 or newer has it): bae cannot inject frames here`,
    );
  }
}

/** What sendFrames needs of a sender: the Injector, or a stand-in in tests. */
export interface FrameSender {
  sendNow(frame: Buffer, ifindex: number, repeat?: number): void;
  sendAsync(frame: Buffer, ifindex: number, repeat?: number): Promise<void>;
}

/** The loaded sender program; close() it when done. */
export class Injector implements FrameSender {
  readonly #coll: Collection;
  readonly #prog: Program;

  constructor(objectPath: string = INJECT_OBJECT) {
    requireLiveFrames();
    this.#coll = loadCollection(objectPath);
    this.#prog = this.#coll.program(INJECT_PROGRAM);
  }

  /** Puts `frame` on the wire of `ifindex`, `repeat` times back to back. */
  sendNow(frame: Buffer, ifindex: number, repeat = 1): void {
    checkFrame(frame);
    this.#prog.test(frame, { repeat, liveFrames: true, ctxIn: { ingressIfindex: ifindex } });
  }

  /** Same, on a libuv worker: for large batches. */
  async sendAsync(frame: Buffer, ifindex: number, repeat = 1): Promise<void> {
    checkFrame(frame);
    await this.#prog.testAsync(frame, { repeat, liveFrames: true, ctxIn: { ingressIfindex: ifindex } });
  }

  close(): void {
    this.#coll.close();
  }
}

export function checkFrame(frame: Buffer): void {
  if (frame.length < INJECT_MIN_FRAME || frame.length > INJECT_MAX_FRAME) {
    throw new UsageError(`a frame of ${frame.length} bytes cannot be sent: ${INJECT_MIN_FRAME} to ${INJECT_MAX_FRAME} bytes`);
  }
}

export function checkBounds(count: number, rate: number): void {
  if (!Number.isInteger(count) || count < 1 || count > INJECT_MAX_COUNT) throw new UsageError(`count must be 1 to ${INJECT_MAX_COUNT}, got ${count}`);
  if (!(rate > 0) || rate > INJECT_MAX_RATE) throw new UsageError(`rate must be above 0 and at most ${INJECT_MAX_RATE} frames/s, got ${rate}`);
  if (count / rate > INJECT_MAX_SECONDS) {
    throw new UsageError(`${count} frames at ${rate}/s take ${Math.ceil(count / rate)} s: more than the ${INJECT_MAX_SECONDS} s one send may take`);
  }
}

const wallNs = (): bigint => BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);

/**
 * Sends `frames` in order out of `opts.ifindex`, never faster than `opts.rate` frames/s on
 * average (a repeated frame goes out in batches of at most rate x 10 ms). Stops early, with what
 * was sent, when `signal` aborts.
 */
export async function sendFrames(injector: FrameSender, frames: Iterable<OutFrame>, opts: SendOptions): Promise<SendReport> {
  const total = [...frames];
  const count = total.reduce((n, f) => n + (f.repeat ?? 1), 0);
  checkBounds(count, opts.rate);
  const perFrameNs = 1e9 / opts.rate;
  const maxBatch = Math.max(1, Math.floor((opts.rate * Number(BATCH_WINDOW_NS)) / 1e9));
  const start = process.hrtime.bigint();
  // The schedule starts when the first batch is out: the first call pays the kernel's set-up,
  // and a schedule from before it would let the frames after it catch up, faster than the rate.
  let scheduleStart = start;
  let sent = 0;
  let calls = 0;
  let dueNs = 0; // since scheduleStart
  for (const f of total) {
    let left = f.repeat ?? 1;
    if (!Number.isInteger(left) || left < 1) throw new UsageError(`repeat must be a whole number from 1, got ${left}`);
    // A drawn gap spaces distinct frames; the rate is the floor of every gap.
    if (opts.gapNs && sent > 0) dueNs += Math.max(0, opts.gapNs() - perFrameNs);
    while (left > 0) {
      const stopped = () => ({ ifindex: opts.ifindex, frames: sent, calls, elapsedNs: process.hrtime.bigint() - start });
      if (opts.signal?.aborted) return stopped();
      await sleepUntilNs(scheduleStart + BigInt(Math.round(dueNs)));
      // An abort while waiting sends nothing more.
      if (opts.signal?.aborted) return stopped();
      const batch = Math.min(left, maxBatch);
      if (batch > 1) await injector.sendAsync(f.data, opts.ifindex, batch);
      else injector.sendNow(f.data, opts.ifindex);
      if (calls === 0) scheduleStart = process.hrtime.bigint();
      calls++;
      sent += batch;
      left -= batch;
      dueNs += batch * perFrameNs;
      opts.onSent?.(
        { tsNs: wallNs(), ifindex: opts.ifindex, kind: f.kind, policy: f.policy, action: f.action, reason: f.reason, origLen: f.data.length, data: f.data },
        batch,
      );
    }
  }
  const elapsedNs = process.hrtime.bigint() - start;
  log.debug({ ifindex: opts.ifindex, frames: sent, calls, elapsedNs: Number(elapsedNs) }, 'frames sent');
  return { ifindex: opts.ifindex, frames: sent, calls, elapsedNs };
}
