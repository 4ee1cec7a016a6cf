// `bae agent`: the long-running daemon that holds the AF_XDP delay line (docs/agent.md).
//
// start(): loads bae inline between the two ports (or takes over a `bae load` of the same two
// ports at the same pin directory), opens the delay line on both ports with one socket per
// port and delay class in the pinned bae_xsks, gives the classes the parameters of the applied
// policy set (if one was applied before), and listens on the control socket. Without a peer it
// loads (or takes over) bae in ingress mode on one port, with no delay line. stop(): closes the
// socket, closes the delay line (held frames are sent at once, in due order; what cannot leave
// within 200 ms is dropped), and leaves bae loaded and enforcing (blocks, policies).
// The message bus is wired beside it (bus-bridge.ts).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import {
  DELAY_LINE_FEATURES,
  DELAY_MAPS,
  DEFAULT_PIN_DIR,
  POLICY_DELAY_CLASSES,
  checkIfaceName,
  checkPinDir,
  degradations,
  load,
  openLoadedMap,
  openPinnedMap,
  openProgramById,
  probeFeatures,
  status,
  sumPolicyDelayStatsPerCpu,
  unload,
  type BpfMap,
  type PolicyDelayStats,
  type XdpMode,
} from '../datapath';
import { DEFAULT_DELAY_PARAMS, DELAY_TX_MAPS, DelayLine, checkDelayParams, type DelayLineStats, type DelayLineTransmit, type DelayParams, type OverflowRule } from '../emulation';
import { AlreadyLoadedError, NotRootError, UsageError } from '../errors';
import { toJson } from '../json';
import { moduleLogger } from '../log';
import { assignDelayClasses, loadStoredSet, openPolicyMaps, orderPolicies, policiesFromStored, withApplyLock } from '../policy';
import { agentSocketPath, type AgentRequest, type DelayClassConfig } from './client';
import { DetectLoop, type DetectOptions, type DetectStatus } from './detect';
import { AgentMetrics } from './metrics';
import { MetricsServer, type MetricsListen } from './metrics-server';
import { MAX_PACKET_EVENTS, checkPacketEvent, type PacketEvent } from './packet-events';

const log = moduleLogger('agent');

export interface AgentOptions {
  iface: string;
  /** The second port (inline, with the delay line); absent: ingress mode on iface, no delay line. */
  peer?: string;
  xdpMode?: XdpMode;
  /** Frames the delay line holds at once (default: what the UMEM leaves after the rings). */
  maxInFlight?: number;
  /** What happens to a frame that finds maxInFlight frames held (default 'drop'). */
  overflow?: OverflowRule;
  pinDir?: string;
  /** Default: agentSocketPath(pinDir). */
  socketPath?: string;
  /** Seed of the delay line's decisions (default random). */
  seed?: number;
  /** Frames more than this many ms past due are dropped instead of sent (default DEFAULT_MAX_LATE_MS). */
  maxLateMs?: number;
  /** Pin the delay-line thread to this CPU (default: any). */
  cpu?: number;
  /** Serve Prometheus metrics at http://HOST:PORT/metrics (default: not served). */
  metrics?: MetricsListen;
  /** Run the anomaly detector over the profiles (default: off). */
  detect?: DetectOptions;
}

