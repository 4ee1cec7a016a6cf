// Reading a JetStream stream with an ordered consumer (ephemeral, in stream order, no acks; the
// client recreates it from where it was after a reconnect or a lost message): from a start time
// or the stream's first message, or only the last message of each subject. Without `follow` it
// stops once it has caught up (the consumer's pending count reaches 0); with it, it goes on
// until the signal aborts. A message of the event stream holds a batch of events
// (event-batch.ts): each event is handed over on its own, with the subject it has live.
import { DeliverPolicy, type JetStreamClient, type JsMsg } from 'nats';
import { unpackStoredMessage } from './event-batch';
import { subjectMatches } from './subjects';

export interface StoredEvent {
  /** The event's subject (bae.events.<node>.<kind>; a heartbeat's own). */
  subject: string;
  /** The stream's sequence number of the message that holds it. */
  seq: number;
  /** Its place in that message (0 for a message of one). */
  index: number;
  /** When the stream took it (ISO time). */
  time: string;
  value: unknown;
}

export interface StreamReadOptions {
  /** Subjects of the events to read (wildcards allowed). */
  filter: string;
  /** The stream's subjects that hold them (default `filter`; null: the whole stream). */
  streamFilter?: string | null;
  /** Start at the first message stored at or after this time (default: the stream's first). */
  since?: Date;
  /** Only the newest message of each subject (heartbeats). */
  lastPerSubject?: boolean;
  /** Keep reading new messages until `signal` aborts. */
  follow?: boolean;
  signal?: AbortSignal;
  /** Stop after this many events (default: no bound). */
  max?: number;
}

/** The events of one stream message (a batch: each of its events). */
export function storedEventsOf(m: JsMsg): StoredEvent[] {
  const time = new Date(Number(BigInt(m.info.timestampNanos) / 1_000_000n)).toISOString();
  try {
    return unpackStoredMessage(m.subject, m.data).map((e, index) => ({ subject: e.subject, seq: m.seq, index, time, value: e.value }));
  } catch (err) {
    // A message someone else put on a bae subject, or of a format this bae does not read: shown, not fatal.
    return [{ subject: m.subject, seq: m.seq, index: 0, time, value: { error: (err as Error).message } }];
  }
}

/** Calls `onEvent` for each message of `stream` that `opts` selects, in stream order; resolves with the count. */
/** A read without follow ends after this long without a message. */
export const READ_IDLE_MS = 5000;

export async function readStream(js: JetStreamClient, stream: string, opts: StreamReadOptions, onEvent: (e: StoredEvent) => void): Promise<number> {
  const streamFilter = opts.streamFilter === undefined ? opts.filter : opts.streamFilter;
  const consumer = await js.consumers.get(stream, {
    ...(streamFilter !== null ? { filterSubjects: streamFilter } : {}),
    ...(opts.lastPerSubject ? { deliver_policy: DeliverPolicy.LastPerSubject } : opts.since ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: opts.since.toISOString() } : {}),
  });
  const max = opts.max ?? Infinity;
  if (opts.signal?.aborted || max <= 0) return 0;
  // What is there now: nothing to wait for when it is empty and we do not follow.
  const pendingAtStart = (await consumer.info()).num_pending;
  if (pendingAtStart === 0 && !opts.follow) {
    await consumer.delete().catch(() => {});
    return 0;
  }
  // A message may hold a batch of up to 128 KiB: at most 64 of them buffered (8 MiB).
  const iter = await consumer.consume({ max_messages: 64 });
  const stop = () => iter.stop();
  opts.signal?.addEventListener('abort', stop, { once: true });
  // Without --follow a read ends when it has caught up; should the server stop delivering before
  // the last message says so (a busy or restarting server), it ends after READ_IDLE_MS of silence
  // instead of waiting for ever.
  let idle: NodeJS.Timeout | undefined;
  const arm = () => {
    if (opts.follow) return;
    clearTimeout(idle);
    idle = setTimeout(stop, READ_IDLE_MS);
  };
  arm();
  let n = 0;
  try {
    for await (const m of iter) {
      arm();
      for (const e of storedEventsOf(m)) {
        if (n >= max) break;
        if (!subjectMatches(opts.filter, e.subject)) continue;
        onEvent(e);
        n++;
      }
      if (n >= max || (!opts.follow && m.info.pending === 0)) break;
    }
  } finally {
    clearTimeout(idle);
    opts.signal?.removeEventListener('abort', stop);
    iter.stop();
    await consumer.delete().catch(() => {});
  }
  return n;
}
