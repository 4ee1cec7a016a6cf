// The events an agent holds while they cannot reach the event stream (NATS down, or more
// awaiting the stream's acknowledgement than the window allows): a bounded FIFO. A push is O(1)
// and never waits, so the kernel ring's reader is never blocked; an event beyond the bound is
// counted and let go. Events leave it in batches (event-publisher.ts).

/** An event waiting for the stream: its node and kind (the batch it goes in), its JSON text. */
export interface QueuedEvent {
  node: string;
  kind: string;
  json: string;
  /** When it was published (Date.now()), for the bus's lag. */
  at: number;
}

/** Events held by default (issue 14: at least 100k while NATS is down). */
export const DEFAULT_EVENT_BUFFER = 100_000;

export class EventQueue<T = QueuedEvent> {
  readonly capacity: number;
  #items: (T | undefined)[] = [];
  #head = 0;
  #dropped = 0;

  constructor(capacity = DEFAULT_EVENT_BUFFER) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`event buffer capacity must be a whole number >= 1, got ${capacity}`);
    this.capacity = capacity;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Events let go because the queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Adds at the back; false (counted) when full. */
  push(e: T): boolean {
    if (this.length >= this.capacity) {
      this.#dropped++;
      return false;
    }
    this.#items.push(e);
    return true;
  }

  /** Puts an event back at the front (it was counted when first pushed). */
  unshift(e: T): void {
    if (this.#head > 0) this.#items[--this.#head] = e;
    else this.#items.unshift(e);
  }

  /** The next event out, left in place. */
  peek(): T | undefined {
    return this.length ? this.#items[this.#head] : undefined;
  }

  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const e = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    // Compact once the consumed part dominates: amortised O(1).
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return e;
  }
}
