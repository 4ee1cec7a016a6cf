// The event stream's message format (docs/bus.md "The event stream's format"): the stream keeps
// several events per message, because one acknowledged JetStream publish per event cannot keep up
// with the kernel (measured: about 70k acknowledged publishes/s from one process on an idle
// two-core machine, 15-30k/s for the agent; issue 14 asks for 100k events/s). A batch is JSON,
// versioned, readable without bae:
//
//   subject  bae.eventbatch.<node>
//   payload  {"v":1,"node":"edge-1","events":[{"kind":"match","event":{...}}, ...]}
//
// Each entry is the event that bae.events.<node>.<kind> carries live (the same JSON text), so
// unpacking a batch gives back exactly what a live subscriber saw. The stream stores batches
// only; the live per-event subjects stay core NATS (at most once).
import { BusError } from './errors';
import { checkToken } from './subjects';

/** The format version this bae writes and reads. */
export const EVENT_BATCH_VERSION = 1;
/** The subject prefix of batches: bae.eventbatch.<node>. */
export const EVENT_BATCH_PREFIX = 'bae.eventbatch.';
/** Every node's batches: what the event stream stores. */
export const ALL_EVENT_BATCHES = 'bae.eventbatch.>';
/** Events in one batch, at most. */
export const MAX_BATCH_EVENTS = 1000;
/** Bytes of one batch, about at most (one event alone may make a larger one, up to MAX_EVENT_BYTES). */
export const MAX_BATCH_BYTES = 128 * 1024;
/** Largest event the stream takes (its JSON), so that a batch of one stays under NATS's 1 MiB. */
export const MAX_EVENT_BYTES = (1 << 20) - 4096;

/** The subject of `node`'s batches. */
export const eventBatchSubject = (node: string) => `${EVENT_BATCH_PREFIX}${checkToken(node, 'node name')}`;

/** One event as the batch writer holds it: its kind and its JSON text. */
export interface BatchEntry {
  kind: string;
  json: string;
}

/**
 * About the bytes an entry adds to a batch (its JSON, the envelope, a comma): exact for ASCII; a
 * name with other characters takes up to 3 bytes each, which MAX_BATCH_BYTES leaves room for.
 */
export const entryBytes = (e: BatchEntry) => e.json.length + e.kind.length + 21;

/**
 * The payload of a batch of `node`'s events. Node and kinds are subject tokens (checked where the
 * event was published: letters, digits, '_' and '-'), so they need no JSON escaping; each event's
 * JSON goes in as it is. One string, encoded once.
 */
export function encodeEventBatch(node: string, entries: readonly BatchEntry[]): Buffer {
  const parts = new Array<string>(entries.length);
  for (let i = 0; i < entries.length; i++) parts[i] = `{"kind":"${entries[i]!.kind}","event":${entries[i]!.json}}`;
  return Buffer.from(`{"v":${EVENT_BATCH_VERSION},"node":"${node}","events":[${parts.join(',')}]}`, 'utf8');
}

/** One event unpacked from a stream message: its live subject and its value. */
export interface UnpackedEvent {
  subject: string;
  value: unknown;
}

const decoder = new TextDecoder();

/**
 * The events of one stored message: a batch (bae.eventbatch.<node>) gives its entries, each with
 * the subject it has live (bae.events.<node>.<kind>); a message of an earlier bae (one event on
 * bae.events.<node>.<kind>) gives itself. Throws a BusError naming the subject for a payload that
 * is not a batch this bae reads (not JSON, another version, a malformed entry).
 */
export function unpackStoredMessage(subject: string, data: Uint8Array): UnpackedEvent[] {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch (err) {
    throw new BusError(`message on ${subject} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!subject.startsWith(EVENT_BATCH_PREFIX)) return [{ subject, value }];
  const b = value as { v?: unknown; node?: unknown; events?: unknown };
  if (b === null || typeof b !== 'object' || b.v !== EVENT_BATCH_VERSION) {
    throw new BusError(`message on ${subject} is not an event batch of version ${EVENT_BATCH_VERSION} (v: ${JSON.stringify((b as { v?: unknown } | null)?.v)})`);
  }
  if (typeof b.node !== 'string' || !Array.isArray(b.events)) throw new BusError(`event batch on ${subject} has no node or no events`);
  const prefix = `bae.events.${b.node}.`;
  return b.events.map((e: unknown, i) => {
    const entry = e as { kind?: unknown; event?: unknown } | null;
    if (entry === null || typeof entry !== 'object' || typeof entry.kind !== 'string') throw new BusError(`event batch on ${subject}: entry ${i} has no kind`);
    return { subject: prefix + entry.kind, value: entry.event };
  });
}

/**
 * The stream subject that holds the events an event-subject pattern selects: the node's batches
 * when the pattern names a node (bae.events.edge-1.>), undefined (every batch) otherwise.
 */
export function batchFilterOf(pattern: string): string | undefined {
  const t = pattern.split('.');
  if (t[0] !== 'bae' || t[1] !== 'events') return undefined;
  const node = t[2];
  return node !== undefined && node !== '*' && node !== '>' ? eventBatchSubject(node) : undefined;
}
