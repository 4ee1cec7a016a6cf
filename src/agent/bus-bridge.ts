// The agent on the message bus (docs/bus.md): block commands in (SecBeat's BlockCommand on the
// block subject, applied to the kernel blocklist once per command_id), kernel events out (the
// policy_events ring buffer to bae.events.<node>.<kind>, kept by JetStream on NATS), and a
// telemetry digest every few seconds to bae.telemetry.<node>, and a heartbeat (who runs where, in
// which mode, with which policy generation, how far behind the bus is) to bae.heartbeat.<node>.
// Kept apart from agent.ts: the agent hands in its pin directory and reads the bridge's state for
// its status.
import os from 'node:os';
import { JsonText, NatsBus, SUBJECTS, SeenIds, makeMessage, parseBlockCommand, type Bus, type BusMessage, type BusSubscription, type DurableSubscription, type Heartbeat } from '../bus';
import { POLICY_MAPS, RingBuffer, decodePolicyCtl, decodePolicyEvent, openLoadedMap, sumPolicyStatsPerCpu, type BpfMap } from '../datapath';
import { moduleLogger } from '../log';
import { Blocklist, monotonicNs, storedNames, viewEvent, type PolicyEventView } from '../policy';
import type { PacketEvent } from './packet-events';
import { ALL_NODES, applyPolicyRequest, checkPolicyRequest, type PolicyReply, type PolicyRequest } from './bus-policy';

const log = moduleLogger('agent/bus');

export const DEFAULT_TELEMETRY_MS = 5000;
/** Heartbeat period; `bae nodes` counts a node live while its last heartbeat is under 3 periods old. */
export const DEFAULT_HEARTBEAT_MS = 2000;

/** What an agent says of itself on bae.heartbeat.<node>: the bus area's Heartbeat (src/bus/heartbeat.ts). */
export type { Heartbeat };

export interface BusBridgeOptions {
  bus: Bus;
  /** This node's name in subjects (default: the host name's first label). */
  node: string;
  pinDir: string;
  /** Where block commands arrive (default bae.commands.block). */
  blockSubject?: string;
  /** Telemetry period (default 5000 ms; 0: none). */
  telemetryMs?: number;
  /** Command ids remembered for idempotence (default 10000). */
  seenIds?: number;
  /** Take the kernel's events from its ring buffer and publish them (default true). The ring has
   * one reader: without a NATS server nobody hears them on the bus, so the CLI leaves them to
   * `bae events` then. */
  readEvents?: boolean;
  /** Also hands each event read to this (the store), besides the bus, with its JSON (as toJson writes it). */
  onEvent?: (event: PolicyEventView, json: string) => void;
  /** Heartbeat period (default DEFAULT_HEARTBEAT_MS; 0: none). */
  heartbeatMs?: number;
  /** The agent's mode and ports, for the heartbeat. */
  identity?: { mode: 'inline' | 'ingress'; ifaces: string[] };
}

export interface BusBridgeState {
  node: string;
  bus: ReturnType<Bus['state']>;
  blockSubject: string;
  commands: { applied: number; duplicates: number; refused: number; failed: number };
  policy: { applied: number; refused: number };
  events: { published: number };
  telemetry: { published: number; periodMs: number };
  heartbeats: { published: number; periodMs: number };
}

/** The answer to a block command sent as a request (a plain publish gets none). */
export type CommandReply = { ok: true; node: string; command_id: string; duplicate: boolean } | { ok: false; node: string; command_id?: string; errors: string[] };

/**
 * The view as toJson(v) writes it (same keys, same order, its two bigints as decimal strings),
 * written directly: at 100k events/s toJson's replacer alone took a fifth of the agent's time per
 * event. Addresses and the time are plain ASCII; the names go through JSON.stringify.
 */
export function viewJson(v: PolicyEventView): string {
  return `{"kind":${JSON.stringify(v.kind)},"policy":${JSON.stringify(v.policy)},"policyId":${v.policyId},"scope":${JSON.stringify(v.scope)},"src":"${v.src}","dst":"${v.dst}","value":"${v.value}","timeNs":"${v.timeNs}","time":"${v.time}"}`;
}

