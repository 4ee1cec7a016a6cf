// An agent's heartbeat on bae.heartbeat.<node> (docs/bus.md "Heartbeats") and the rule that says
// which nodes are live. The agent publishes it (src/agent/bus-bridge.ts); `bae nodes` reads the
// node stream and the live view (src/web/fleet.ts) follows the subject: both judge it here.

/** What an agent says of itself on bae.heartbeat.<node> (docs/bus.md "Heartbeats"). */
export interface Heartbeat {
  node: string;
  host: string;
  pid: number;
  time: string;
  /** The period: a node whose last heartbeat is older than 3 of them is not live. */
  intervalMs: number;
  /** 'stopped' in the last heartbeat of an agent that stops. */
  state: 'running' | 'stopped';
  mode: 'inline' | 'ingress';
  ifaces: string[];
  pinDir: string;
  /** The policy set's generation in the kernel (0: none applied yet). */
  generation: number | null;
  /** Entries in the kernel blocklist (addresses and prefixes); null when it could not be read, absent from older agents. */
  blocks?: number | null;
  uptimeMs: number;
  /** How far behind the bus is: events waiting for the stream, awaiting its acknowledgement, dropped; round trip. */
  bus: { kind: 'memory' | 'nats'; connected: boolean; server: string | null; buffered: number; inFlight: number; dropped: number; lagMs: number; rttMs: number | null };
}

/** Heartbeat periods after which a silent node is not live. */
export const LIVE_PERIODS = 3;

export interface NodeView extends Heartbeat {
  /** How long ago its last heartbeat was taken (by the stream, or by the reader) (ms). */
  ageMs: number;
  live: boolean;
}

/** Whether `value` has the two fields a heartbeat cannot do without (anything else on the subject is skipped). */
export function isHeartbeat(value: unknown): value is Heartbeat {
  const h = value as Heartbeat | undefined;
  return typeof h?.node === 'string' && typeof h.intervalMs === 'number';
}

/** The nodes of `beats` (newest heartbeat of each), live ones first, by name; `time` and `now` in ms. */
export function viewNodes(beats: readonly { time: string; value: unknown }[], now: number): NodeView[] {
  // One per node, the newest (a heartbeat that arrives while the stream is read comes too).
  const newest = new Map<string, NodeView>();
  for (const b of beats) {
    const h = b.value;
    if (!isHeartbeat(h)) continue; // not an agent's heartbeat
    const ageMs = Math.max(0, now - Date.parse(b.time));
    const prev = newest.get(h.node);
    if (prev && prev.ageMs <= ageMs) continue;
    newest.set(h.node, { ...h, ageMs, live: h.state !== 'stopped' && ageMs <= LIVE_PERIODS * h.intervalMs });
  }
  return [...newest.values()].sort((a, b) => Number(b.live) - Number(a.live) || a.node.localeCompare(b.node));
}
