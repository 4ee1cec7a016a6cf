// The delay line's part of the native addon (addon/delay_line.cc), typed by hand. Arguments are
// checked by src/emulation/delay-line.ts before they get here.
import { native } from '../datapath/native';

export interface NativeDelayLinePort {
  ifname: string;
  /** index of the port its frames leave on */
  egress: number;
  /** XSKMAP slot of each class's socket on this port */
  keys: number[];
}

export interface NativeDelayLineStats {
  received: number;
  transmitted: number;
  overflow: number;
  duplicated: number;
  duplicateSkipped: number;
  reordered: number;
  txErrors: number;
  txDropped: number;
  lateDropped: number;
  flushedAtClose: number;
  droppedAtClose: number;
  inFlight: number;
  latenessMaxNs: number;
  realtime: boolean;
  /** the CPU the thread is pinned to, -1 for any */
  cpu: number;
  /** descriptors one copy-mode sendto() may transmit (32 before Linux 6.17) */
  txBudget: number;
  live: boolean;
  liveCalls: number;
  liveTransmitted: number;
  liveErrno: number;
  classes: { received: number; transmitted: number; overflow: number }[];
  /** [lowNs, highNs, count] of each non-empty bucket */
  lateness: [number, number, number][];
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
  close(): { flushed: number; dropped: number };
  readonly closed: boolean;
}

export interface NativeDelayLineCtor {
  new (
    xskMapFd: number,
    ports: NativeDelayLinePort[],
    classes: number,
    frames: number,
    frameSize: number,
    ringSize: number,
    maxInFlight: number,
    overflowPass: boolean,
    spinNs: number,
    realtime: boolean,
    maxLateNs: number,
    cpu: number,
    liveProgramFd: number,
    liveSlotsFd: number,
    liveCtlFd: number,
  ): NativeDelayLine;
  ifindex(name: string): number;
}

export const NativeDelayLine = (native as unknown as { DelayLine: NativeDelayLineCtor }).DelayLine;
