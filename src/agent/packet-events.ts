// Packet events: frames that bae sent rather than saw (`bae inject`, `bae reconstruct`, a policy's
// inject action), told to the agent so that they join its event stream: the bus
// (bae.events.<node>.injected / .reconstructed), hence the live view, NATS and whoever listens
// (docs/inject.md "Packet events"). A CLI command runs in a process of its own: it hands the event
// to the agent of its pin directory over the control socket (op 'event'); no agent there, the
// event is not published (the command's own output and the store still have the frames).
import * as path from 'node:path';
import { moduleLogger } from '../log';
import { NoAgentError, agentRequest, agentSocketPath } from './client';

const log = moduleLogger('agent/packet-events');

export const PACKET_EVENT_KINDS = ['injected', 'reconstructed'] as const;
export type PacketEventKind = (typeof PACKET_EVENT_KINDS)[number];

/** Longest text field of a packet event (a reason, a policy or interface name, an address). */
const MAX_TEXT = 256;
/** Events in one request at most (a command that has more folds them: see reconstruct). */
export const MAX_PACKET_EVENTS = 100;
/** How long a command waits for the agent to take its event (it has sent its frames already). */
export const REPORT_TIMEOUT_MS = 1000;

/**
 * One event for a group of frames sent together: the same conversation, kind and reason. On the
 * bus the agent adds `node` (docs/inject.md "Packet events").
 */
export interface PacketEvent {
  kind: PacketEventKind;
  /** When the last frame left (ISO time). */
  time: string;
  /** Who sent them: 'bae inject', 'bae reconstruct', 'policy'. */
  by: string;
  /** Why: the forged kind ('tcp-rst') for injected frames, the drop's reason for reconstructed ones. */
  reason: string;
  /** The policy behind them (a reconstructed frame's dropping policy, an inject action's), or null. */
  policy: string | null;
  /** The sender's and receiver's addresses ('' when the frames carry none, e.g. not IP). */
  src: string;
  dst: string;
  sport: number | null;
  dport: number | null;
  proto: 'tcp' | 'udp' | 'icmp' | null;
  /** The interface the frames left by (null: unknown). */
  port: string | null;
  /** Frames sent (repeats counted). */
  frames: number;
}

const FIELDS = ['kind', 'time', 'by', 'reason', 'policy', 'src', 'dst', 'sport', 'dport', 'proto', 'port', 'frames'] as const;

/** The event as the agent takes it from a socket, or what is wrong with it (the field named). */
export function checkPacketEvent(value: unknown): PacketEvent | string {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return 'event: expected an object';
  const v = value as Record<string, unknown>;
  const extra = Object.keys(v).find((k) => !(FIELDS as readonly string[]).includes(k));
  if (extra !== undefined) return `event.${extra}: not a field of a packet event (${FIELDS.join(', ')})`;
  const text = (k: string, nullable: boolean, empty = false): string | undefined => {
    const x = v[k];
    if (x === null && nullable) return undefined;
    if (typeof x !== 'string' || x.length > MAX_TEXT || (!empty && x.length === 0)) return `event.${k}: expected ${empty ? 'a' : 'a non-empty'} string of at most ${MAX_TEXT} characters${nullable ? ' or null' : ''}`;
    return undefined;
  };
  if (!(PACKET_EVENT_KINDS as readonly string[]).includes(v.kind as string)) return `event.kind: expected one of ${PACKET_EVENT_KINDS.join(', ')}`;
  if (typeof v.time !== 'string' || Number.isNaN(Date.parse(v.time))) return 'event.time: expected an ISO time';
  const bad = text('by', false) ?? text('reason', false) ?? text('policy', true) ?? text('src', false, true) ?? text('dst', false, true) ?? text('port', true);
  if (bad) return bad;
  for (const k of ['sport', 'dport'] as const) {
    const p = v[k];
    if (p !== null && !(Number.isInteger(p) && (p as number) >= 0 && (p as number) <= 65535)) return `event.${k}: expected a port (0-65535) or null`;
  }
  if (v.proto !== null && !['tcp', 'udp', 'icmp'].includes(v.proto as string)) return 'event.proto: expected tcp, udp, icmp or null';
  if (!Number.isSafeInteger(v.frames) || (v.frames as number) < 0) return 'event.frames: expected a whole number';
  return v as unknown as PacketEvent;
}

/**
 * Hands `events` to the agent of `pinDir` (op 'event'). Whether an agent took them: false when none
 * runs there (said at debug: no agent is a normal case) or it refused (a warning naming why).
 * Never throws: the frames are sent whatever happens to their events.
 */
export async function reportPacketEvents(pinDir: string, events: readonly PacketEvent[]): Promise<boolean> {
  if (events.length === 0) return true;
  if (events.length > MAX_PACKET_EVENTS) throw new RangeError(`reportPacketEvents: ${events.length} events, at most ${MAX_PACKET_EVENTS}`);
  const socket = agentSocketPath(pinDir);
  try {
    await agentRequest(socket, { op: 'event', pinDir: path.resolve(pinDir), events: [...events] }, REPORT_TIMEOUT_MS);
    return true;
  } catch (err) {
    if (err instanceof NoAgentError) log.debug({ socket, err: err.message }, 'no agent: packet events not published');
    else log.warn({ socket, err: (err as Error).message }, 'the agent did not take the packet events');
    return false;
  }
}
