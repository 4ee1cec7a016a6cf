// Events into the JetStream stream, acknowledged, at the rate the kernel's ring delivers them.
// A JetStream publish is a request (the stream answers with its PubAck); one request per event,
// each with its own promise, reply subscription entry and timer, costs more than the event
// itself. Here every event is a plain publish with a reply subject under one inbox of this
// connection (`<inbox>.<n>`) and its message id header; one subscription takes every
// acknowledgement, one sweep a second retries those that got none in time. What is not
// acknowledged is sent again with the same message id, which the stream de-duplicates.
import { createInbox, headers, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { moduleLogger } from '../log';
import { EventQueue, type QueuedEvent } from './event-queue';

const log = moduleLogger('bus/events');

/** Events sent and not yet acknowledged, at most. */
export const MAX_ACKS_IN_FLIGHT = 10_000;
/** How long an event waits for its acknowledgement before it is sent again. */
export const ACK_TIMEOUT_MS = 5000;
/** Pause after a refusal (no stream listening, a cluster electing), before the next send. */
const RETRY_PAUSE_MS = 100;

interface InFlight {
  e: QueuedEvent;
  sentAt: number;
}

export class EventPublisher {
  readonly queue: EventQueue;
  readonly #nc: NatsConnection;
  readonly #inbox = createInbox();
  readonly #sub: Subscription;
  readonly #inFlight = new Map<number, InFlight>();
  readonly #sweep: NodeJS.Timeout;
  readonly #decoder = new TextDecoder();
  #next = 0;
  #connected = true;
  #pauseUntil = 0;
  #pauseTimer: NodeJS.Timeout | undefined;
  stored = 0;
  retries = 0;

  constructor(nc: NatsConnection, capacity: number) {
    this.#nc = nc;
    this.queue = new EventQueue(capacity);
    this.#sub = nc.subscribe(`${this.#inbox}.*`, { callback: (_err, m) => this.#onAck(m.subject, m.data, m.headers) });
    this.#sweep = setInterval(() => this.#retryLate(), 1000);
    this.#sweep.unref();
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Age (ms) of the oldest event not yet acknowledged; 0 when none waits. */
  lagMs(now = Date.now()): number {
    let oldest = this.queue.peek()?.at ?? now;
    // In the order sent: the first entry is the oldest (a retry goes through the queue again).
    for (const f of this.#inFlight.values()) {
      oldest = Math.min(oldest, f.e.at);
      break;
    }
    return Math.max(0, now - oldest);
  }

  /** Queues `e` (false: the queue is full, counted) and sends what the window allows. */
  push(e: QueuedEvent): boolean {
    const ok = this.queue.push(e);
    if (ok) this.pump();
    return ok;
  }

  setConnected(connected: boolean): void {
    this.#connected = connected;
    if (connected) this.pump();
  }

  pump(): void {
    const pause = this.#pauseUntil - Date.now();
    if (pause > 0) {
      this.#pauseTimer ??= setTimeout(() => {
        this.#pauseTimer = undefined;
        this.pump();
      }, pause);
      return;
    }
    const now = Date.now();
    while (this.#connected && !this.#nc.isClosed() && this.#inFlight.size < MAX_ACKS_IN_FLIGHT) {
      const e = this.queue.shift();
      if (!e) return;
      const n = this.#next++;
      this.#inFlight.set(n, { e, sentAt: now });
      const h: MsgHdrs = headers();
      h.set('Nats-Msg-Id', e.id);
      try {
        this.#nc.publish(e.subject, e.data, { reply: `${this.#inbox}.${n}`, headers: h });
      } catch (err) {
        // The connection went away between the check and the publish: back in line.
        this.#inFlight.delete(n);
        this.queue.unshift(e);
        log.debug({ err }, 'event publish failed; kept');
        return;
      }
    }
  }

  #onAck(subject: string, data: Uint8Array, hdrs: MsgHdrs | undefined): void {
    const n = Number(subject.slice(this.#inbox.length + 1));
    const f = this.#inFlight.get(n);
    if (!f) return; // answered after its retry: the stream de-duplicated one of them
    this.#inFlight.delete(n);
    // A status (503: no stream listens; a cluster electing) or an error PubAck: again, after a pause.
    let ok = !hdrs?.hasError && data.length > 0;
    if (ok) {
      const text = this.#decoder.decode(data);
      ok = !text.includes('"error"');
    }
    if (ok) {
      this.stored++;
    } else {
      this.#retry(f.e, hdrs?.code ? `status ${hdrs.code}` : this.#decoder.decode(data));
      this.#pauseUntil = Date.now() + RETRY_PAUSE_MS;
    }
    this.pump();
  }

  #retry(e: QueuedEvent, why: string): void {
    this.retries++;
    if (this.retries === 1 || this.retries % 1000 === 0) log.info({ why, retries: this.retries }, 'an event was not acknowledged; sending it again');
    this.queue.unshift(e);
  }

  /** Events that got no acknowledgement within ACK_TIMEOUT_MS go back to the front of the queue. */
  #retryLate(): void {
    const late = Date.now() - ACK_TIMEOUT_MS;
    const again: QueuedEvent[] = [];
    for (const [n, f] of this.#inFlight) {
      if (f.sentAt > late) continue;
      this.#inFlight.delete(n);
      again.push(f.e);
    }
    // Oldest first at the front.
    for (let i = again.length - 1; i >= 0; i--) this.#retry(again[i]!, 'no acknowledgement in time');
    if (again.length) this.pump();
  }

  close(): void {
    clearInterval(this.#sweep);
    clearTimeout(this.#pauseTimer);
    this.#sub.unsubscribe();
  }
}
