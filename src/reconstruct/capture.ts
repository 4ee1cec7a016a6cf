// The reader of the kernel's capture ring (bpf/capture.h): each record becomes a PacketRecord,
// 'dropped' when the capturing policy removed the frame (drop, block, loss, rate) and 'captured'
// when it only matched, with the policy's name resolved from its stable id through the applied
// set. The ring has one reader: the agent while it stores (src/agent/store-bridge.ts), else
// `bae capture` (or `bae record`).
import { CAPTURE, CAPTURE_MAPS, decodeCaptureRecord, ENUMS, openLoadedMap, RingBuffer, type BpfMap, type CaptureRecord } from '../datapath';
import { ACTIONS, storedNames } from '../policy';
import type { PacketRecord } from './packet-record';

/** enum policy_action bit -> the action's name in a policy file ('loss', 'drop', ...). */
const ACTION_NAMES = new Map<number, string>(ACTIONS.map((a) => [a.bit, a.kind]));
const A = ENUMS.policy_action;

/** Why a frame was removed, by the action that removed it. */
const REASONS: Readonly<Record<number, string>> = {
  [A.POLICY_ACT_DROP]: 'dropped by policy',
  [A.POLICY_ACT_BLOCK]: 'source blocked by policy',
  [A.POLICY_ACT_LOSS]: 'seeded loss',
  [A.POLICY_ACT_RATE]: 'over the rate limit',
};

/** What turns a record's kernel time into wall-clock time: the kernel's clock is CLOCK_MONOTONIC,
 * which is process.hrtime's on Linux. */
export interface CaptureClock {
  /** Wall-clock ns since the epoch minus monotonic ns, taken once. */
  offsetNs: bigint;
}

export function captureClockNow(): CaptureClock {
  return { offsetNs: BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint() };
}

/** One capture record as a PacketRecord. `names`: stable id -> policy name (the applied set). */
export function packetRecordOf(rec: CaptureRecord, names: ReadonlyMap<number, string>, clock: CaptureClock): PacketRecord {
  const dropped = (rec.flags & CAPTURE.recDropped) !== 0;
  return {
    tsNs: rec.timeNs + clock.offsetNs,
    ifindex: rec.ifindex,
    kind: dropped ? 'dropped' : 'captured',
    policy: names.get(rec.policyId) ?? `#${rec.policyId}`,
    action: ACTION_NAMES.get(rec.action) ?? `action-${rec.action}`,
    reason: dropped ? (REASONS[rec.action] ?? null) : null,
    origLen: rec.origLen,
    data: rec.data,
  };
}

export type PacketSink = (record: PacketRecord) => void;

export interface CaptureReaderOptions {
  /** Stable id -> policy name; default: the set applied at the pin directory, read again when
   * a record names an id it does not know (a policy applied after the reader started). */
  names?: () => ReadonlyMap<number, string>;
  clock?: CaptureClock;
}

/**
 * Reads the capture ring of the bae loaded at `pinDir` (or the given map) and hands each record
 * to `sink`, in ring order, on the main thread. consume() takes what is waiting now; records
 * that arrive later are delivered as they come until close().
 */
export class CaptureReader {
  readonly #map: BpfMap;
  readonly #ownsMap: boolean;
  readonly #ring: RingBuffer;
  readonly #names: () => ReadonlyMap<number, string>;
  #known: ReadonlyMap<number, string>;
  readonly #clock: CaptureClock;
  #records = 0;

  constructor(source: { pinDir: string } | { map: BpfMap }, sink: PacketSink, opts: CaptureReaderOptions = {}) {
    const pinDir = 'pinDir' in source ? source.pinDir : undefined;
    this.#names = opts.names ?? (() => (pinDir !== undefined ? storedNames(pinDir) : new Map()));
    this.#known = this.#names();
    this.#clock = opts.clock ?? captureClockNow();
    this.#ownsMap = 'pinDir' in source;
    this.#map = 'map' in source ? source.map : openLoadedMap(CAPTURE_MAPS.ring, source.pinDir, 'bae capture');
    try {
      this.#ring = new RingBuffer(this.#map, (buf) => {
        const rec = decodeCaptureRecord(buf);
        if (!this.#known.has(rec.policyId)) this.#known = this.#names();
        this.#records++;
        sink(packetRecordOf(rec, this.#known, this.#clock));
      });
    } catch (err) {
      if (this.#ownsMap) this.#map.close();
      throw err;
    }
  }

  /** Records delivered so far. */
  get records(): number {
    return this.#records;
  }

  /** Delivers what is in the ring now, synchronously; returns how many. */
  consume(): number {
    return this.#ring.consume();
  }

  unref(): this {
    this.#ring.unref();
    return this;
  }

  /** Stops reading; safe twice. */
  close(): void {
    this.#ring.close();
    if (this.#ownsMap && this.#map.fd >= 0) this.#map.close();
  }
}
