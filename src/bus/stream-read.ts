// Reading a JetStream stream with an ordered consumer (ephemeral, in stream order, no acks; the
// client recreates it from where it was after a reconnect or a lost message): from a start time
// or the stream's first message, or only the last message of each subject. Without `follow` it
// stops once it has caught up (the consumer's pending count reaches 0); with it, it goes on
// until the signal aborts.
import { DeliverPolicy, type JetStreamClient, type JsMsg } from 'nats';
import { decodePayload } from './message';

export interface StoredEvent {
  subject: string;
  /** The stream's sequence number. */
  seq: number;
  /** When the stream took it (ISO time). */
  time: string;
  value: unknown;
}

export interface StreamReadOptions {
  /** Subjects to read (wildcards allowed). */
  filter: string;
  /** Start at the first message stored at or after this time (default: the stream's first). */
  since?: Date;
  /** Only the newest message of each subject (heartbeats). */
  lastPerSubject?: boolean;
  /** Keep reading new messages until `signal` aborts. */
  follow?: boolean;
  signal?: AbortSignal;
  /** Stop after this many (default: no bound). */
  max?: number;
}

export function storedEventOf(m: JsMsg): StoredEvent {
  let value: unknown;
  try {
    value = decodePayload(m.subject, m.data);
  } catch (err) {
    // A message someone else put on a bae subject: shown, not fatal.
    value = { error: (err as Error).message };
  }
  return { subject: m.subject, seq: m.seq, time: new Date(Number(BigInt(m.info.timestampNanos) / 1_000_000n)).toISOString(), value };
}

/** Calls `onEvent` for each message of `stream` that `opts` selects, in stream order; resolves with the count. */
/** A read without follow ends after this long without a message. */
export const READ_IDLE_MS = 5000;

export async function readStream(js: JetStreamClient, stream: string, opts: StreamReadOptions, onEvent: (e: StoredEvent) => void): Promise<number> {
  const consumer = await js.consumers.get(stream, {
    filterSubjects: opts.filter,
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
  const iter = await consumer.consume({ max_messages: 1000 });
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
      onEvent(storedEventOf(m));
      n++;
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
