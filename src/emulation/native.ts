// The delay line's part of the native addon (addon/delay_line/js.cc), typed by hand. Options and
// arguments are checked by src/emulation/delay-line.ts before they get here.
import { native } from '../datapath';

export interface NativeDelayLinePort {
  ifname: string;
  /** index of the port its frames leave on */
  egress: number;
  /** XSKMAP slot of each class's socket on this port */
  keys: number[];
}

/** The delay line's counters, as the addon returns them (DelayLineStats in delay-line.ts). */
export interface NativeDelayLineStats {
  /** frames taken from the RX rings */
  received: number;
  /** frames handed to a TX ring (duplicates included) */
  transmitted: number;
  /** frames that found maxInFlight frames held (dropped or passed by the overflow rule) */
  overflow: number;
  duplicated: number;
  /** duplicates not made because no UMEM frame was free */
  duplicateSkipped: number;
  reordered: number;
  /** failed transmit kicks (egress port down or gone) */
  txErrors: number;
  /** frames dropped because their egress port was down and its TX ring full */
  txDropped: number;
  /** frames dropped because they were more than maxLateMs past due (the line was over capacity) */
  lateDropped: number;
  flushedAtClose: number;
  droppedAtClose: number;
  inFlight: number;
  latenessMaxNs: number;
  /** whether the thread runs with real-time priority */
  realtime: boolean;
  /** the CPU the thread is pinned to, -1 for any */
  cpu: number;
  /** descriptors one copy-mode sendto() may transmit (32 before Linux 6.17) */
  txBudget: number;
  /** whether batches leave as XDP frames through the `transmit` program (false without one, or after the kernel refused it) */
  live: boolean;
  /** BPF_PROG_RUN calls of the live path, and the frames they sent */
  liveCalls: number;
  liveTransmitted: number;
  /** errno of the last refused live call, 0 if none */
  liveErrno: number;
  classes: { received: number; transmitted: number; overflow: number }[];
  /** [lowNs, highNs, count] of each non-empty bucket */
  lateness: [number, number, number][];
  /** the kernel's XDP_STATISTICS summed over the sockets */
  kernel: {
    rxDropped: number;
    rxInvalidDescs: number;
    txInvalidDescs: number;
    rxRingFull: number;
    fillRingEmpty: number;
    txRingEmpty: number;
  };
}

export interface NativeDelayLine {
  start(): void;
  setParams(
    classId: number,
    delayNs: number,
    jitterNs: number,
    distribution: number,
    delayRho: number,
    duplicate: number,
    duplicateRho: number,
    reorder: number,
    reorderRho: number,
    reorderGap: number,
  ): void;
  setSeed(seed: bigint): void;
  stats(): NativeDelayLineStats;
  recordDelays(capacity: number): void;
  takeDelays(): { classes: Uint8Array; delaysNs: Float64Array };
  /**
   * Stops the thread without waiting for it: the thread flushes, releases the sockets and the
   * UMEM, and the promise resolves after. The same promise on every call.
   */
  close(): Promise<{ flushed: number; dropped: number }>;
  /** true from the first close() on */
  readonly closed: boolean;
}

/** The XDP transmitter of bpf/delay_tx.h: the attached program that feeds the line and its two arrays. */
export interface NativeDelayLineTransmit {
  programFd: number;
  slotsFd: number;
  controlFd: number;
}

export interface NativeDelayLineOptions {
  xskMapFd: number;
  ports: NativeDelayLinePort[];
  /** 1..8 */
  classes: number;
  frames: number;
  /** 2048 or 4096 */
  frameSize: number;
  /** a power of two */
  ringSize: number;
  maxInFlight: number;
  overflowPass: boolean;
  spinNs: number;
  realtime: boolean;
  /** > 0 */
  maxLateNs: number;
  /** the CPU to pin the thread to; absent: any */
  cpu?: number;
  /** absent: the sockets transmit alone */
  transmit?: NativeDelayLineTransmit;
}

export interface NativeDelayLineCtor {
  new (options: NativeDelayLineOptions): NativeDelayLine;
  ifindex(name: string): number;
}

export const NativeDelayLine = (native as unknown as { DelayLine: NativeDelayLineCtor }).DelayLine;
