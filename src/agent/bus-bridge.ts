// The agent on the message bus (docs/bus.md): block commands in (SecBeat's BlockCommand on the
// block subject, applied to the kernel blocklist once per command_id), kernel events out (the
// policy_events ring buffer to bae.events.<node>.<kind>, kept by JetStream on NATS), and a
// telemetry digest every few seconds to bae.telemetry.<node>. Kept apart from agent.ts: the agent
// hands in its pin directory and reads the bridge's state for its status.
import os from 'node:os';
import { SUBJECTS, SeenIds, parseBlockCommand, type Bus, type BusMessage, type BusSubscription } from '../bus';
import { POLICY_MAPS, RingBuffer, decodePolicyEvent, openLoadedMap, sumPolicyStatsPerCpu, type BpfMap } from '../datapath';
import { moduleLogger } from '../log';
import { Blocklist, storedNames, viewEvent, type PolicyEventView } from '../policy';
import { ALL_NODES, applyPolicyRequest, checkPolicyRequest, type PolicyReply, type PolicyRequest } from './bus-policy';

const log = moduleLogger('agent/bus');

export const DEFAULT_TELEMETRY_MS = 5000;

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
  /** Also hands each event read to this (the store), besides the bus. */
  onEvent?: (event: PolicyEventView) => void;
}

export interface BusBridgeState {
  node: string;
  bus: ReturnType<Bus['state']>;
  blockSubject: string;
  commands: { applied: number; duplicates: number; refused: number; failed: number };
  policy: { applied: number; refused: number };
  events: { published: number };
  telemetry: { published: number; periodMs: number };
}

/** The answer to a block command sent as a request (a plain publish gets none). */
export type CommandReply = { ok: true; node: string; command_id: string; duplicate: boolean } | { ok: false; node: string; command_id?: string; errors: string[] };

export class BusBridge {
  readonly node: string;
  readonly #bus: Bus;
  readonly #pinDir: string;
  readonly #blockSubject: string;
  readonly #telemetryMs: number;
  readonly #seen: SeenIds;
  readonly #blocklist: Blocklist;
  readonly #eventsMap: BpfMap;
  readonly #statsMap: BpfMap;
  readonly #ring: RingBuffer | undefined;
  readonly #subs: BusSubscription[];
  readonly #onEventHook: ((event: PolicyEventView) => void) | undefined;
  /** Applies one after the other (the apply lock would refuse a second one meanwhile). */
  #applying: Promise<unknown> = Promise.resolve();
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #startedAt = Date.now();
  #names: Map<number, string>;
  #namesAt = 0;
  #counts = { applied: 0, duplicates: 0, refused: 0, failed: 0, events: 0, telemetry: 0, policyApplied: 0, policyRefused: 0 };
  #stopped = false;

  private constructor(o: BusBridgeOptions, maps: { blocklist: Blocklist; events: BpfMap; stats: BpfMap }) {
    this.node = o.node;
    this.#bus = o.bus;
    this.#pinDir = o.pinDir;
    this.#blockSubject = o.blockSubject ?? SUBJECTS.block;
    this.#telemetryMs = o.telemetryMs ?? DEFAULT_TELEMETRY_MS;
    this.#seen = new SeenIds(o.seenIds ?? 10_000);
    this.#blocklist = maps.blocklist;
    this.#eventsMap = maps.events;
    this.#statsMap = maps.stats;
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
      const bridge = new BusBridge(o, { blocklist, events, stats });
      bridge.#ring?.consume(); // what waited before the agent started
      log.info({ node: o.node, bus: o.bus.kind, url: o.bus.state().url, blockSubject: bridge.#blockSubject }, 'on the bus');
      return bridge;
    } catch (err) {
      opened.forEach((m) => m.close());
      throw err;
    }
  }

  #onCommand(msg: BusMessage): void {
    let reply: CommandReply;
    let value: unknown;
    try {
      value = msg.json();
    } catch (err) {
      this.#counts.refused++;
      log.warn({ subject: msg.subject, err: (err as Error).message }, 'block command refused');
      msg.respond({ ok: false, node: this.node, errors: [(err as Error).message] } satisfies CommandReply);
      return;
    }
    const checked = parseBlockCommand(value);
    if ('errors' in checked) {
      this.#counts.refused++;
      const id = typeof (value as { command_id?: unknown })?.command_id === 'string' ? (value as { command_id: string }).command_id : undefined;
      log.warn({ subject: msg.subject, command_id: id, errors: checked.errors }, 'block command refused: nothing changed');
      reply = { ok: false, node: this.node, ...(id !== undefined ? { command_id: id } : {}), errors: checked.errors };
      msg.respond(reply);
      return;
    }
    const { command: cmd, target, ttlNs, escalate } = checked;
    if (this.#seen.has(cmd.command_id)) {
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
    this.#seen.add(cmd.command_id);
    this.#counts.applied++;
    log.info({ command_id: cmd.command_id, action: cmd.action, ip: target.address, seconds: cmd.duration_seconds, reason: cmd.reason, source: cmd.source }, `${cmd.action} applied`);
    msg.respond({ ok: true, node: this.node, command_id: cmd.command_id, duplicate: false } satisfies CommandReply);
    this.#safePublishEvent('command', { node: this.node, command: cmd, applied: new Date().toISOString() });
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
    this.#onEventHook?.(v);
    this.#safePublishEvent(v.kind, { node: this.node, ...v });
  }

  #safePublishEvent(kind: string, value: unknown): void {
    try {
      this.#bus.publishEvent(SUBJECTS.event(this.node, kind), value);
      this.#counts.events++;
    } catch (err) {
      log.warn({ err, kind }, 'an event could not be published');
    }
  }

  /** The digest published on bae.telemetry.<node>. */
  telemetry(): Record<string, unknown> {
    const blocks = this.#blocklist.list();
    const perCpu = this.#statsMap.lookupPerCpu(Buffer.alloc(4));
    return {
      node: this.node,
      host: os.hostname(),
      time: new Date().toISOString(),
      uptimeMs: Date.now() - this.#startedAt,
      blocks: { active: blocks.length },
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
    };
  }

  /** Stops reading events and commands (what the kernel enforces stays). Safe twice. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#subs.forEach((s) => s.unsubscribe());
    try {
      this.#ring?.consume(); // the last events still go out
    } catch (err) {
      log.warn({ err }, 'reading the last events');
    }
    this.#ring?.close();
    this.#eventsMap.close();
    this.#statsMap.close();
    this.#blocklist.close();
  }
}
