// The fleet's nodes for the live view: the agent's bus carries every agent's heartbeat
// (bae.heartbeat.<node>, docs/bus.md); this keeps the newest of each, judged by the same rule as
// `bae nodes` (src/bus/heartbeat.ts). On NATS it starts from the node stream (the last heartbeat of
// every node, stopped ones too), then follows the subject. On the in-process bus the only heartbeat
// is this agent's own: the page says the node is standalone.
import { NatsBus, SUBJECTS, isHeartbeat, viewNodes, type Bus, type BusSubscription, type NodeView } from '../bus';
import { moduleLogger } from '../log';

const log = moduleLogger('web/fleet');

/** Nodes kept at most (a bound against a flood of names on the subject); the oldest go first. */
export const MAX_FLEET_NODES = 1000;

export interface FleetView {
  /** 'nats': the nodes are the fleet's; 'memory': this agent alone (embedded bus). */
  bus: 'memory' | 'nats';
  /** The NATS server's URL (credentials removed), null on the in-process bus. */
  url: string | null;
  standalone: boolean;
  /** Every node heard, live first, by name; with ageMs and live. */
  nodes: NodeView[];
}

export class FleetWatch {
  readonly #bus: Bus;
  /** node -> its newest heartbeat and when it was taken (ms, this host's clock). */
  readonly #beats = new Map<string, { time: string; value: unknown }>();
  readonly #sub: BusSubscription;
  readonly #now: () => number;
  /** Resolves once the node stream was read (or could not be). */
  readonly ready: Promise<void>;

  constructor(bus: Bus, now: () => number = Date.now) {
    this.#bus = bus;
    this.#now = now;
    // Heartbeats that arrive from now on; the time is this host's when it took one.
    this.#sub = bus.subscribe(SUBJECTS.allHeartbeats, (msg) => {
      let value: unknown;
      try {
        value = msg.json();
      } catch {
        return; // not JSON: not a heartbeat (the bus logs nothing for it; neither do we)
      }
      if (isHeartbeat(value)) this.#keep(value.node, { time: new Date(this.#now()).toISOString(), value });
    });
    this.ready = bus instanceof NatsBus ? this.#seed(bus) : Promise.resolve();
  }

  async #seed(bus: NatsBus): Promise<void> {
    try {
      for (const e of await bus.lastHeartbeats()) {
        const h = e.value;
        // A newer one that came on the subject meanwhile wins.
        if (isHeartbeat(h) && !this.#beats.has(h.node)) this.#keep(h.node, { time: e.time, value: h });
      }
    } catch (err) {
      log.warn({ err }, 'live view: the node stream could not be read; nodes show from their next heartbeat');
    }
  }

  #keep(node: string, beat: { time: string; value: unknown }): void {
    this.#beats.delete(node); // re-inserted last: the map's order is the order of the last heartbeats
    this.#beats.set(node, beat);
    if (this.#beats.size > MAX_FLEET_NODES) this.#beats.delete(this.#beats.keys().next().value!);
  }

  view(): FleetView {
    const nats = this.#bus.kind === 'nats';
    return { bus: this.#bus.kind, url: nats ? (this.#bus.state().url ?? null) : null, standalone: !nats, nodes: viewNodes([...this.#beats.values()], this.#now()) };
  }

  close(): void {
    this.#sub.unsubscribe();
  }
}