export class BusBridge {
  readonly node: string;
  readonly #bus: Bus;
  readonly #pinDir: string;
  readonly #blockSubject: string;
  readonly #telemetryMs: number;
  readonly #seen: SeenIds;
  /** Ids applied from the command stream before their core NATS copy came (that copy is answered as applied). */
  readonly #viaStream = new SeenIds(10_000);
  readonly #answered = new SeenIds(10_000);
  #kept: Promise<DurableSubscription | undefined> = Promise.resolve(undefined);
  readonly #blocklist: Blocklist;
  readonly #eventsMap: BpfMap;
  readonly #statsMap: BpfMap;
  readonly #ctlMap: BpfMap;
  readonly #heartbeatMs: number;
  readonly #identity: { mode: 'inline' | 'ingress'; ifaces: string[] };
  readonly #heartbeatTimer: NodeJS.Timeout | undefined;
  readonly #ring: RingBuffer | undefined;
  readonly #subs: BusSubscription[];
  readonly #onEventHook: ((event: PolicyEventView, json: string) => void) | undefined;
  /** Applies one after the other (the apply lock would refuse a second one meanwhile). */
  #applying: Promise<unknown> = Promise.resolve();
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #startedAt = Date.now();
  #names: Map<number, string>;
  #namesAt = 0;
  /** bae.events.<node>.<kind> of each kind seen (a handful). */
  readonly #eventSubjects = new Map<string, string>();
  #counts = { applied: 0, duplicates: 0, refused: 0, failed: 0, events: 0, telemetry: 0, heartbeats: 0, policyApplied: 0, policyRefused: 0 };
  #stopped = false;

