// The bus over NATS (npm `nats` 2.x; nats-server 2.9 and newer). Core NATS for telemetry,
// commands and request/reply; events go live on bae.events.<node>.<kind> and, several to a
// message, to a JetStream stream (EVENT_STREAM, subjects bae.eventbatch.>, file storage;
// event-batch.ts) that keeps them for a consumer that was away.
//
// Opening is bounded: a server that refuses, does not answer or rejects the credentials gives a
// BusError naming the URL within connectTimeoutMs, and nothing else has happened. Once connected,
// the client reconnects on its own, forever, backing off (nats-connect.ts), also when the server
// refuses the credentials. Events wait in a bounded queue (event-queue.ts) while the stream cannot
// take them, and go out in order once it can; heartbeats go to a second stream that keeps the
// newest of each node (NODE_STREAM).
import { connect, createInbox, type JetStreamClient, type Msg, type NatsConnection, type NatsError, RetentionPolicy, StorageType } from 'nats';
import { UsageError } from '../errors';
import { moduleLogger } from '../log';
import { DEFAULT_REQUEST_TIMEOUT_MS, type Bus, type BusHandler, type BusMessage, type BusState, type BusSubscription, type RequestOptions } from './bus';
import { BusError } from './errors';
import { consumeDurable, ensureCommandStream, keptSubject, type DurableSubscription } from './durable';
import { ALL_EVENT_BATCHES, MAX_EVENT_BYTES, batchFilterOf } from './event-batch';
import { DEFAULT_EVENT_BUFFER } from './event-queue';
import { ACK_TIMEOUT_MS, EventPublisher } from './event-publisher';
import { encodePayload, makeMessage, payloadText } from './message';
import { authOptions, failureReason, reconnectWait, type NatsAuth } from './nats-connect';
import { readStream, storedEventsOf, type StoredEvent, type StreamReadOptions } from './stream-read';
import { SUBJECTS, checkPattern, checkSubject, subjectMatches } from './subjects';

const log = moduleLogger('bus/nats');

/** The JetStream stream of events. */
export const EVENT_STREAM = 'BAE_EVENTS';
/** How long the stream keeps an event (7 days). */
export const EVENT_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
/** The JetStream stream of heartbeats: the newest of each node (bae nodes). */
export const NODE_STREAM = 'BAE_NODES';
/** How long a silent node's last heartbeat stays in NODE_STREAM (1 day). */
const NODE_MAX_AGE_MS = 24 * 3600 * 1000;
/** How long the event stream remembers message ids: a retried event within it is stored once. */
export const EVENT_DUPLICATE_WINDOW_MS = 10 * 60 * 1000;
/** A connection that stays up this long ends the back-off (the next loss starts it at 0.5 s again). */
const STABLE_MS = 5000;
/** Pause after an event the stream did not acknowledge, before the next try. */
const RETRY_PAUSE_MS = 100;

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
  /** Credentials and TLS files (--nats-* options); user/pass/token above win over its own. */
  auth?: NatsAuth;
  /** Events held while the stream cannot take them (default DEFAULT_EVENT_BUFFER); more are counted and dropped. */
  eventBuffer?: number;
  /**
   * Also publish each event on its own subject bae.events.<node>.<kind>, core NATS, while
   * connected (default true): live subscribers (the live view, `nats sub`) get each event at once.
   */
  liveEvents?: boolean;
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

const reason = failureReason;

export interface NatsBusState extends BusState {
  /** The server of the current connection (null while disconnected). */
  server: string | null;
  jetstream: boolean;
  /** Events the stream acknowledged. */
  eventsStored: number;
  /** Events waiting for the stream (NATS down, or the acknowledgement window full). */
  eventsBuffered: number;
  /** Events sent and awaiting the stream's acknowledgement. */
  eventsInFlight: number;
  /** Events dropped because eventBuffer were already waiting. */
  eventsDropped: number;
  /** Stream messages (batches of events) the stream acknowledged. */
  eventBatchesStored: number;
  eventBuffer: number;
  /** Batches the stream did not acknowledge, sent again. */
  eventRetries: number;
  /** Age of the oldest event the stream has not acknowledged (ms); 0 when none waits. */
  eventLagMs: number;
  reconnects: number;
  /** Attempts to reconnect (each server dialled counts one). */
  reconnectAttempts: number;
  /** Round trip to the server at the last rtt() (ms). */
  rttMs: number | null;
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
  readonly #events: EventPublisher | undefined;
  readonly #liveEvents: boolean;
  /** Event subjects seen, checked, as node and kind. */
  readonly #eventSubjects = new Map<string, { node: string; kind: string }>();
  /** When the connection was lost (0: connected), for the reconnect back-off. */
  readonly #link: { lostAt: number };
  #reconnectAttempts = 0;
  #reconnects = 0;
  #rttMs: number | null = null;
  #stableTimer: NodeJS.Timeout | undefined;