export interface AgentStatus {
  pid: number;
  startedAt: string;
  iface: string;
  /** null in ingress mode (no delay line there). */
  peer: string | null;
  mode: 'inline' | 'ingress';
  pinDir: string;
  socket: string;
  /** Whether the agent loaded bae itself (and unloads it at stop), or took over a `bae load`. */
  loadedByAgent: boolean;
  xdpMode: XdpMode;
  maxInFlight: number;
  overflow: OverflowRule;
  /** Classes 1..7 with parameters other than "no delay". */
  classes: DelayClassConfig[];
  /** Kernel counters (64 bits: strings in the socket's JSON, src/json.ts). */
  kernel: PolicyDelayStats;
  /** Parts wired in beside the agent (the bus bridge), by name. */
  extras?: Record<string, unknown>;
  /** The delay line's counters (all 0 in ingress mode: there is no delay line). */
  line: Pick<
    DelayLineStats,
    'received' | 'transmitted' | 'overflow' | 'duplicated' | 'reordered' | 'inFlight' | 'txErrors' | 'txDropped' | 'lateDropped' | 'realtime' | 'cpu' | 'live' | 'liveTransmitted'
  >;
  /** Where the Prometheus metrics are served (--metrics), null when they are not. */
  metricsUrl: string | null;
  /** The anomaly detector (--detect) and its recent anomalies, null when it does not run. */
  detector: DetectStatus | null;
}

export interface AgentStopResult {
  flushed: number;
  dropped: number;
  unloaded: boolean;
}

const sameParams = (a: DelayParams, b: DelayParams) => JSON.stringify(a) === JSON.stringify(b);

