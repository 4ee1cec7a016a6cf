// The bus over NATS (npm `nats` 2.x; nats-server 2.9 and newer). Core NATS for telemetry,
// commands and request/reply; events also go to a JetStream stream (EVENT_STREAM, subjects
// bae.events.>, file storage) that keeps them for a consumer that was away.
//
// Opening is bounded: a server that refuses, does not answer or rejects the credentials gives a
// BusError naming the URL within connectTimeoutMs, and nothing else has happened. Once connected,
// the client reconnects on its own, forever, and buffers what is published meanwhile.
import { connect, createInbox, type JetStreamClient, type Msg, type NatsConnection, type NatsError, RetentionPolicy, StorageType } from 'nats';
import { UsageError } from '../errors';
import { moduleLogger } from '../log';
import { DEFAULT_REQUEST_TIMEOUT_MS, type Bus, type BusHandler, type BusMessage, type BusState, type BusSubscription, type RequestOptions } from './bus';
import { BusError } from './errors';
import { decodePayload, encodePayload, makeMessage } from './message';
import { SUBJECTS, checkPattern, checkSubject } from './subjects';

const log = moduleLogger('bus/nats');

/** The JetStream stream of events. */
export const EVENT_STREAM = 'BAE_EVENTS';
/** How long the stream keeps an event (7 days). */
export const EVENT_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
/** Event publishes waiting for the stream's acknowledgement; beyond, events go as plain publishes (the stream still takes them). */
const MAX_ACKS_IN_FLIGHT = 10_000;

export interface NatsBusOptions {
  /** One URL or several, comma-separated (a cluster): nats://host:port, tls://..., host:port. */
  url: string;
  /** Client name the server shows (default 'bae'). */
  name?: string;
  /** Bound on opening the connection (default 3000 ms). */
  connectTimeoutMs?: number;
  /** Replicas of the event stream when this client creates it (default 1; 3 on a cluster). */
  streamReplicas?: number;
  user?: string;
  pass?: string;
  token?: string;
}

/** The URL(s) for messages: without user:password@. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/g, '//');
}

/** Checks `--nats`: one or more comma-separated nats://, tls://, ws:// URLs or host:port. */
export function checkNatsUrl(url: string): string {
  const parts = url.split(',').map((s) => s.trim());
  for (const p of parts) {
    const withScheme = /^[a-z]+:\/\//.test(p) ? p : `nats://${p}`;
    let u: URL;
    try {
      u = new URL(withScheme);
    } catch {
      throw new UsageError(`bad NATS URL '${redactUrl(p)}': expected nats://HOST:PORT (or tls://, or HOST:PORT)`);
    }
    if (!['nats:', 'tls:'].includes(u.protocol) || !u.hostname) {
      throw new UsageError(`bad NATS URL '${redactUrl(p)}': expected nats://HOST:PORT (or tls://, or HOST:PORT)`);
    }
  }
  return parts.join(',');
}

function reason(err: unknown): string {
  const e = err as NatsError;
  switch (e?.code) {
    case 'CONNECTION_REFUSED':
      return 'connection refused';
    case 'CONNECTION_TIMEOUT':
    case 'TIMEOUT':
      return 'no answer (timed out)';
    case 'AUTHORIZATION_VIOLATION':
      return 'the server refused the credentials (authorization violation)';
    default:
      return e?.message ?? String(err);
  }
}

export interface StoredEvent {
  subject: string;
  /** The stream's sequence number. */
  seq: number;
  /** When the stream took it (ISO time). */
  time: string;
  value: unknown;
}

