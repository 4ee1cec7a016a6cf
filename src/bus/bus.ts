// The contract of bae's message bus, which the agent and the CLI use without knowing which one
// runs: NATS (src/bus/nats.ts) or the in-process bus of the embedded default (src/bus/memory.ts).
// Both follow NATS's subject rules (src/bus/subjects.ts) and deliver asynchronously, in order per
// subscription. Payloads are JSON, written by src/json.ts (64-bit counters as decimal strings).

export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** Where a request wants its answer (absent on a plain publish). */
  readonly reply?: string;
  /** The payload parsed as JSON; throws a BusError naming the subject when it is not JSON. */
  json(): unknown;
  /** Answers a request (does nothing for a message without `reply`). */
  respond(value: unknown): void;
}

export type BusHandler = (msg: BusMessage) => void | Promise<void>;

export interface BusSubscription {
  readonly pattern: string;
  /** Stops delivery; messages not yet handed to the handler are dropped. Safe twice. */
  unsubscribe(): void;
}

export interface RequestOptions {
  /** How long to wait for the answer (default 2000 ms). */
  timeoutMs?: number;
}

export interface BusState {
  kind: 'memory' | 'nats';
  /** The server's URL (nats), absent for the in-process bus. */
  url?: string;
  connected: boolean;
  published: number;
  delivered: number;
  /** Handler failures (logged). */
  handlerErrors: number;
}

export interface Bus {
  readonly kind: 'memory' | 'nats';
  /** Publishes a JSON value on `subject` (no wildcards). Returns at once; delivery is asynchronous. */
  publish(subject: string, value: unknown): void;
  /**
   * Publishes an event (a bae.events.* subject). On NATS the event stream keeps it (JetStream), so
   * that a consumer that was away gets it later; on the in-process bus it is a publish.
   */
  publishEvent(subject: string, value: unknown): void;
  /** Calls `handler` for each message on a subject that matches `pattern` (wildcards allowed). */
  subscribe(pattern: string, handler: BusHandler): BusSubscription;
  /** Sends a request and resolves with the first answer; a BusError when none comes in time. */
  request(subject: string, value: unknown, opts?: RequestOptions): Promise<BusMessage>;
  /**
   * Sends a request to every subscriber and resolves with the answers that came within
   * `timeoutMs` (all of it is waited for unless `max` answers came first); [] when none did.
   */
  requestMany(subject: string, value: unknown, opts: RequestOptions & { max?: number }): Promise<BusMessage[]>;
  /** Resolves once the server has everything published so far (in-process: at once). */
  flush(): Promise<void>;
  /** Delivers what is on its way, then closes. Safe twice. */
  drain(): Promise<void>;
  /** Closes now. Safe twice. */
  close(): Promise<void>;
  state(): BusState;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 2000;
