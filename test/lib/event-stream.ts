// Counting the events that the event stream BAE_EVENTS holds, as a reader that is not bae would:
// the nats client alone and the documented format (docs/bus.md "The event stream's format"):
// messages on bae.eventbatch.<node>, each {"v":1,"node":..,"events":[{"kind":..,"event":{..}},..]}.
// It does not use bae's own reader (src/bus/event-batch.ts), so a test that counts with it also
// checks that the format is what the docs say.
import assert from 'node:assert/strict';
import { AckPolicy, DeliverPolicy, connect, type ConnectionOptions } from 'nats';

export interface StoredCount {
  /** Events of the kind asked for. */
  events: number;
  /** Stream messages (batches) read. */
  messages: number;
}

/**
 * Counts `node`'s events of `kind` in BAE_EVENTS (every kind when omitted). Bounded by
 * `timeoutMs` as a whole (the client's ordered consumer retries on its own while a cluster elects
 * a leader): it rejects, naming what it had counted, when the stream does not deliver what it
 * holds within it.
 */
export async function storedEventCount(servers: string | string[], node: string, kind?: string, opts: Partial<ConnectionOptions> = {}, timeoutMs = 30_000): Promise<StoredCount> {
  const nc = await connect({ servers: typeof servers === 'string' ? servers.split(',') : servers, timeout: 3000, ...opts });
  const count: StoredCount = { events: 0, messages: 0 };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`BAE_EVENTS: ${count.messages} messages (${count.events} events) read, then nothing within ${timeoutMs} ms`)), timeoutMs);
  });
  let made: string | undefined;
  const jsm = await nc.jetstreamManager({ timeout: 5000 });
  const read = async (): Promise<StoredCount> => {
    // A plain ephemeral pull consumer, not the client's ordered one: that one retries by itself,
    // forever, while a cluster elects a leader, and kept a test process from exiting.
    const ci = await jsm.consumers.add('BAE_EVENTS', { ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All, filter_subject: `bae.eventbatch.${node}`, inactive_threshold: 60_000_000_000 });
    made = ci.name;
    if (ci.num_pending === 0) return count;
    const consumer = await nc.jetstream({ timeout: 5000 }).consumers.get('BAE_EVENTS', ci.name);
    for (;;) {
      const m = await consumer.next({ expires: 2000 });
      if (!m) continue;
      const batch = JSON.parse(new TextDecoder().decode(m.data)) as { v: number; node: string; events: { kind: string; event: unknown }[] };
      assert.equal(batch.v, 1, `message ${m.seq} of version 1`);
      assert.equal(batch.node, node, `message ${m.seq} of node ${node}`);
      count.messages++;
      for (const e of batch.events) if (kind === undefined || e.kind === kind) count.events++;
      if (m.info.pending === 0) return count;
    }
  };
  const reading = read();
  reading.catch(() => {}); // after the deadline, the close below makes it reject: nobody waits for it then
  try {
    return await Promise.race([reading, deadline]);
  } finally {
    clearTimeout(timer);
    if (made) await jsm.consumers.delete('BAE_EVENTS', made).catch(() => {});
    // Closing ends the reader's loop too (a pending next() rejects; nothing then stays awaited).
    await nc.close();
  }
}
