// JSON payloads of the bus: one encoding (src/json.ts) for both implementations.
import { toJson } from '../json';
import type { BusMessage } from './bus';
import { BusError } from './errors';

/** Largest payload bae publishes or accepts (NATS's default max_payload is 1 MiB). */
export const MAX_PAYLOAD = 1 << 20;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A value already encoded as JSON (as src/json.ts writes it): published as it is. For the agent's
 * event path, which encodes each event once for the bus and the store.
 */
export class JsonText {
  constructor(readonly text: string) {}
}

/** The JSON text of a payload (not yet checked against MAX_PAYLOAD). */
export const payloadText = (value: unknown): string => (value instanceof JsonText ? value.text : toJson(value));

export function encodePayload(value: unknown): Uint8Array {
  const data = encoder.encode(payloadText(value));
  if (data.length > MAX_PAYLOAD) throw new BusError(`message of ${data.length} bytes is over the bus's ${MAX_PAYLOAD}-byte limit`);
  return data;
}

export function decodePayload(subject: string, data: Uint8Array): unknown {
  if (data.length > MAX_PAYLOAD) throw new BusError(`message on ${subject} of ${data.length} bytes is over the ${MAX_PAYLOAD}-byte limit`);
  try {
    return JSON.parse(decoder.decode(data));
  } catch (err) {
    throw new BusError(`message on ${subject} is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** A BusMessage over a subject, payload and an answer function. */
export function makeMessage(subject: string, data: Uint8Array, reply: string | undefined, answer: (reply: string, data: Uint8Array) => void): BusMessage {
  return {
    subject,
    data,
    ...(reply !== undefined ? { reply } : {}),
    json: () => decodePayload(subject, data),
    respond: (value: unknown) => {
      if (reply !== undefined) answer(reply, encodePayload(value));
    },
  };
}