  private constructor(o: BusBridgeOptions, maps: { blocklist: Blocklist; events: BpfMap; stats: BpfMap; ctl: BpfMap }) {
    this.node = o.node;
    this.#bus = o.bus;
    this.#pinDir = o.pinDir;
    this.#blockSubject = o.blockSubject ?? SUBJECTS.block;
    this.#telemetryMs = o.telemetryMs ?? DEFAULT_TELEMETRY_MS;
    this.#seen = new SeenIds(o.seenIds ?? 10_000);
    this.#blocklist = maps.blocklist;
    this.#eventsMap = maps.events;
    this.#statsMap = maps.stats;
    this.#ctlMap = maps.ctl;
    this.#heartbeatMs = o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.#identity = o.identity ?? { mode: 'ingress', ifaces: [] };
    this.#names = storedNames(o.pinDir);
    this.#onEventHook = o.onEvent;
    this.#ring = (o.readEvents ?? true) ? new RingBuffer(maps.events, (rec) => this.#onEvent(rec)) : undefined;
    this.#subs = [
      o.bus.subscribe(this.#blockSubject, (msg) => this.#onCommand(msg)),
      o.bus.subscribe(SUBJECTS.policy(o.node), (msg) => this.#onPolicy(msg)),
      o.bus.subscribe(SUBJECTS.policy(ALL_NODES), (msg) => this.#onPolicy(msg)),
    ];
    if (this.#telemetryMs > 0) {
      this.#timer = setInterval(() => this.#publishTelemetry(), this.#telemetryMs);
      this.#timer.unref();
    }
    if (this.#heartbeatMs > 0) {
      this.#heartbeatTimer = setInterval(() => void this.#publishHeartbeat('running'), this.#heartbeatMs);
      this.#heartbeatTimer.unref();
    }
  }

  /** Opens the maps it needs at `pinDir`, subscribes, starts reading events; undoes it all on failure. */
  static start(o: BusBridgeOptions): BusBridge {
    SUBJECTS.telemetry(o.node); // the node name is one subject token, or a BusError here
    const opened: { close(): void }[] = [];
    try {
      const blocklist = Blocklist.open(o.pinDir, 'bae agent');
      opened.push(blocklist);
      const events = openLoadedMap(POLICY_MAPS.events, o.pinDir, 'bae agent');
      opened.push(events);
      const stats = openLoadedMap(POLICY_MAPS.stats, o.pinDir, 'bae agent');
      opened.push(stats);
      const ctl = openLoadedMap(POLICY_MAPS.ctl, o.pinDir, 'bae agent');
      opened.push(ctl);
      const bridge = new BusBridge(o, { blocklist, events, stats, ctl });
      bridge.#ring?.consume(); // what waited before the agent started
      if (bridge.#heartbeatMs > 0) void bridge.#publishHeartbeat('running'); // at once: `bae nodes` sees it now
      // Commands published while this agent is away (disconnected, or not running) come from the stream.
      if (o.bus instanceof NatsBus) {
        bridge.#kept = o.bus.keepCommands(o.node, bridge.#blockSubject, (data, subject) => bridge.#onCommand(makeMessage(subject, data, undefined, () => {}), true));
      }
      log.info({ node: o.node, bus: o.bus.kind, url: o.bus.state().url, blockSubject: bridge.#blockSubject }, 'on the bus');
      return bridge;
    } catch (err) {
      opened.forEach((m) => m.close());
      throw err;
    }
  }

  /** `fromStream`: a copy kept by the command stream (durable.ts), seen again or not. */
  #onCommand(msg: BusMessage, fromStream = false): void {
    let reply: CommandReply;
    let value: unknown;
    try {
      value = msg.json();
    } catch (err) {
      if (fromStream) return; // refused (and counted) as its core NATS copy
      this.#counts.refused++;
      log.warn({ subject: msg.subject, err: (err as Error).message }, 'block command refused');
      msg.respond({ ok: false, node: this.node, errors: [(err as Error).message] } satisfies CommandReply);
      return;
    }
    const checked = parseBlockCommand(value);
    if ('errors' in checked) {
      if (fromStream) return;
      this.#counts.refused++;
      const id = typeof (value as { command_id?: unknown })?.command_id === 'string' ? (value as { command_id: string }).command_id : undefined;
      log.warn({ subject: msg.subject, command_id: id, errors: checked.errors }, 'block command refused: nothing changed');
      reply = { ok: false, node: this.node, ...(id !== undefined ? { command_id: id } : {}), errors: checked.errors };
      msg.respond(reply);
      return;
    }
    const { command: cmd, target, ttlNs, escalate } = checked;
    if (this.#seen.has(cmd.command_id)) {
      // The stream's copy of a command handled already, or the core copy of one the stream brought first: not a duplicate of the sender's.
      if (fromStream) return;
      if (this.#viaStream.has(cmd.command_id) && !this.#answered.has(cmd.command_id)) {
        this.#answered.add(cmd.command_id);
        msg.respond({ ok: true, node: this.node, command_id: cmd.command_id, duplicate: false } satisfies CommandReply);
        return;
      }
      this.#counts.duplicates++;
      log.info({ command_id: cmd.command_id, ip: target.address }, 'block command seen before: not applied again');
      msg.respond({ ok: true, node: this.node, command_id: cmd.command_id, duplicate: true } satisfies CommandReply);
      return;
    }
    try {
      if (cmd.action === 'block') this.#blocklist.block(target, ttlNs, escalate);
      else this.#blocklist.unblock(target);
    } catch (err) {
      this.#counts.failed++;
      log.error({ err, command_id: cmd.command_id }, 'block command could not be applied');
      msg.respond({ ok: false, node: this.node, command_id: cmd.command_id, errors: [(err as Error).message] } satisfies CommandReply);
      return;
    }
    // Right after the map update returned: when the kernel enforces it (bench/block-propagation.ts reads it).
    const appliedNs = monotonicNs();
    this.#seen.add(cmd.command_id);
    if (fromStream) this.#viaStream.add(cmd.command_id);
    this.#counts.applied++;
    log.info({ command_id: cmd.command_id, action: cmd.action, ip: target.address, seconds: cmd.duration_seconds, reason: cmd.reason, source: cmd.source }, `${cmd.action} applied`);
    msg.respond({ ok: true, node: this.node, command_id: cmd.command_id, duplicate: false } satisfies CommandReply);
    this.#safePublishEvent('command', { node: this.node, command: cmd, applied: new Date().toISOString(), appliedNs });
  }

  #onPolicy(msg: BusMessage): void {
    let errors: string[];
    let value: unknown;
    try {
      value = msg.json();
      errors = checkPolicyRequest(value);
    } catch (err) {
      errors = [(err as Error).message];
    }
    if (errors.length) {
      this.#counts.policyRefused++;
      log.warn({ subject: msg.subject, errors }, 'policy request refused: nothing changed');
      msg.respond({ ok: false, node: this.node, code: 'BAE_BUS', error: errors.join('; ') } satisfies PolicyReply);
      return;
    }
    const run = this.#applying.then(() => applyPolicyRequest(value as PolicyRequest, this.node, this.#pinDir));
    this.#applying = run;
    void run.then((reply) => {
      if (reply.ok) this.#counts.policyApplied++;
      else this.#counts.policyRefused++;
      msg.respond(reply);
    });
  }

  #onEvent(record: Buffer): void {
    const e = decodePolicyEvent(record);
    if (!this.#names.has(e.policyId) && Date.now() - this.#namesAt > 1000) {
      // A policy applied since: its name, read again at most once a second.
      this.#names = storedNames(this.#pinDir);
      this.#namesAt = Date.now();
    }
    const v = viewEvent(e, this.#names, process.hrtime.bigint(), Date.now());
    const json = viewJson(v);
    this.#onEventHook?.(v, json);
    // {"node":..., ...the view}: the node is a subject token (no escaping needed).
    this.#safePublishEvent(v.kind, new JsonText(`{"node":"${this.node}",${json.slice(1)}`));
  }

  /** A packet event (frames bae sent: src/agent/packet-events.ts) on bae.events.<node>.<kind>, like a kernel event. */
  publishPacketEvent(e: PacketEvent): void {
    this.#safePublishEvent(e.kind, { node: this.node, ...e });
  }

  #safePublishEvent(kind: string, value: unknown): void {
    try {
      let subject = this.#eventSubjects.get(kind);
      if (subject === undefined) {
        subject = SUBJECTS.event(this.node, kind);
        this.#eventSubjects.set(kind, subject);
      }
      this.#bus.publishEvent(subject, value);
      this.#counts.events++;
    } catch (err) {
      log.warn({ err, kind }, 'an event could not be published');
    }
  }

  /** The digest published on bae.telemetry.<node>. */
  telemetry(): Record<string, unknown> {
    const perCpu = this.#statsMap.lookupPerCpu(Buffer.alloc(4));
    return {
      node: this.node,
      host: os.hostname(),
      time: new Date().toISOString(),
      uptimeMs: Date.now() - this.#startedAt,
      // A count, not the list: this runs between block commands (Blocklist.count).
      blocks: { active: this.#blocklist.count() },
      policy: perCpu ? sumPolicyStatsPerCpu(perCpu) : null,
      commands: { applied: this.#counts.applied, duplicates: this.#counts.duplicates, refused: this.#counts.refused, failed: this.#counts.failed },
      events: { published: this.#counts.events },
    };
  }

  #publishTelemetry(): void {
    try {
      this.#bus.publish(SUBJECTS.telemetry(this.node), this.telemetry());
      this.#counts.telemetry++;
    } catch (err) {
      log.warn({ err }, 'telemetry could not be published');
    }
  }

  /** The heartbeat as it would go out now (the round trip is the last one measured). */
  heartbeat(state: Heartbeat['state'] = 'running'): Heartbeat {
    const b = this.#bus.state() as ReturnType<Bus['state']> & { server?: string | null; eventsBuffered?: number; eventsInFlight?: number; eventsDropped?: number; eventLagMs?: number; rttMs?: number | null };
    let generation: number | null = null;
    try {
      const raw = this.#ctlMap.lookup(Buffer.alloc(4));
      if (raw) generation = decodePolicyCtl(raw).gen;
    } catch {
      // an unreadable map is said as null, not as generation 0
    }
    return {
      node: this.node,
      host: os.hostname(),
      pid: process.pid,
      time: new Date().toISOString(),
      intervalMs: this.#heartbeatMs,
      state,
      mode: this.#identity.mode,
      ifaces: this.#identity.ifaces,
      pinDir: this.#pinDir,
      generation,
      blocks: this.#blockCount(),
      uptimeMs: Date.now() - this.#startedAt,
      bus: { kind: b.kind, connected: b.connected, server: b.server ?? null, buffered: b.eventsBuffered ?? 0, inFlight: b.eventsInFlight ?? 0, dropped: b.eventsDropped ?? 0, lagMs: b.eventLagMs ?? 0, rttMs: b.rttMs ?? null },
    };
  }

  /** Entries in the blocklist for the heartbeat (null when unreadable: not said as 0); a count, cheap at every beat. */
  #blockCount(): number | null {
    try {
      return this.#blocklist.count();
    } catch {
      return null;
    }
  }

  async #publishHeartbeat(state: Heartbeat['state']): Promise<void> {
    try {
      const rtt = (this.#bus as { rtt?: () => Promise<number | null> }).rtt;
      if (rtt && state === 'running') await rtt.call(this.#bus);
      if (this.#stopped && state === 'running') return;
      this.#bus.publish(SUBJECTS.heartbeat(this.node), this.heartbeat(state));
      this.#counts.heartbeats++;
    } catch (err) {
      log.warn({ err }, 'heartbeat could not be published');
    }
  }

  state(): BusBridgeState {
    const c = this.#counts;
    return {
      node: this.node,
      bus: this.#bus.state(),
      blockSubject: this.#blockSubject,
      commands: { applied: c.applied, duplicates: c.duplicates, refused: c.refused, failed: c.failed },
      policy: { applied: c.policyApplied, refused: c.policyRefused },
      events: { published: c.events },
      telemetry: { published: c.telemetry, periodMs: this.#telemetryMs },
      heartbeats: { published: c.heartbeats, periodMs: this.#heartbeatMs },
    };
  }

  /** Stops reading events and commands (what the kernel enforces stays). Safe twice. */
  stop(): void {
    if (this.#stopped) return;
    clearInterval(this.#timer);
    clearInterval(this.#heartbeatTimer);
    // The last heartbeat says so: `bae nodes` drops the node at once rather than after 3 periods.
    if (this.#heartbeatMs > 0) void this.#publishHeartbeat('stopped');
    this.#stopped = true;
    this.#subs.forEach((s) => s.unsubscribe());
    void this.#kept.then((k) => k?.stop());
    try {
      this.#ring?.consume(); // the last events still go out
    } catch (err) {
      log.warn({ err }, 'reading the last events');
    }
    this.#ring?.close();
    this.#eventsMap.close();
    this.#statsMap.close();
    this.#ctlMap.close();
    this.#blocklist.close();
  }
}
