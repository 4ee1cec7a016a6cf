// The in-process bus: the embedded default (no NATS URL, no server). Same subjects, wildcards and
// asynchronous, in-order delivery as NATS; request/reply through private inbox subjects. Nothing
// is kept for a subscriber that is not there (as core NATS), and nothing leaves the process.
import { moduleLogger } from '../log';
import { DEFAULT_REQUEST_TIMEOUT_MS, type Bus, type BusHandler, type BusMessage, type BusState, type BusSubscription, type RequestOptions } from './bus';
import { BusError } from './errors';
import { encodePayload, makeMessage } from './message';
import { checkPattern, checkSubject, subjectMatches } from './subjects';

const log = moduleLogger('bus/memory');

interface Sub {
  pattern: string;
  handler: BusHandler;
  live: boolean;
}

export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  #subs = new Set<Sub>();
  #closed = false;
  #pending = 0;
  #idle: (() => void)[] = [];
  #inbox = 0;
  #published = 0;
  #delivered = 0;
  #handlerErrors = 0;

  publish(subject: string, value: unknown): void {
    this.#send(checkSubject(subject), encodePayload(value), undefined);
  }

  publishEvent(subject: string, value: unknown): void {
    this.publish(subject, value);
  }

  #send(subject: string, data: Uint8Array, reply: string | undefined): number {
    if (this.#closed) throw new BusError('the in-process bus is closed');
    this.#published++;
    let matched = 0;
    for (const sub of this.#subs) {
      if (!subjectMatches(sub.pattern, subject)) continue;
      matched++;
      this.#pending++;
      // Asynchronous, as over a network; setImmediate keeps the order per subscription.
      setImmediate(() => {
        try {
          if (sub.live) this.#deliver(sub, makeMessage(subject, data, reply, (r, d) => this.#answer(r, d)));
        } finally {
          if (--this.#pending === 0) this.#idle.splice(0).forEach((f) => f());
        }
      });
    }
    return matched;
  }

  #answer(reply: string, data: Uint8Array): void {
    if (!this.#closed) this.#send(reply, data, undefined);
  }

  #deliver(sub: Sub, msg: BusMessage): void {
    this.#delivered++;
    const fail = (err: unknown) => {
      this.#handlerErrors++;
      log.warn({ err, subject: msg.subject }, 'a bus handler failed');
    };
    try {
      const r = sub.handler(msg);
      if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  subscribe(pattern: string, handler: BusHandler): BusSubscription {
    if (this.#closed) throw new BusError('the in-process bus is closed');
    const sub: Sub = { pattern: checkPattern(pattern), handler, live: true };
    this.#subs.add(sub);
    return {
      pattern: sub.pattern,
      unsubscribe: () => {
        sub.live = false;
        this.#subs.delete(sub);
      },
    };
  }

  request(subject: string, value: unknown, opts: RequestOptions = {}): Promise<BusMessage> {
    checkSubject(subject);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const inbox = `_INBOX.memory.${++this.#inbox}`;
    return new Promise<BusMessage>((resolve, reject) => {
      const pending: { timer?: NodeJS.Timeout } = {};
      const sub = this.subscribe(inbox, (msg) => {
        clearTimeout(pending.timer);
        sub.unsubscribe();
        resolve(msg);
      });
      let matched: number;
      try {
        matched = this.#send(subject, encodePayload(value), inbox);
      } catch (err) {
        sub.unsubscribe();
        reject(err);
        return;
      }
      if (matched === 0) {
        sub.unsubscribe();
        reject(new BusError(`no one answers on ${subject} (the in-process bus has no subscriber there)`));
        return;
      }
      pending.timer = setTimeout(() => {
        sub.unsubscribe();
        reject(new BusError(`no reply on ${subject} within ${timeoutMs} ms (in-process bus)`));
      }, timeoutMs);
    });
  }

  requestMany(subject: string, value: unknown, opts: RequestOptions & { max?: number }): Promise<BusMessage[]> {
    checkSubject(subject);
    const inbox = `_INBOX.memory.${++this.#inbox}`;
    const got: BusMessage[] = [];
    return new Promise<BusMessage[]>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(got);
      };
      const sub = this.subscribe(inbox, (msg) => {
        got.push(msg);
        if (opts.max !== undefined && got.length >= opts.max) done();
      });
      const timer = setTimeout(done, opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
      try {
        this.#send(subject, encodePayload(value), inbox);
      } catch (err) {
        clearTimeout(timer);
        sub.unsubscribe();
        reject(err);
      }
    });
  }

  async flush(): Promise<void> {}

  async drain(): Promise<void> {
    if (this.#pending > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
    await this.close();
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#subs) s.live = false;
    this.#subs.clear();
  }

  state(): BusState {
    return { kind: 'memory', connected: !this.#closed, published: this.#published, delivered: this.#delivered, handlerErrors: this.#handlerErrors };
  }
}