/** Removes a stale socket file; refuses when another agent answers on it. */
async function claimSocket(socketPath: string): Promise<void> {
  if (!fs.existsSync(socketPath)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const s = net.createConnection(socketPath);
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
  if (alive) throw new AlreadyLoadedError(`another agent already listens on ${socketPath}; stop it first`);
  fs.rmSync(socketPath, { force: true });
}

/**
 * The loaded bae program and its transmit arrays (bpf/delay_tx.h), for the delay line's XDP
 * transmitter; undefined (the sockets transmit alone) when the loaded object predates them.
 */
function openTransmit(pinDir: string, progId: number): (DelayLineTransmit & { close(): void }) | undefined {
  const slotsPin = path.join(pinDir, DELAY_TX_MAPS.slots);
  const ctlPin = path.join(pinDir, DELAY_TX_MAPS.control);
  if (progId === 0 || !fs.existsSync(slotsPin) || !fs.existsSync(ctlPin)) {
    log.warn({ pinDir }, 'the loaded bae has no delay-line transmitter (loaded by an older bae?): frames leave through the AF_XDP sockets only');
    return undefined;
  }
  const opened: { close(): void }[] = [];
  try {
    const program = openProgramById(progId);
    opened.push(program);
    const slots = openPinnedMap(slotsPin);
    opened.push(slots);
    const control = openPinnedMap(ctlPin);
    opened.push(control);
    return { program, slots, control, close: () => opened.forEach((o) => o.close()) };
  } catch (err) {
    opened.forEach((o) => o.close());
    throw err;
  }
}

export class Agent {
  readonly iface: string;
  readonly peer: string | undefined;
  readonly pinDir: string;
  readonly socketPath: string;
  readonly loadedByAgent: boolean;
  readonly xdpMode: XdpMode;
  readonly startedAt = new Date();
  #line: DelayLine | undefined;
  #xsks: BpfMap | undefined;
  #delayStats: BpfMap;
  #extras = new Map<string, () => unknown>();
  #packetEventListener: ((event: PacketEvent) => void) | undefined;
  #server: net.Server | undefined;
  #metricsServer: MetricsServer | undefined;
  #detect: DetectLoop | undefined;
  /** The agent's Prometheus registry: kernel counters read at scrape time, and the gauges other parts set. */
  readonly metrics: AgentMetrics;
  #stopped: Promise<AgentStopResult> | undefined;

  private constructor(o: { iface: string; peer: string | undefined; pinDir: string; socketPath: string; loadedByAgent: boolean; xdpMode: XdpMode; line: DelayLine | undefined; xsks: BpfMap | undefined; delayStats: BpfMap }) {
    this.iface = o.iface;
    this.peer = o.peer;
    this.pinDir = o.pinDir;
    this.socketPath = o.socketPath;
    this.loadedByAgent = o.loadedByAgent;
    this.xdpMode = o.xdpMode;
    this.#line = o.line;
    this.#xsks = o.xsks;
    this.#delayStats = o.delayStats;
    // Inline mode has a delay line whose counters are metrics; ingress mode has none.
    const line = o.line;
    this.metrics = new AgentMetrics({ pinDir: o.pinDir, ...(line ? { delayLine: () => ({ kernel: this.kernelDelayStats(), line: line.stats() }) } : {}) });
  }

  /** Loads (or takes over) bae, opens the delay line, listens; undoes everything on failure. */
  static async start(opts: AgentOptions): Promise<Agent> {
    const iface = checkIfaceName(opts.iface);
    const peer = opts.peer === undefined ? undefined : checkIfaceName(opts.peer);
    if (iface === peer) throw new UsageError(`--peer must differ from --iface (both are '${iface}')`);
    const pinDir = checkPinDir(opts.pinDir ?? DEFAULT_PIN_DIR);
    const xdpMode = opts.xdpMode ?? 'native';
    if (xdpMode !== 'native' && xdpMode !== 'generic') throw new UsageError(`bad XDP mode '${String(xdpMode)}': native or generic`);
    if (opts.overflow !== undefined && opts.overflow !== 'drop' && opts.overflow !== 'pass') {
      throw new UsageError(`bad overflow rule '${String(opts.overflow)}': drop or pass`);
    }
    if (process.getuid?.() !== 0) throw new NotRootError('bae agent');
    const socketPath = opts.socketPath ?? agentSocketPath(pinDir);
    await claimSocket(socketPath);

    // Undone in reverse, each step awaited: the delay line's close() resolves only once its
    // sockets are gone, and bae must stay loaded (and enforcing) until then.
    const undo: (() => unknown)[] = [];
    const rollback = async () => {
      while (undo.length) {
        try {
          await undo.pop()!();
        } catch (err) {
          log.warn({ err }, 'undoing a failed start');
        }
      }
    };
    try {
      // Take over a `bae load` of exactly these two ports, inline; anything else at the pin
      // directory is someone else's and stays as it is.
      const before = status({ pinDir });
      let loadedByAgent = false;
      const mode = peer === undefined ? 'ingress' : 'inline';
      if (before.loaded) {
        const ports = before.ports.map((p) => p.iface).sort();
        const want = (peer === undefined ? [iface] : [iface, peer]).sort();
        const attached = before.ports.every((p) => p.attached);
        if (before.mode !== mode || ports.join(',') !== want.join(',') || !attached) {
          throw new AlreadyLoadedError(
            `bae is already loaded at ${pinDir} (${before.mode ?? 'unknown'} mode on ${ports.join(', ') || 'no port'}${attached ? '' : ', not attached'}); ` +
              `the agent takes over only ${peer === undefined ? `a bae in ingress mode on ${iface}` : `an inline bae between ${iface} and ${peer}`}: run \`bae unload\` first`,
          );
        }
        log.info({ pinDir, ports }, 'taking over the loaded bae');
      } else {
        const st = load({ iface, ...(peer !== undefined ? { peer } : {}), xdpMode, pinDir });
        loadedByAgent = true;
        undo.push(() => unload({ pinDir }));
        log.info({ pinDir, ports: st.ports.map((p) => p.iface), xdpMode }, `bae loaded (${mode})`);
      }
      const delayStats = openLoadedMap(DELAY_MAPS.stats, pinDir, 'bae agent');
      undo.push(() => delayStats.close());
      const xdpModeNow: XdpMode = before.loaded ? (before.ports[0]!.xdpMode === 'generic' ? 'generic' : 'native') : xdpMode;
      if (peer === undefined) {
        // Ingress mode: frames are passed up, never forwarded, so there is no delay line.
        const agent = new Agent({ iface, peer, pinDir, socketPath, loadedByAgent, xdpMode: xdpModeNow, line: undefined, xsks: undefined, delayStats });
        await agent.#listen();
        undo.push(() => fs.rmSync(socketPath, { force: true }));
        log.info({ iface, pinDir, socket: socketPath }, 'agent running (ingress mode, no delay line)');
        return agent;
      }
      const xsks = openLoadedMap(DELAY_MAPS.xsks, pinDir, 'bae agent');
      undo.push(() => xsks.close());
      const transmit = openTransmit(pinDir, status({ pinDir }).ports[0]?.progId ?? 0);
      if (transmit) undo.push(() => transmit.close());
      const line = new DelayLine({
        xskMap: xsks,
        ports: [iface, peer],
        classes: POLICY_DELAY_CLASSES,
        ...(transmit ? { transmit: { program: transmit.program, slots: transmit.slots, control: transmit.control } } : {}),
        ...(opts.maxLateMs !== undefined ? { maxLateMs: opts.maxLateMs } : {}),
        ...(opts.cpu !== undefined ? { cpu: opts.cpu } : {}),
        ...(opts.maxInFlight !== undefined ? { maxInFlight: opts.maxInFlight } : {}),
        ...(opts.overflow !== undefined ? { overflow: opts.overflow } : {}),
        ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
      });
      undo.push(() => line.close());
      // What this kernel takes from the delay line, said once rather than a silent fallback.
      for (const note of degradations(probeFeatures(), DELAY_LINE_FEATURES)) log.warn(note);
      const agent = new Agent({ iface, peer, pinDir, socketPath, loadedByAgent, xdpMode: xdpModeNow, line, xsks, delayStats });
      await agent.#classesFromStoredSet();
      await agent.#listen();
      undo.push(() => fs.rmSync(socketPath, { force: true }));
      // A step after this one can fail (--metrics): the listening socket must not keep the process alive.
      undo.push(() => new Promise<void>((resolve) => (agent.#server ? agent.#server.close(() => resolve()) : resolve())));
      if (opts.metrics) {
        const served = await MetricsServer.start(agent.metrics, opts.metrics);
        agent.#metricsServer = served;
        undo.push(() => served.close());
      }
      if (opts.detect) {
        const detect = DetectLoop.start(pinDir, opts.detect);
        detect.onAnomaly((a) => agent.metrics.countAnomaly(a.metric));
        agent.#detect = detect;
        undo.push(() => detect.stop());
      }
      log.info({ iface, peer, pinDir, socket: socketPath, maxInFlight: line.maxInFlight, overflow: line.overflow }, 'agent running');
      return agent;
    } catch (err) {
      await rollback();
      throw err;
    }
  }

  /** The classes of the set applied before the agent started (the same numbering apply uses). */
  async #classesFromStoredSet(): Promise<void> {
    await withApplyLock(this.pinDir, async () => {
      const loaded = openPolicyMaps(this.pinDir);
      try {
        const stored = loadStoredSet(this.pinDir, loaded.ctlMapId);
        if (stored.length === 0) return;
        const { classes } = assignDelayClasses(orderPolicies(policiesFromStored(stored, this.pinDir)));
        this.setDelayClasses(classes.map((c) => ({ cls: c.cls, params: c.params })));
        if (classes.length) log.info({ classes: classes.length }, 'delay classes of the applied policy set restored');
      } finally {
        loaded.close();
      }
    });
  }

  /** Sets classes 1..7: those listed get their parameters, the others "no delay". All checked first. */
  setDelayClasses(classes: readonly DelayClassConfig[]): void {
    const line = this.#line;
    if (!line) throw new UsageError(`this agent runs in ingress mode on ${this.iface}: no delay line (delay, duplicate and reorder need bae inline: --peer)`);
    if (!Array.isArray(classes)) throw new UsageError('delay classes must be a list');
    const next: DelayParams[] = Array.from({ length: POLICY_DELAY_CLASSES }, () => ({ ...DEFAULT_DELAY_PARAMS }));
    const seen = new Set<number>();
    for (const c of classes) {
      if (!c || !Number.isInteger(c.cls) || c.cls < 1 || c.cls >= POLICY_DELAY_CLASSES) {
        throw new UsageError(`delay class ${String(c?.cls)} is outside 1..${POLICY_DELAY_CLASSES - 1}`);
      }
      if (seen.has(c.cls)) throw new UsageError(`delay class ${c.cls} is given twice`);
      seen.add(c.cls);
      next[c.cls] = checkDelayParams(c.params);
    }
    for (let cls = 1; cls < POLICY_DELAY_CLASSES; cls++) {
      if (!sameParams(line.params(cls), next[cls]!)) line.setParams(next[cls]!, cls);
    }
    log.info({ classes: classes.map((c) => ({ cls: c.cls, delayMs: c.params.delayMs, jitterMs: c.params.jitterMs })) }, 'delay classes set');
  }

  #listen(): Promise<void> {
    const server = net.createServer((conn) => this.#serve(conn));
    this.#server = server;
    fs.mkdirSync(path.dirname(this.socketPath), { recursive: true, mode: 0o755 });
    return new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // Root only: the socket changes what the datapath does to traffic.
      const umask = process.umask(0o177);
      server.listen(this.socketPath, () => {
        process.umask(umask);
        fs.chmodSync(this.socketPath, 0o600);
        server.off('error', reject);
        server.on('error', (err) => log.error({ err }, 'control socket'));
        resolve();
      });
    });
  }

  #serve(conn: net.Socket): void {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('error', () => conn.destroy());
    conn.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 1 << 20) {
        conn.end(toJson({ ok: false, error: 'request longer than 1 MiB' }) + '\n');
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        conn.write(toJson(this.#handle(line)) + '\n');
      }
    });
  }

  #handle(line: string): { ok: true; result: unknown } | { ok: false; error: string } {
    let req: AgentRequest;
    try {
      req = JSON.parse(line) as AgentRequest;
    } catch {
      return { ok: false, error: 'a request is one JSON object on one line' };
    }
    try {
      switch (req?.op) {
        case 'status':
          return { ok: true, result: this.status() };
        case 'delay-classes':
          if (path.resolve(String(req.pinDir)) !== this.pinDir) {
            return { ok: false, error: `this agent serves ${this.pinDir}, not ${String(req.pinDir)}` };
          }
          this.setDelayClasses(req.classes);
          return { ok: true, result: null };
        case 'event':
          if (path.resolve(String(req.pinDir)) !== this.pinDir) {
            return { ok: false, error: `this agent serves ${this.pinDir}, not ${String(req.pinDir)}` };
          }
          return { ok: true, result: this.packetEvents(req.events) };
        default:
          return { ok: false, error: `unknown op ${JSON.stringify((req as { op?: unknown })?.op)} (status, delay-classes, event)` };
      }
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  }

  /** The anomaly detector (--detect), for listeners of its anomalies; undefined when it does not run. */
  get detector(): DetectLoop | undefined {
    return this.#detect;
  }

  kernelDelayStats(): PolicyDelayStats {
    const perCpu = this.#delayStats.lookupPerCpu(Buffer.alloc(4));
    return perCpu ? sumPolicyDelayStatsPerCpu(perCpu) : { redirected: 0n, noSocket: 0n };
  }

  /** Who hears packet events (the bus bridge): one listener, set by the CLI. */
  onPacketEvent(listener: (event: PacketEvent) => void): void {
    this.#packetEventListener = listener;
  }

  /** Packet events of a command (op 'event'): all checked first (one bad: none taken), then handed on. */
  packetEvents(events: unknown): { taken: number; published: boolean } {
    if (!Array.isArray(events) || events.length === 0 || events.length > MAX_PACKET_EVENTS) throw new UsageError(`events: expected a list of 1 to ${MAX_PACKET_EVENTS} packet events`);
    const checked = events.map((e, i) => {
      const c = checkPacketEvent(e);
      if (typeof c === 'string') throw new UsageError(`events[${i}]: ${c}`);
      return c;
    });
    const listener = this.#packetEventListener;
    for (const e of checked) listener?.(e);
    log.info({ events: checked.length, kind: checked[0]!.kind, by: checked[0]!.by, frames: checked.reduce((n, e) => n + e.frames, 0) }, 'packet events taken');
    return { taken: checked.length, published: listener !== undefined };
  }

  /** Adds a named part to status() (the bus bridge's state), read at each status. */
  addStatus(name: string, read: () => unknown): void {
    this.#extras.set(name, read);
  }

  status(): AgentStatus {
    const k = this.kernelDelayStats();
    const extras = this.#extras.size ? { extras: Object.fromEntries([...this.#extras].map(([n, read]) => [n, read()])) } : {};
    const base = {
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      iface: this.iface,
      peer: this.peer ?? null,
      mode: this.peer === undefined ? ('ingress' as const) : ('inline' as const),
      pinDir: this.pinDir,
      socket: this.socketPath,
      loadedByAgent: this.loadedByAgent,
      xdpMode: this.xdpMode,
      metricsUrl: this.#metricsServer?.url ?? null,
      detector: this.#detect?.status() ?? null,
    };
    if (!this.#line) {
      const zero = { received: 0, transmitted: 0, overflow: 0, duplicated: 0, reordered: 0, inFlight: 0, txErrors: 0, txDropped: 0, lateDropped: 0, liveTransmitted: 0 };
      return { ...base, maxInFlight: 0, overflow: 'drop', classes: [], kernel: { redirected: k.redirected, noSocket: k.noSocket }, ...extras, line: { ...zero, realtime: false, cpu: -1, live: false } };
    }
    const s = this.#line.stats();
    const classes: DelayClassConfig[] = [];
    for (let cls = 1; cls < POLICY_DELAY_CLASSES; cls++) {
      const params = this.#line.params(cls);
      if (!sameParams(params, DEFAULT_DELAY_PARAMS as DelayParams)) classes.push({ cls, params });
    }
    return {
      ...base,
      maxInFlight: this.#line.maxInFlight,
      overflow: this.#line.overflow,
      classes,
      kernel: { redirected: k.redirected, noSocket: k.noSocket },
      ...extras,
      line: {
        received: s.received,
        transmitted: s.transmitted,
        overflow: s.overflow,
        duplicated: s.duplicated,
        reordered: s.reordered,
        inFlight: s.inFlight,
        txErrors: s.txErrors,
        txDropped: s.txDropped,
        lateDropped: s.lateDropped,
        realtime: s.realtime,
        cpu: s.cpu,
        live: s.live,
        liveTransmitted: s.liveTransmitted,
      },
    };
  }

  /**
   * Stops: no new requests, the delay line closed (held frames sent at once in due order, what
   * cannot leave within 200 ms dropped), the socket removed; bae stays loaded and enforcing.
   * Safe twice (the second call returns the first result).
   */
  stop(): Promise<AgentStopResult> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<AgentStopResult> {
    const server = this.#server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await this.#metricsServer?.close();
    this.#detect?.stop();
    fs.rmSync(this.socketPath, { force: true });
    // The flush runs on the line's thread; bae keeps enforcing (delay-class frames are forwarded
    // undelayed) while the line closes, and afterwards.
    const { flushed, dropped } = this.#line ? await this.#line.close() : { flushed: 0, dropped: 0 };
    this.#xsks?.close();
    this.#delayStats.close();
    // bae stays loaded: blocks, policies and their windows go on as they were (`bae unload` ends them).
    log.info({ flushed, dropped }, 'agent stopped; bae left loaded and enforcing');
    return { flushed, dropped, unloaded: false };
  }
}