  readonly #replicas: number;
  readonly #eventBuffer: number;
  #commandStream: Promise<string | null> | undefined;

  private constructor(url: string, nc: NatsConnection, js: JetStreamClient | undefined, link: { lostAt: number }, eventBuffer: number, replicas: number, liveEvents: boolean) {
    this.url = url;
    this.#liveEvents = liveEvents;
    this.#replicas = replicas;
    this.#nc = nc;
    this.#js = js;
    this.#link = link;
    this.#eventBuffer = eventBuffer;
    this.#events = js ? new EventPublisher(nc, eventBuffer) : undefined;
    void this.#watch();
  }

  /** Connects (bounded in time), makes sure the event stream exists, or fails with a BusError naming the URL. */
  static async open(opts: NatsBusOptions): Promise<NatsBus> {
    const url = checkNatsUrl(opts.url);
    const shown = redactUrl(url);
    const timeoutMs = opts.connectTimeoutMs ?? 3000;
    let timer: NodeJS.Timeout | undefined;
    let nc: NatsConnection | undefined;
    const eventBuffer = opts.eventBuffer ?? DEFAULT_EVENT_BUFFER;
    if (!Number.isInteger(eventBuffer) || eventBuffer < 1) throw new UsageError(`bad event buffer ${eventBuffer}: a whole number of events >= 1`);
    const auth = authOptions(opts.auth);
    const link = { lostAt: 0 };
    const attempt = connect({
      servers: url.split(','),
      name: opts.name ?? 'bae',
      timeout: timeoutMs,
      // First connection: fail fast. Afterwards: reconnect forever, backing off, also when the
      // server refuses the credentials (they may be fixed on the server's side meanwhile).
      waitOnFirstConnect: false,
      maxReconnectAttempts: -1,
      ignoreAuthErrorAbort: true,
      reconnectDelayHandler: () => reconnectWait(link.lostAt ? Date.now() - link.lostAt : 0),
      ...auth,
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
    return new NatsBus(shown, nc, js, link, eventBuffer, opts.streamReplicas ?? 1, opts.liveEvents ?? true);
  }

  static async #ensureStream(nc: NatsConnection, replicas: number): Promise<JetStreamClient> {
    const jsm = await nc.jetstreamManager({ timeout: 5000 });
    const streams = [
      { name: EVENT_STREAM, subjects: [ALL_EVENT_BATCHES], max_age: EVENT_MAX_AGE_MS * 1_000_000, duplicate_window: EVENT_DUPLICATE_WINDOW_MS * 1_000_000 },
      { name: NODE_STREAM, subjects: [SUBJECTS.allHeartbeats], max_age: NODE_MAX_AGE_MS * 1_000_000, max_msgs_per_subject: 1 },
    ];
    for (const cfg of streams) {
      try {
        const info = await jsm.streams.info(cfg.name);
        // A stream an earlier bae made stores one event per message on bae.events.>: from now on
        // it stores batches (and no longer the live subjects); what it holds stays readable.
        if (cfg.name === EVENT_STREAM && !info.config.subjects.includes(ALL_EVENT_BATCHES)) {
          await jsm.streams.update(cfg.name, { ...info.config, subjects: [ALL_EVENT_BATCHES] });
          log.info({ stream: cfg.name, was: info.config.subjects }, 'event stream updated to store event batches');
        }
      } catch (err) {
        if ((err as NatsError).code !== '404') throw err;
        try {
          await jsm.streams.add({ ...cfg, storage: StorageType.File, retention: RetentionPolicy.Limits, num_replicas: replicas });
          log.info({ stream: cfg.name, replicas }, 'stream created');
        } catch (addErr) {
          // Another client made it meanwhile: use theirs.
          if (!/already in use|exists/i.test(String((addErr as Error).message))) throw addErr;
        }
      }
    }
    return nc.jetstream({ timeout: ACK_TIMEOUT_MS });
  }

  async #watch(): Promise<void> {
    for await (const s of this.#nc.status()) {
      if (s.type === 'disconnect') {
        this.#connected = false;
        // The first loss starts the back-off; a connection that drops again soon after (a server
        // that accepts the socket and then refuses the credentials) continues it.
        if (this.#link.lostAt === 0) this.#link.lostAt = Date.now();
        this.#events?.setConnected(false);
        clearTimeout(this.#stableTimer);
        log.warn({ url: this.url, server: s.data }, 'disconnected from NATS; reconnecting');
      } else if (s.type === 'reconnect') {
        this.#connected = true;
        this.#reconnects++;
        clearTimeout(this.#stableTimer);
        this.#stableTimer = setTimeout(() => {
          if (this.#connected) this.#link.lostAt = 0;
        }, STABLE_MS);
        this.#stableTimer.unref();
        log.info({ url: this.url, server: s.data, buffered: this.#events?.waiting ?? 0 }, 'reconnected to NATS');
        this.#events?.setConnected(true);
      } else if (s.type === 'reconnecting') {
        this.#reconnectAttempts++;
        log.info({ url: this.url, server: s.data, attempt: this.#reconnectAttempts }, 'trying to reconnect to NATS');
      } else if (s.type === 'error') {
        log.warn({ url: this.url, server: String(this.#nc.getServer()), reason: reason({ code: s.data }) }, `NATS error: ${reason({ code: s.data })}`);
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
    if (!this.#events) {
      this.#nc.publish(checkSubject(subject), encodePayload(value));
      this.#published++;
      return;
    }
    // The agent's hot path (up to 100k events/s): the subject checked once, the JSON kept as text
    // until its batch is encoded.
    let where = this.#eventSubjects.get(subject);
    if (where === undefined) {
      const t = checkSubject(subject).split('.');
      if (t.length !== 4 || t[0] !== 'bae' || t[1] !== 'events') throw new BusError(`${subject} is not an event subject (bae.events.<node>.<kind>)`);
      if (this.#eventSubjects.size >= 4096) this.#eventSubjects.clear();
      where = { node: t[2]!, kind: t[3]! };
      this.#eventSubjects.set(subject, where);
    }
    const json = payloadText(value);
    if (json.length * 3 > MAX_EVENT_BYTES && Buffer.byteLength(json) > MAX_EVENT_BYTES) {
      throw new BusError(`event on ${subject} of ${Buffer.byteLength(json)} bytes is over the event stream's ${MAX_EVENT_BYTES}-byte limit`);
    }
    this.#published++;
    // Live, at most once: while disconnected the client would only pile them up.
    if (this.#liveEvents && this.#connected) this.#nc.publish(subject, json);
    // Never waits: queued (or counted as dropped when the queue is full), sent in batches as the window allows.
    const q = this.#events.queue;
    if (!this.#events.push({ node: where.node, kind: where.kind, json, at: Date.now() }) && (q.dropped === 1 || q.dropped % 10_000 === 0)) {
      log.warn({ url: this.url, buffered: q.length, dropped: q.dropped }, 'event buffer full: events dropped (counted)');
    }
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
    const pattern = checkPattern(opts.filter ?? SUBJECTS.allEvents);
    const streamFilter = batchFilterOf(pattern);
    const consumer = await js.consumers.get(EVENT_STREAM, {
      ...(streamFilter ? { filterSubjects: streamFilter } : {}),
      // Without a start time: from the stream's first message (the ordered consumer's default).
      ...(opts.since ? { opt_start_time: opts.since.toISOString() } : {}),
    });
    const out: StoredEvent[] = [];
    // Batches hold many events each: a message at a time, until `max` events or the stream's end.
    const until = Date.now() + Math.max(1000, opts.waitMs ?? 1000);
    try {
      while (out.length < max && Date.now() < until) {
        const m = await consumer.next({ expires: Math.max(1000, until - Date.now()) });
        if (!m) break;
        for (const e of storedEventsOf(m)) {
          if (subjectMatches(pattern, e.subject) && out.length < max) out.push(e);
        }
        if (m.info.pending === 0) break;
      }
    } finally {
      await consumer.delete().catch(() => {});
    }
    return out;
  }

  async flush(): Promise<void> {
    this.#check();
    await this.#nc.flush();
  }

  /** Resolves once every queued event is acknowledged, or false after `timeoutMs`. */
  async settle(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (this.#events && this.#events.inFlight + this.#events.waiting > 0) {
      if (Date.now() >= until || this.#nc.isClosed()) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }

  async drain(): Promise<void> {
    if (this.#nc.isClosed()) return;
    // Events still queued or on their way: bounded wait (the stop of a process must not hang).
    if (!(await this.settle(this.#connected ? 2000 : 0)) && this.#events) {
      log.warn({ url: this.url, buffered: this.#events.waiting, inFlight: this.#events.inFlight }, 'closing with events the stream has not acknowledged');
    }
    this.#events?.close();
    clearTimeout(this.#stableTimer);
    // Draining needs the server; while it is away (a stop during an outage) close at once.
    if (!this.#connected) await this.#nc.close().catch(() => {});
    else await this.#nc.drain().catch(() => {});
  }

  async close(): Promise<void> {
    this.#events?.close();
    clearTimeout(this.#stableTimer);
    if (!this.#nc.isClosed()) await this.#nc.close().catch(() => {});
  }

  /** Events of the stream that `opts` selects, in order, to `onEvent` (follow: until the signal); resolves with the count. */
  async readEvents(opts: Partial<StreamReadOptions>, onEvent: (e: StoredEvent) => void): Promise<number> {
    const js = this.#js;
    if (!js) throw new BusError(`NATS at ${this.url} has no JetStream: no events are kept (start nats-server with -js)`);
    try {
      const filter = checkPattern(opts.filter ?? SUBJECTS.allEvents);
      return await readStream(js, EVENT_STREAM, { ...opts, filter, streamFilter: batchFilterOf(filter) ?? null }, onEvent);
    } catch (err) {
      throw new BusError(`reading the event stream ${EVENT_STREAM} at NATS ${this.url} failed: ${reason(err)}`, { cause: err });
    }
  }

  /** The newest heartbeat of every node that the node stream holds (live or not). */
  async lastHeartbeats(): Promise<StoredEvent[]> {
    const js = this.#js;
    if (!js) throw new BusError(`NATS at ${this.url} has no JetStream: heartbeats are not kept (start nats-server with -js)`);
    const out: StoredEvent[] = [];
    try {
      await readStream(js, NODE_STREAM, { filter: SUBJECTS.allHeartbeats, lastPerSubject: true }, (e) => void out.push(e));
    } catch (err) {
      throw new BusError(`reading the node stream ${NODE_STREAM} at NATS ${this.url} failed: ${reason(err)}`, { cause: err });
    }
    return out;
  }

  /**
   * Commands on `subject` that this node missed (durable consumer `bae-<node>` of the command
   * stream, durable.ts), to `handler`; undefined (logged) without JetStream.
   */
  async keepCommands(node: string, subject: string, handler: (data: Uint8Array, subject: string) => void): Promise<DurableSubscription | undefined> {
    if (!this.#js) return undefined;
    try {
      const jsm = await this.#nc.jetstreamManager({ timeout: 5000 });
      if (!(await ensureCommandStream(jsm, this.#replicas))) return undefined;
      return await consumeDurable(this.#js, jsm, `bae-${node}`, subject, handler);
    } catch (err) {
      log.warn({ url: this.url, reason: reason(err) }, 'commands published while this agent is away will not be caught up');
      return undefined;
    }
  }

  /**
   * Publishes a command on `subject` for the agents listening (core NATS, at once), and its kept
   * copy for those that are away (durable.ts): stored by the command stream, acknowledged, retried
   * with its message id for up to `timeoutMs` while a cluster elects a leader or the client
   * reconnects. Without the stream (no agent made it yet, or no JetStream), the core publish
   * alone. Resolves with whether the stream took it.
   */
  async publishCommand(subject: string, value: unknown, id: string, timeoutMs = 10_000): Promise<boolean> {
    this.#check();
    const data = encodePayload(value);
    this.#nc.publish(checkSubject(subject), data);
    this.#published++;
    const js = this.#js;
    if (!js) return false;
    const kept = keptSubject(subject);
    this.#commandStream ??= this.#nc
      .jetstreamManager({ timeout: 5000 })
      .then((jsm) => jsm.streams.find(kept))
      .catch(() => null);
    if ((await this.#commandStream) === null) return false;
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        await js.publish(kept, data, { msgID: id, timeout: Math.min(ACK_TIMEOUT_MS, Math.max(500, until - Date.now())) });
        return true;
      } catch (err) {
        if (Date.now() >= until) throw new BusError(`NATS at ${this.url} did not store the command on ${kept} within ${timeoutMs} ms: ${reason(err)}`, { cause: err });
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS * 2));
      }
    }
  }

  /** Measures the round trip to the server (ms); null when it does not answer. */
  async rtt(): Promise<number | null> {
    if (!this.#connected || this.#nc.isClosed()) return null;
    try {
      this.#rttMs = await this.#nc.rtt();
    } catch {
      this.#rttMs = null;
    }
    return this.#rttMs;
  }

  state(): NatsBusState {
    return {
      kind: 'nats',
      url: this.url,
      server: this.#connected ? String(this.#nc.getServer()) : null,
      connected: this.#connected && !this.#nc.isClosed(),
      published: this.#published,
      delivered: this.#delivered,
      handlerErrors: this.#handlerErrors,
      jetstream: this.#js !== undefined,
      eventsStored: this.#events?.stored ?? 0,
      eventsBuffered: this.#events?.waiting ?? 0,
      eventsInFlight: this.#events?.inFlight ?? 0,
      eventsDropped: this.#events?.queue.dropped ?? 0,
      eventBatchesStored: this.#events?.batches ?? 0,
      eventBuffer: this.#eventBuffer,
      eventRetries: this.#events?.retries ?? 0,
      eventLagMs: this.#events?.lagMs() ?? 0,
      reconnects: this.#reconnects,
      reconnectAttempts: this.#reconnectAttempts,
      rttMs: this.#rttMs,
    };
  }
}

