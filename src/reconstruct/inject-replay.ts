// `bae reconstruct`'s sender: frames that a policy dropped (stored PacketRecords of kind
// 'dropped') go out again byte-exact, now or after a delay, rate-bounded, so that "lost" packets
// arrive late. Which records is the store's question (the caller passes them); where each goes
// is the caller's too (`egress`: in inline mode the peer of the port it arrived on).
import { UsageError } from '../errors';
import { INJECT_MAX_FRAME, INJECT_MIN_FRAME, Injector, sendFrames, sleepUntilNs, type FrameSender, type OutFrame, type SendReport } from './inject-send';
import type { PacketRecord } from './packet-record';

/** The longest --after: a day. */
export const MAX_AFTER_MS = 86_400_000;
export const DEFAULT_RECONSTRUCT_RATE = 10_000;

export interface ResendOptions {
  /** The port a record leaves by (ifindex), e.g. the peer of `record.ifindex` in inline mode. */
  egress: (record: PacketRecord) => number;
  /** Wait this long before the first frame (ms). */
  afterMs?: number;
  /** Frames per second (default 10,000). */
  rate?: number;
  signal?: AbortSignal;
  /** The sender (default: a new Injector, closed at the end); a stand-in in tests. */
  injector?: FrameSender;
}

export interface ResendResult {
  /** What went out, in order: kind 'reconstructed', action 'reconstruct', the drop's policy and reason. */
  sent: PacketRecord[];
  /** Records not sent, with why (not a drop, or not stored whole). */
  skipped: { index: number; why: string }[];
  reports: SendReport[];
}

/** Why a record cannot be re-sent byte-exact, or undefined when it can. */
export function unsendable(r: PacketRecord): string | undefined {
  if (r.kind !== 'dropped') return `a record of kind '${r.kind}', not 'dropped'`;
  if (r.data.length !== r.origLen) return `only ${r.data.length} of its ${r.origLen} bytes were captured (snaplen): it cannot go out byte-exact`;
  if (r.data.length < INJECT_MIN_FRAME) return `${r.data.length} bytes: shorter than an Ethernet header`;
  if (r.data.length > INJECT_MAX_FRAME) return `${r.data.length} bytes: more than the ${INJECT_MAX_FRAME} a live frame can carry`;
  return undefined;
}

/**
 * Re-sends the dropped frames among `records` in their order, each out of `egress(record)`,
 * after `afterMs`, at most `rate` frames/s over all ports.
 */
export async function resendDropped(records: readonly PacketRecord[], opts: ResendOptions): Promise<ResendResult> {
  const calledNs = process.hrtime.bigint();
  const afterMs = opts.afterMs ?? 0;
  if (!Number.isFinite(afterMs) || afterMs < 0 || afterMs > MAX_AFTER_MS) throw new UsageError(`after must be 0 to ${MAX_AFTER_MS} ms, got ${afterMs}`);
  const skipped: ResendResult['skipped'] = [];
  const runs: { ifindex: number; frames: OutFrame[] }[] = [];
  records.forEach((r, index) => {
    const why = unsendable(r);
    if (why) {
      skipped.push({ index, why });
      return;
    }
    const ifindex = opts.egress(r);
    const frame: OutFrame = { data: r.data, kind: 'reconstructed', policy: r.policy, action: 'reconstruct', reason: r.reason };
    // Consecutive records for one port go out as one run, so that the order holds across ports.
    const last = runs[runs.length - 1];
    if (last && last.ifindex === ifindex) last.frames.push(frame);
    else runs.push({ ifindex, frames: [frame] });
  });
  const sent: PacketRecord[] = [];
  const reports: SendReport[] = [];
  if (runs.length === 0) return { sent, skipped, reports };
  const own = opts.injector ? undefined : new Injector();
  const injector = opts.injector ?? own!;
  try {
    // --after counts from this call, and never runs short (see sleepUntilNs).
    if (afterMs > 0) await sleepUntilNs(calledNs + BigInt(Math.round(afterMs * 1e6)), opts.signal);
    for (const run of runs) {
      if (opts.signal?.aborted) break;
      reports.push(
        await sendFrames(injector, run.frames, {
          ifindex: run.ifindex,
          rate: opts.rate ?? DEFAULT_RECONSTRUCT_RATE,
          signal: opts.signal,
          onSent: (record) => sent.push(record),
        }),
      );
    }
  } finally {
    own?.close();
  }
  return { sent, skipped, reports };
}
