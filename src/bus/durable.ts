// Commands that must not be lost while an agent is away (docs/bus.md "Commands kept for agents
// that are away"): a sender that wants it (`bae block --nats`) publishes a command twice, on the
// block subject (core NATS: fast, at most once) and on its kept subject bae.kept.<subject>, which
// the stream COMMAND_STREAM stores (acknowledged to the sender). Kept apart from the block subject
// so that a request on it is answered by the agents only, never by the stream. Each agent
// has a durable consumer of its own (named after its node) that the server remembers. A command
// the agent got over core NATS is also delivered here (the command_id makes the second one a
// no-op); one published while the agent was disconnected, reconnecting to another server of a
// cluster, or not running at all, arrives here once it is back. Each is acknowledged after it
// was handled.
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager, type NatsError } from 'nats';
import { moduleLogger } from '../log';

const log = moduleLogger('bus/durable');

/** The JetStream stream of block commands. */
export const COMMAND_STREAM = 'BAE_COMMANDS';
/** Where the kept copy of a command on `subject` goes. */
export const keptSubject = (subject: string) => `bae.kept.${subject}`;
const KEPT_ALL = 'bae.kept.>';
/** How long a command is kept for an agent that was away (1 day). */
const COMMAND_MAX_AGE_MS = 24 * 3600 * 1000;
/** A durable consumer of an agent that does not come back is removed after this (7 days). */
const INACTIVE_MS = 7 * 24 * 3600 * 1000;

export interface DurableSubscription {
  /** Stops delivery; the server keeps the consumer (and what it has not delivered). Safe twice. */
  stop(): void;
}

/** Makes sure COMMAND_STREAM exists; false (logged) when it cannot be made. */
export async function ensureCommandStream(jsm: JetStreamManager, replicas: number): Promise<boolean> {
  try {
    await jsm.streams.info(COMMAND_STREAM);
    return true;
  } catch (err) {
    if ((err as NatsError).code !== '404') {
      log.warn({ err: (err as Error).message }, `commands are not kept (${COMMAND_STREAM}): one published while this agent is away is lost`);
      return false;
    }
  }
  try {
    await jsm.streams.add({ name: COMMAND_STREAM, subjects: [KEPT_ALL], storage: StorageType.File, retention: RetentionPolicy.Limits, num_replicas: replicas, max_age: COMMAND_MAX_AGE_MS * 1_000_000 });
    log.info({ stream: COMMAND_STREAM, replicas }, 'stream created');
    return true;
  } catch (err) {
    if (/already in use|exists/i.test(String((err as Error).message))) return true;
    log.warn({ err: (err as Error).message }, `commands are not kept (${COMMAND_STREAM}): one published while this agent is away is lost`);
    return false;
  }
}

/**
 * Delivers every kept command of `subject` in COMMAND_STREAM that consumer `name` has not acknowledged
 * (a new consumer starts with what is published from now on), to `handler`, acknowledging each
 * after it; the client re-pulls after a reconnect on its own.
 */
export async function consumeDurable(js: JetStreamClient, jsm: JetStreamManager, name: string, subject: string, handler: (data: Uint8Array, subject: string) => void): Promise<DurableSubscription> {
  try {
    await jsm.consumers.info(COMMAND_STREAM, name);
  } catch (err) {
    if ((err as NatsError).code !== '404') throw err;
    await jsm.consumers.add(COMMAND_STREAM, {
      durable_name: name,
      filter_subject: keptSubject(subject),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      inactive_threshold: INACTIVE_MS * 1_000_000,
    });
  }
  const consumer = await js.consumers.get(COMMAND_STREAM, name);
  const messages = await consumer.consume({ max_messages: 256 });
  let stopped = false;
  void (async () => {
    for await (const m of messages) {
      try {
        handler(m.data, subject);
      } catch (err) {
        log.warn({ err, subject: m.subject }, 'a kept command could not be handled');
      }
      m.ack();
    }
  })().catch((err: unknown) => {
    if (!stopped) log.warn({ err }, `reading ${COMMAND_STREAM} stopped`);
  });
  return {
    stop: () => {
      if (stopped) return;
      stopped = true;
      messages.stop();
    },
  };
}
