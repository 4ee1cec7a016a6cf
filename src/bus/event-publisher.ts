// Events into the JetStream stream, acknowledged, at the rate the kernel's ring delivers them.
// One acknowledged publish per event tops out below the kernel's rate (event-batch.ts), so events
// go in batches: a batch is cut when MAX_BATCH_EVENTS or MAX_BATCH_BYTES are queued, when nothing
// awaits an acknowledgement (a lone event goes out at once, at the end of the event loop's turn,
// so that a burst read from the ring in one go is one batch), or LINGER_MS after its first event
// while earlier batches await theirs. Each batch is a plain publish with a reply subject under one
// inbox of this connection (`<inbox>.<n>`) and its message id header; one subscription takes every
// acknowledgement, so batches are pipelined (up to MAX_ACKS_IN_FLIGHT events awaiting theirs);
// one sweep a second retries those that got none in time. A batch, once cut, never changes: it is
// sent again with the same bytes and message id, which the stream de-duplicates.
import { createInbox, headers, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { moduleLogger } from '../log';
import { MAX_BATCH_BYTES, MAX_BATCH_EVENTS, encodeEventBatch, entryBytes, eventBatchSubject } from './event-batch';
import { EventQueue, type QueuedEvent } from './event-queue';

const log = moduleLogger('bus/events');

/** Events sent and not yet acknowledged, at most. */
export const MAX_ACKS_IN_FLIGHT = 10_000;
/** How long a batch waits for its acknowledgement before it is sent again. */
export const ACK_TIMEOUT_MS = 5000;
/** How long a batch that is not full waits for more events while earlier ones await their acknowledgement. */
export const LINGER_MS = 2;
/** Pause after a refusal (no stream listening, a cluster electing), before the next send. */
const RETRY_PAUSE_MS = 100;

/** A batch as cut: its subject, payload, message id, event count and oldest event's time. */
interface Batch {
  subject: string;
  data: Uint8Array;
  id: string;
  count: number;
  at: number;
}

interface InFlight {
  b: Batch;
  sentAt: number;
}

export class EventPublisher {
  readonly queue: EventQueue;
  readonly #nc: NatsConnection;
  readonly #inbox = createInbox();
  /** Message ids: this publisher's random prefix and a counter. */
  readonly #idPrefix = createInbox('').replace(/^\./, '');
  readonly #sub: Subscription;
  readonly #inFlight = new Map<number, InFlight>();
  /** Batches cut and sent, not acknowledged in time or refused: sent again first, in order. */
  readonly #again: Batch[] = [];
  readonly #sweep: NodeJS.Timeout;
  readonly #decoder = new TextDecoder();
  #inFlightEvents = 0;
  #queuedBytes = 0;
  /** When the queue's first event came (performance.now()), for the linger. */
  #openSince = 0;
  #next = 0;
  #nextBatch = 0;
  #connected = true;
  #closed = false;
  #pauseUntil = 0;
  #pauseTimer: NodeJS.Timeout | undefined;
  #lingerTimer: NodeJS.Timeout | undefined;
  #scheduled = false;
  /** Events the stream acknowledged. */
  stored = 0;
  /** Batches the stream acknowledged. */
  batches = 0;
  /** Batches sent again (no acknowledgement in time, or refused). */
  retries = 0;

  constructor(nc: NatsConnection, capacity: number) {
    this.#nc = nc;
    this.queue = new EventQueue(capacity);
    this.#sub = nc.subscribe(`${this.#inbox}.*`, { callback: (_err, m) => this.#onAck(m.subject, m.data, m.headers) });
    this.#sweep = setInterval(() => this.#retryLate(), 1000);
    this.#sweep.unref();
  }

  /** Events sent and not yet acknowledged. */
  get inFlight(): number {
    return this.#inFlightEvents;
  }

  /** Events waiting to be sent: queued, and in batches to send again. */
  get waiting(): number {
    let n = this.queue.length;
    for (const b of this.#again) n += b.count;
    return n;
  }

  /** Age (ms) of the oldest event not yet acknowledged; 0 when none waits. */
  lagMs(now = Date.now()): number {
    let oldest = this.queue.peek()?.at ?? now;
    if (this.#again.length) oldest = Math.min(oldest, this.#again[0]!.at);
    // In the order sent: the first entry is the oldest (a retry goes to the end).
    for (const f of this.#inFlight.values()) {
      oldest = Math.min(oldest, f.b.at);
      break;
    }
    return Math.max(0, now - oldest);
  }

  /** Queues `e` (false: the queue is full, counted); it goes out with the next batch. */
  push(e: QueuedEvent): boolean {
    if (this.queue.length === 0) this.#openSince = performance.now();
    if (!this.queue.push(e)) return false;
    this.#queuedBytes += entryBytes(e);
    this.#schedule();
    return true;
  }

  /** One pump at the end of this turn of the event loop, whatever number of events came in it. */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.pump();
    });
  }

  setConnected(connected: boolean): void {
    this.#connected = connected;
    if (connected) this.pump();
  }

  pump(): void {
    if (this.#closed) return;
    const pause = this.#pauseUntil - Date.now();
    if (pause > 0) {
      this.#pauseTimer ??= setTimeout(() => {
        this.#pauseTimer = undefined;
        this.pump();
      }, pause);
      return;
    }
    while (this.#connected && !this.#nc.isClosed()) {
      const again = this.#again[0];
      if (again) {
        if (this.#inFlightEvents > 0 && this.#inFlightEvents + again.count > MAX_ACKS_IN_FLIGHT) return;
        this.#again.shift();
        if (!this.#send(again)) return;
        continue;
      }
      if (this.queue.length === 0 || this.#inFlightEvents >= MAX_ACKS_IN_FLIGHT) return;
      const full = this.queue.length >= MAX_BATCH_EVENTS || this.#queuedBytes >= MAX_BATCH_BYTES;
      if (!full && this.#inFlightEvents > 0) {
        const wait = this.#openSince + LINGER_MS - performance.now();
        if (wait > 0) {
          this.#lingerTimer ??= setTimeout(() => {
            this.#lingerTimer = undefined;
            this.pump();
          }, wait);
          return;
        }
      }
      if (!this.#send(this.#cut())) return;
    }
  }

  /** The next batch from the queue: events of one node, in order, up to the bounds. */
  #cut(): Batch {
    const first = this.queue.shift()!;
    const entries = [first];
    let bytes = entryBytes(first);
    for (let e = this.queue.peek(); e && entries.length < MAX_BATCH_EVENTS && e.node === first.node; e = this.queue.peek()) {
      const size = entryBytes(e);
      if (bytes + size > MAX_BATCH_BYTES) break;
      this.queue.shift();
      entries.push(e);
      bytes += size;
    }
    this.#queuedBytes -= bytes;
    this.#openSince = performance.now();
    return { subject: eventBatchSubject(first.node), data: encodeEventBatch(first.node, entries), id: `${this.#idPrefix}-${this.#nextBatch++}`, count: entries.length, at: first.at };
  }

  /** Sends `b`; false (and `b` kept to send again first) when the connection refused it. */
  #send(b: Batch): boolean {
    const n = this.#next++;
    const h: MsgHdrs = headers();
    h.set('Nats-Msg-Id', b.id);
    try {
      this.#nc.publish(b.subject, b.data, { reply: `${this.#inbox}.${n}`, headers: h });
    } catch (err) {
      // The connection went away between the check and the publish: first in line again.
      this.#again.unshift(b);
      log.debug({ err }, 'event batch publish failed; kept');
      return false;
    }
    this.#inFlight.set(n, { b, sentAt: Date.now() });
    this.#inFlightEvents += b.count;
    return true;
  }

  #onAck(subject: string, data: Uint8Array, hdrs: MsgHdrs | undefined): void {
    const n = Number(subject.slice(this.#inbox.length + 1));
    const f = this.#inFlight.get(n);
    if (!f) return; // answered after its retry: the stream de-duplicated one of them
    this.#inFlight.delete(n);
    this.#inFlightEvents -= f.b.count;
    // A status (503: no stream listens; a cluster electing) or an error PubAck: again, after a pause.
    let ok = !hdrs?.hasError && data.length > 0;
    if (ok) {
      const text = this.#decoder.decode(data);
      ok = !text.includes('"error"');
    }
    if (ok) {
      this.stored += f.b.count;
      this.batches++;
    } else {
      this.#retry([f.b], hdrs?.code ? `status ${hdrs.code}` : this.#decoder.decode(data));
      this.#pauseUntil = Date.now() + RETRY_PAUSE_MS;
    }
    this.pump();
  }

  /** `batches` (oldest first) go to the front of what is sent next. */
  #retry(batches: Batch[], why: string): void {
    this.retries += batches.length;
    if (this.retries === batches.length || Math.floor(this.retries / 1000) > Math.floor((this.retries - batches.length) / 1000)) {
      log.info({ why, retries: this.retries }, 'an event batch was not acknowledged; sending it again');
    }
    this.#again.unshift(...batches);
  }

  /** Batches that got no acknowledgement within ACK_TIMEOUT_MS are sent again, oldest first. */
  #retryLate(): void {
    const late = Date.now() - ACK_TIMEOUT_MS;
    const again: Batch[] = [];
    for (const [n, f] of this.#inFlight) {
      if (f.sentAt > late) continue;
      this.#inFlight.delete(n);
      this.#inFlightEvents -= f.b.count;
      again.push(f.b);
    }
    if (again.length) {
      this.#retry(again, 'no acknowledgement in time');
      this.pump();
    }
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#sweep);
    clearTimeout(this.#pauseTimer);
    clearTimeout(this.#lingerTimer);
    this.#sub.unsubscribe();
  }
}