export class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  readonly url: string;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient | undefined;
  #connected = true;
  #published = 0;
  #delivered = 0;
  #handlerErrors = 0;
  #acksInFlight = 0;
  #eventsStored = 0;
  #eventErrors = 0;

  private constructor(url: string, nc: NatsConnection, js: JetStreamClient | undefined) {
    this.url = url;
    this.#nc = nc;
    this.#js = js;
    void this.#watch();
  }

  /** Connects (bounded in time), makes sure the event stream exists, or fails with a BusError naming the URL. */
  static async open(opts: NatsBusOptions): Promise<NatsBus> {
    const url = checkNatsUrl(opts.url);
    const shown = redactUrl(url);
    const timeoutMs = opts.connectTimeoutMs ?? 3000;
    let timer: NodeJS.Timeout | undefined;
    let nc: NatsConnection | undefined;
    const attempt = connect({
      servers: url.split(','),
      name: opts.name ?? 'bae',
      timeout: timeoutMs,
      // First connection: fail fast. Afterwards: reconnect forever, buffering publishes.
      waitOnFirstConnect: false,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      ...(opts.user !== undefined ? { user: opts.user, pass: opts.pass ?? '' } : {}),
      ...(opts.token !== undefined ? { token: opts.token } : {}),
    });
    try {
      nc = await Promise.race([
        attempt,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })), timeoutMs + 500);
        }),
      ]);
    } catch (err) {
      // A connection that completes after the deadline is closed, not leaked.
      attempt.then((late) => late.close()).catch(() => {});
      throw new BusError(`cannot connect to NATS at ${shown}: ${reason(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    let js: JetStreamClient | undefined;
    try {
      js = await NatsBus.#ensureStream(nc, opts.streamReplicas ?? 1);
    } catch (err) {
      const code = (err as NatsError).code;
      if (code === '503' || /not enabled/i.test(String((err as Error).message))) {
        log.warn({ url: shown }, 'the NATS server has no JetStream (start it with -js): events are published but not kept for absent consumers');
      } else {
        await nc.close().catch(() => {});
        throw new BusError(`NATS at ${shown}: cannot set up the event stream ${EVENT_STREAM}: ${reason(err)}`, { cause: err });
      }
    }
    log.debug({ url: shown, server: nc.info?.server_name, jetstream: js !== undefined }, 'connected to NATS');
    return new NatsBus(shown, nc, js);
  }

  static async #ensureStream(nc: NatsConnection, replicas: number): Promise<JetStreamClient> {
    const jsm = await nc.jetstreamManager({ timeout: 2000 });
    try {
      await jsm.streams.info(EVENT_STREAM);
    } catch (err) {
      if ((err as NatsError).code !== '404') throw err;
      await jsm.streams.add({
        name: EVENT_STREAM,
        subjects: [SUBJECTS.allEvents],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        num_replicas: replicas,
        max_age: EVENT_MAX_AGE_MS * 1_000_000,
      });
      log.info({ stream: EVENT_STREAM, replicas }, 'event stream created');
    }
    return nc.jetstream();
  }

  async #watch(): Promise<void> {
    for await (const s of this.#nc.status()) {
      if (s.type === 'disconnect') {
        this.#connected = false;
        log.warn({ url: this.url, server: s.data }, 'disconnected from NATS; reconnecting');
      } else if (s.type === 'reconnect') {
        this.#connected = true;
        log.info({ url: this.url, server: s.data }, 'reconnected to NATS');
      } else if (s.type === 'error') {
        log.warn({ url: this.url, err: s.data }, 'NATS error');
      }
    }
  }

  #check(): void {
    if (this.#nc.isClosed()) throw new BusError(`the connection to NATS at ${this.url} is closed`);
  }

  publish(subject: string, value: unknown): void {
    this.#check();
    this.#nc.publish(checkSubject(subject), encodePayload(value));
    this.#published++;
  }

  publishEvent(subject: string, value: unknown): void {
    this.#check();
    const data = encodePayload(value);
    checkSubject(subject);
    this.#published++;
    if (!this.#js || this.#acksInFlight >= MAX_ACKS_IN_FLIGHT) {
      this.#nc.publish(subject, data);
      return;
    }
    this.#acksInFlight++;
    this.#js
      .publish(subject, data)
      .then(() => this.#eventsStored++)
      .catch((err: unknown) => {
        this.#eventErrors++;
        log.warn({ err, subject }, 'the event stream did not acknowledge an event');
      })
      .finally(() => this.#acksInFlight--);
  }

  subscribe(pattern: string, handler: BusHandler): BusSubscription {
    this.#check();
    const sub = this.#nc.subscribe(checkPattern(pattern), {
      callback: (err, msg) => {
        if (err) {
          log.warn({ err, pattern }, 'subscription error');
          return;
        }
        this.#delivered++;
        const fail = (e: unknown) => {
          this.#handlerErrors++;
          log.warn({ err: e, subject: msg.subject }, 'a bus handler failed');
        };
        try {
          const r = handler(this.#wrap(msg));
          if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(fail);
        } catch (e) {
          fail(e);
        }
      },
    });
    return { pattern, unsubscribe: () => sub.unsubscribe() };
  }

  #wrap(msg: Msg): BusMessage {
    return makeMessage(msg.subject, msg.data, msg.reply || undefined, (reply, data) => {
      if (!this.#nc.isClosed()) this.#nc.publish(reply, data);
    });
  }

  async request(subject: string, value: unknown, opts: RequestOptions = {}): Promise<BusMessage> {
    this.#check();
    const timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    try {
      const msg = await this.#nc.request(checkSubject(subject), encodePayload(value), { timeout: timeoutMs });
      return this.#wrap(msg);
    } catch (err) {
      if (err instanceof BusError) throw err;
      const code = (err as NatsError).code;
      if (code === '503') throw new BusError(`no one answers on ${subject} at NATS ${this.url} (no subscriber)`, { cause: err });
      if (code === 'TIMEOUT') throw new BusError(`no reply on ${subject} within ${timeoutMs} ms (NATS at ${this.url})`, { cause: err });
      throw new BusError(`request on ${subject} failed (NATS at ${this.url}): ${reason(err)}`, { cause: err });
    }
  }

  async requestMany(subject: string, value: unknown, opts: RequestOptions & { max?: number }): Promise<BusMessage[]> {
    this.#check();
    checkSubject(subject);
    const data = encodePayload(value);
    const inbox = createInbox();
    const got: BusMessage[] = [];
    const sub = this.#nc.subscribe(inbox, { ...(opts.max !== undefined ? { max: opts.max } : {}) });
    const timer = setTimeout(() => sub.unsubscribe(), opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    try {
      this.#nc.publish(subject, data, { reply: inbox });
      for await (const m of sub) {
        // The server's "no responders" status (503) is not an answer.
        if (m.headers?.code === 503) break;
        got.push(this.#wrap(m));
      }
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
    }
    return got;
  }

  /**
   * Events the stream holds on subjects matching `filter` (default every event), oldest first,
   * from `since` (default: the start), at most `max`, waiting up to `waitMs` for them.
   */
  async storedEvents(opts: { filter?: string; since?: Date; max?: number; waitMs?: number } = {}): Promise<StoredEvent[]> {
    if (!this.#js) throw new BusError(`NATS at ${this.url} has no JetStream: no events are kept`);
    const max = opts.max ?? 1000;
    const js = this.#js;
    try {
      return await this.#fetchStored(js, max, opts);
    } catch (err) {
      if (err instanceof BusError) throw err;
      throw new BusError(`reading the event stream ${EVENT_STREAM} at NATS ${this.url} failed: ${reason(err)}`, { cause: err });
    }
  }

  async #fetchStored(js: JetStreamClient, max: number, opts: { filter?: string; since?: Date; waitMs?: number }): Promise<StoredEvent[]> {
    const consumer = await js.consumers.get(EVENT_STREAM, {
      filterSubjects: checkPattern(opts.filter ?? SUBJECTS.allEvents),
      // Without a start time: from the stream's first message (the ordered consumer's default).
      ...(opts.since ? { opt_start_time: opts.since.toISOString() } : {}),
    });
    const out: StoredEvent[] = [];
    const iter = await consumer.fetch({ max_messages: max, expires: Math.max(1000, opts.waitMs ?? 1000) });
    for await (const m of iter) {
      out.push({ subject: m.subject, seq: m.seq, time: new Date(Number(m.info.timestampNanos / 1_000_000)).toISOString(), value: decodePayload(m.subject, m.data) });
      if (out.length >= max) break;
    }
    await consumer.delete().catch(() => {});
    return out;
  }

  async flush(): Promise<void> {
    this.#check();
    await this.#nc.flush();
  }

  async drain(): Promise<void> {
    if (this.#nc.isClosed()) return;
    // Acknowledgements of events still on their way: bounded wait.
    for (let i = 0; i < 40 && this.#acksInFlight > 0; i++) await new Promise((r) => setTimeout(r, 25));
    await this.#nc.drain().catch(() => {});
  }

  async close(): Promise<void> {
    if (!this.#nc.isClosed()) await this.#nc.close().catch(() => {});
  }

  state(): BusState & { eventsStored: number; eventErrors: number; jetstream: boolean } {
    return {
      kind: 'nats',
      url: this.url,
      connected: this.#connected && !this.#nc.isClosed(),
      published: this.#published,
      delivered: this.#delivered,
      handlerErrors: this.#handlerErrors,
      jetstream: this.#js !== undefined,
      eventsStored: this.#eventsStored,
      eventErrors: this.#eventErrors,
    };
  }
}

