// `bae agent --iface IF --peer IF2 [...]`: the daemon that holds the delay line, in the
// foreground until SIGINT/SIGTERM; `bae agent status`: asks a running agent over its socket.
import { Command, InvalidArgumentError, Option } from 'commander';
import os from 'node:os';
import { ALL_NODES, Agent, AgentNotRunningError, feedBusMetrics, agentRequest, agentSocketPath, BusBridge, DEFAULT_DETECT_INTERVAL_MS, NoAgentError, parseMetricsListen, type AgentStatus, type InjectAction, type MetricsListen, type StoreBridge } from '../agent';
import { checkToken, nodeNameOf, openBus, type Bus } from '../bus';
import { checkIfaceName, unload } from '../datapath';
import { UsageError } from '../errors';
import { moduleLogger } from '../log';
import { DEFAULT_MAX_LATE_MS, DELAY_MAX_MS } from '../emulation';
import { toJson, type Json } from '../json';
import { parseDuration } from '../policy';
import { DETECTOR_DEFAULTS } from '../profiles';
import { Store } from '../store';
import { WebServer, isLoopbackHost, loadToken, parseHttpListen, type WebListen } from '../web';
import { blockSubjectOption, natsAuthOf, natsAuthOptions, natsOption, numberIn, pinDirOf, wholeNumber, type NatsAuthOpts } from './options';
import { addAgentStoreOptions, startAgentStore, storeStatusLines, type AgentStoreOpts } from './agent-store';
import { injectStatusLines, startInjectAction } from './agent-inject';

const webLog = moduleLogger('web');

interface AgentOpts extends AgentStoreOpts, NatsAuthOpts {
  natsReplicas?: number;
  eventBuffer?: number;
  liveEvents: boolean;
  heartbeat?: number;
  iface?: string;
  peer?: string;
  mode: 'native' | 'generic';
  maxInFlight?: number;
  overflow: 'drop' | 'pass';
  maxLateMs?: number;
  cpu?: number;
  nats?: string;
  node?: string;
  blockSubject: string;
  metrics?: MetricsListen;
  detect?: boolean;
  detectInterval?: number;
  detectAlpha?: number;
  detectThreshold?: number;
  detectWarmup?: number;
  detectIdle?: number;
  http?: WebListen;
  httpAdmin?: boolean;
  httpToken?: string;
}

/** A commander argument parser for a duration (`500ms`, `2s`, `1m`) in [minMs, maxMs], as ms. */
function durationMs(minMs: number, maxMs: number): (value: string) => number {
  return (value: string) => {
    const ns = parseDuration(value);
    if (typeof ns === 'string') throw new InvalidArgumentError(ns);
    const ms = Number(ns) / 1e6;
    if (ms < minMs || ms > maxMs) throw new InvalidArgumentError(`expected a duration from ${minMs} ms to ${maxMs / 1000} s`);
    return ms;
  };
}

export function renderAgentStatus(s: AgentStatus | Json<AgentStatus>): string {
  const bus = (s.extras as { bus?: { node: string; bus: { kind: string; url?: string; connected: boolean }; commands: { applied: number } } } | undefined)?.bus;
  const busLine = bus
    ? `  bus: ${bus.bus.kind === 'nats' ? `NATS ${bus.bus.url} (${bus.bus.connected ? 'connected' : 'DISCONNECTED, reconnecting'})` : 'in-process'}, node ${bus.node}, ${bus.commands.applied} block commands applied`
    : undefined;
  if (s.mode === 'ingress') {
    return [
      `bae agent running (pid ${s.pid}, since ${s.startedAt}) in ingress mode on ${s.iface}, ${s.xdpMode} XDP; ` +
        `${s.loadedByAgent ? 'loaded by the agent' : 'took over a bae load'}; pins in ${s.pinDir}; socket ${s.socket}`,
      '  delay line: none in ingress mode (delay, duplicate and reorder need bae inline: --peer)',
      `  metrics: ${s.metricsUrl ?? 'not served (--metrics HOST:PORT)'}`,
      ...(busLine ? [busLine] : []),
      ...storeStatusLines(s.extras),
      ...injectStatusLines(s.extras),
    ].join('\n');
  }
  const lines = [
    `bae agent running (pid ${s.pid}, since ${s.startedAt}) inline between ${s.iface} and ${s.peer}, ${s.xdpMode} XDP; ` +
      `${s.loadedByAgent ? 'loaded by the agent' : 'took over a bae load'}; pins in ${s.pinDir}; socket ${s.socket}`,
    `  delay line: ${s.line.inFlight} held of at most ${s.maxInFlight} (overflow: ${s.overflow}); received ${s.line.received}, ` +
      `transmitted ${s.line.transmitted} (${s.line.liveTransmitted} as XDP frames${s.line.live ? '' : ', XDP transmitter off'}), overflow ${s.line.overflow}, ` +
      `late-dropped ${s.line.lateDropped}, duplicated ${s.line.duplicated}, reordered ${s.line.reordered}${s.line.cpu >= 0 ? `; thread on CPU ${s.line.cpu}` : ''}` +
      `${s.line.realtime ? '' : '; NOT real-time (timing may be late on a busy machine)'}`,
    `  kernel: ${s.kernel.redirected} frames redirected into the delay line, ${s.kernel.noSocket} of a delay class forwarded undelayed (no socket)`,
    `  metrics: ${s.metricsUrl ?? 'not served (--metrics HOST:PORT)'}`,
    ...(busLine ? [busLine] : []),
    ...storeStatusLines(s.extras),
    ...injectStatusLines(s.extras),
  ];
  const d = s.detector;
  if (!d) lines.push('  detector: off (--detect)');
  else {
    lines.push(
      `  detector: a snapshot every ${d.intervalMs} ms (${d.snapshots} taken${d.readErrors ? `, ${d.readErrors} unreadable` : ''}), ${d.sources} sources followed; ` +
        `alpha ${d.alpha}, |z| > ${d.threshold} after ${d.warmup} samples, idle sources forgotten after ${d.idleMs / 1000} s; ${d.anomaliesTotal} anomalies`,
    );
    for (const a of d.recent.slice(-5)) {
      lines.push(`    ${a.at} ${a.source} ${a.metric} ${Number(a.value).toPrecision(4)} (baseline ${Number(a.mean).toPrecision(4)} ± ${Number(a.stddev).toPrecision(3)}, z ${Number(a.z).toFixed(1)})`);
    }
  }
  if (s.classes.length === 0) lines.push('  delay classes: none in use');
  for (const c of s.classes) {
    const p = c.params;
    const parts = [`delay ${p.delayMs} ms`];
    if (p.jitterMs) parts.push(`jitter ${p.jitterMs} ms ${p.distribution}`);
    if (p.correlation) parts.push(`correlation ${p.correlation * 100}%`);
    if (p.duplicate) parts.push(`duplicate ${p.duplicate * 100}%`);
    if (p.reorder) parts.push(`reorder ${p.reorder * 100}% gap ${p.reorderGap}`);
    lines.push(`  class ${c.cls}: ${parts.join(', ')}`);
  }
  return lines.join('\n');
}

/** Agent.start with the command's options (the bus is opened before, and closed on failure). */
function startAgent(opts: AgentOpts, command: Command): Promise<Agent> {
  return Agent.start({
    iface: checkIfaceName(opts.iface!),
    ...(opts.peer !== undefined ? { peer: checkIfaceName(opts.peer) } : {}),
    xdpMode: opts.mode,
    overflow: opts.overflow,
    pinDir: pinDirOf(command),
    ...(opts.maxInFlight !== undefined ? { maxInFlight: opts.maxInFlight } : {}),
    ...(opts.maxLateMs !== undefined ? { maxLateMs: opts.maxLateMs } : {}),
    ...(opts.cpu !== undefined ? { cpu: opts.cpu } : {}),
    ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
    ...(opts.detect
      ? {
          detect: {
            ...(opts.detectInterval !== undefined ? { intervalMs: opts.detectInterval } : {}),
            ...(opts.detectAlpha !== undefined ? { alpha: opts.detectAlpha } : {}),
            ...(opts.detectThreshold !== undefined ? { threshold: opts.detectThreshold } : {}),
            ...(opts.detectWarmup !== undefined ? { warmup: opts.detectWarmup } : {}),
            ...(opts.detectIdle !== undefined ? { idleMs: opts.detectIdle } : {}),
          },
        }
      : {}),
  });
}

/** The live view (--http): the token read or written beside the control socket when it listens beyond loopback. */
async function startWeb(listen: WebListen, opts: AgentOpts, running: Agent, bus: Bus, node: string, db: string | undefined): Promise<WebServer> {
  const tokenFile = running.socketPath.replace(/\.sock$/, '') + '.http-token';
  const token = opts.httpToken !== undefined ? loadToken({ file: opts.httpToken }) : isLoopbackHost(listen.host) ? undefined : loadToken({ generateAt: tokenFile });
  const web = await WebServer.start({
    listen,
    bus,
    admin: opts.httpAdmin ?? false,
    ...(token !== undefined ? { token } : {}),
    sources: {
      pinDir: running.pinDir,
      node,
      agentStatus: () => running.status(),
      // History: the kernel events the agent stored (a read-only connection per query, beside the writer).
      ...(db !== undefined
        ? {
            history: (q: { fromMs: number; toMs: number; kind?: string; limit: number }) => {
              const store = Store.open(db, { readonly: true });
              try {
                return store.eventsBetween(BigInt(q.fromMs) * 1_000_000n, BigInt(q.toMs) * 1_000_000n, q.limit, q.kind).map((e) => JSON.parse(e.body) as unknown);
              } finally {
                store.close();
              }
            },
          }
        : {}),
    },
  });
  if (token !== undefined) {
    webLog.info({ tokenFile: opts.httpToken ?? tokenFile, login: web.loginUrl(token) }, 'live view: beyond loopback a client needs the token (Authorization: Bearer), or a browser opens the login URL once');
  }
  return web;
}

function checkNodeName(name: string): string {
  if (name === ALL_NODES) throw new UsageError(`--node: '${ALL_NODES}' is reserved (it addresses every agent)`);
  try {
    return checkToken(name, 'node name');
  } catch (err) {
    throw new UsageError(`--node: ${(err as Error).message}`);
  }
}

const busName = (bus: Bus) => (bus.kind === 'nats' ? `NATS ${bus.state().url}` : 'in-process');

/** Resolves when the process gets SIGINT or SIGTERM. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export function register(program: Command): void {
  const agent = program
    .command('agent')
    .description('run the daemon: on the message bus (block commands, events, telemetry), and inline between two ports it holds the delay line')
    .option('--iface <name>', 'the port (required); with --peer, the first of two')
    .option('--peer <name>', 'second port: bae inline with the delay line (without: ingress mode on --iface, no delay line)')
    .addOption(new Option('--mode <mode>', 'XDP attach mode').choices(['native', 'generic']).default('native'))
    .option('--max-in-flight <n>', 'frames the delay line holds at once (default: what the UMEM leaves after the rings)', wholeNumber(1, 1 << 18))
    .addOption(new Option('--overflow <rule>', 'a frame that finds --max-in-flight frames held: drop it, or pass it undelayed').choices(['drop', 'pass']).default('drop'))
    .option(
      '--max-late-ms <ms>',
      `a frame that could not leave within this many ms of its due time is dropped, so an overload sheds stale frames instead of delaying every later one (default ${DEFAULT_MAX_LATE_MS})`,
      numberIn(0.001, DELAY_MAX_MS),
    )
    .option('--cpu <n>', 'pin the delay-line thread to this CPU (default: any)', wholeNumber(0, os.cpus().length - 1))
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (default: off; port 0 picks a free one)', parseMetricsListen)
    .option('--detect', 'run the anomaly detector over the conversation profiles (per-source baselines, z-scores)')
    .option('--detect-interval <duration>', `time between two profile snapshots (default ${DEFAULT_DETECT_INTERVAL_MS / 1000}s)`, durationMs(10, 3_600_000))
    .option('--detect-alpha <a>', `weight of a new sample in a baseline, 0.001 to 1 (default ${DETECTOR_DEFAULTS.alpha})`, numberIn(0.001, 1))
    .option('--detect-threshold <z>', `|z| above this is an anomaly (default ${DETECTOR_DEFAULTS.threshold})`, numberIn(0.5, 1000))
    .option('--detect-warmup <n>', `samples of a source before it can be anomalous (default ${DETECTOR_DEFAULTS.warmup})`, wholeNumber(1, 1_000_000))
    .option('--detect-idle <duration>', `forget a source silent this long (default ${DETECTOR_DEFAULTS.idleMs / 1000}s)`, durationMs(1, 7 * 86_400_000))
    .addOption(natsOption('the fleet\'s bus (default: an in-process bus, no server)'))
    .option('--node <name>', 'this node\'s name in bus subjects (default: the host name)')
    .option('--nats-replicas <n>', 'replicas of the event and node streams when this agent creates them (3 on a cluster; default 1)', wholeNumber(1, 5))
    .option('--event-buffer <n>', 'events held while NATS cannot take them (default 100000); more are counted and dropped', wholeNumber(1, 10_000_000))
    .option('--no-live-events', 'on NATS, publish events only in batches (bae.eventbatch.<node>, kept by JetStream), not each on bae.events.<node>.<kind> too (cheaper per event; the live view then shows none: docs/bus.md)')
    .option('--heartbeat <duration>', 'time between two heartbeats on bae.heartbeat.<node> (default 2s)', durationMs(100, 3_600_000))
    .addOption(blockSubjectOption())
    .option('--http <host:port>', 'serve the live view (docs/web.md) at http://HOST:PORT/ (PORT alone: on 127.0.0.1; port 0 picks a free one)', parseHttpListen)
    .option('--http-admin', 'allow actions from the live view (unblock); read-only without')
    .option('--http-token <file>', 'the live view\'s token beyond loopback, first line of FILE (default: a new one, written 0600 beside the control socket)');
  addAgentStoreOptions(agent)
    .addHelpText(
      'after',
      `
Runs in the foreground until SIGINT or SIGTERM. Loads bae inline between --iface and --peer (or
takes over a \`bae load\` of the same two ports at --pin-dir), opens the delay line on both ports
and listens on a root-only control socket under /run/bae, so that \`bae policy apply\` from
another shell can use delay, duplicate and reorder. Without --peer it loads (or takes over) bae
in ingress mode on --iface, with no delay line.

It is on the bus (NATS with --nats, else in-process): it applies block commands from
--block-subject (SecBeat's BlockCommand; once per command_id), publishes the kernel's policy
events to bae.events.<node>.<kind> (on NATS also in batches to bae.eventbatch.<node>, which
JetStream keeps; --no-live-events: only those) and a digest every 5 s to
bae.telemetry.<node>. A NATS server that cannot be reached stops the start before anything is
loaded (exit 1, BAE_BUS). On SIGINT/SIGTERM it closes the delay line (held frames are sent at
once, in due order; those that cannot leave within 200 ms are dropped), leaves the bus, removes
the socket and exits 0; bae stays loaded and enforcing (blocks last their TTL): \`bae unload\`
ends it.

With --metrics it serves Prometheus metrics (bae_* counters read from the kernel at each
scrape: verdicts, parse outcomes, policy hits and trigger fires, blocks, ring-buffer losses,
the delay line; docs/agent.md lists them) at http://HOST:PORT/metrics. Bind it to 127.0.0.1
unless a scraper on another host needs it: the page shows what the policies catch.

With --detect it reads the conversation profiles every --detect-interval and keeps, per source,
an exponentially weighted mean and variance of its packets/s, bytes/s, mean frame size and mean
inter-arrival gap. After --detect-warmup samples, a figure more than --detect-threshold standard
deviations from its baseline (|z|, z = (value - mean) / stddev) is an anomaly: logged, counted
in bae_anomalies_total and listed by \`bae agent status\` (docs/agent.md).

It stores (--db, default /var/lib/bae/bae.db; --no-db: nothing) the kernel's policy events, a
profile snapshot every --snapshot-interval and each applied policy set (docs/store.md); \`bae
events\` then reads the store. A store that fails (disk full) is logged and counted in \`bae agent
status\`; the agent and the datapath go on.

Examples:
  sudo bae agent --iface eth1 --peer eth2
  sudo bae agent --iface eth1 --peer eth2 --metrics 127.0.0.1:9464
  curl -s http://127.0.0.1:9464/metrics | grep ^bae_packets_total
  sudo bae agent --iface eth1 --peer eth2 --detect --detect-threshold 5
  sudo bae agent --iface eth0 --nats nats://10.0.0.1:4222 --node edge-1
  sudo bae agent --iface eth0 --nats nats://10.0.0.1:4222 --block-subject secbeat.commands.block
  sudo bae agent --iface eth0 --http 127.0.0.1:8080
  sudo bae agent --iface eth0 --http 0.0.0.0:8080 --http-admin --http-token /etc/bae/http-token
  sudo bae agent status
  sudo bae lab exec bae -- bae agent --iface to-client --peer to-server`,
    )
    .action(async (opts: AgentOpts, command: Command) => {
      const detectOpts = ['detectInterval', 'detectAlpha', 'detectThreshold', 'detectWarmup', 'detectIdle'] as const;
      const orphan = detectOpts.find((k) => opts[k] !== undefined);
      if (orphan && !opts.detect) throw new UsageError(`--${orphan.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} needs --detect`);
      if ((opts.httpAdmin || opts.httpToken !== undefined) && !opts.http) throw new UsageError(`--${opts.httpAdmin ? 'http-admin' : 'http-token'} needs --http`);
      if (opts.iface === undefined) {
        throw new UsageError('bae agent needs --iface (and --peer for bae inline with the delay line)');
      }
      const node = opts.node !== undefined ? checkNodeName(opts.node) : nodeNameOf(os.hostname());
      // The bus first: a server that cannot be reached changes nothing.
      const bus = await openBus({
        ...(opts.nats !== undefined ? { url: opts.nats, auth: natsAuthOf(opts) } : {}),
        name: `bae-agent-${node}`,
        ...(opts.natsReplicas !== undefined ? { streamReplicas: opts.natsReplicas } : {}),
        ...(opts.eventBuffer !== undefined ? { eventBuffer: opts.eventBuffer } : {}),
        liveEvents: opts.liveEvents,
      });
      let running: Agent;
      let bridge: BusBridge;
      let store: StoreBridge | undefined;
      let injectAction: InjectAction | undefined;
      try {
        running = await startAgent(opts, command);
      } catch (err) {
        await bus.close();
        throw err;
      }
      try {
        store = await startAgentStore(opts, running.pinDir);
        if (store) running.addStatus('store', () => store!.state());
        // Kernel events go out on NATS, into the store and to the live view; with none of them they stay in the ring for `bae events`.
        const readEvents = opts.nats !== undefined || store !== undefined || opts.http !== undefined;
        injectAction = startInjectAction(running, { bus, node, store, readsEvents: readEvents });
        bridge = BusBridge.start({
          bus,
          node,
          pinDir: running.pinDir,
          blockSubject: opts.blockSubject,
          readEvents,
          onEvent: (v, json) => {
            store?.event(v, json);
            injectAction!.onEvent(v);
          },
          identity: { mode: running.peer === undefined ? 'ingress' : 'inline', ifaces: running.peer === undefined ? [running.iface] : [running.iface, running.peer] },
          ...(opts.heartbeat !== undefined ? { heartbeatMs: opts.heartbeat } : {}),
        });
        running.addStatus('bus', () => bridge.state());
        // Frames sent by `bae inject` and `bae reconstruct` (over the control socket) join the event stream.
        running.onPacketEvent((e) => bridge.publishPacketEvent(e));
        feedBusMetrics(bus, running.metrics);
      } catch (err) {
        // A start that fails undoes what it did: bae goes again if the agent loaded it.
        await store?.stop();
        await running.stop();
        if (running.loadedByAgent) unload({ pinDir: running.pinDir });
        await bus.close();
        throw err;
      }
      let web: WebServer | undefined;
      if (opts.http) {
        try {
          web = await startWeb(opts.http, opts, running, bus, node, store?.db);
        } catch (err) {
          bridge.stop();
          await store?.stop();
          await running.stop();
          if (running.loadedByAgent) unload({ pinDir: running.pinDir });
          await bus.close();
          throw err;
        }
      }
      const where = running.peer === undefined ? `in ingress mode on ${running.iface}` : `inline between ${running.iface} and ${running.peer}`;
      const metricsUrl = running.status().metricsUrl;
      process.stdout.write(`bae agent running ${where}; socket ${running.socketPath}; bus ${busName(bus)} as node ${node}${metricsUrl ? `; metrics at ${metricsUrl}` : ''}${web ? `; live view at ${web.url}` : ''}\n`);
      const sig = await untilSignal();
      await web?.close();
      await injectAction?.stop();
      bridge.stop();
      await store?.stop();
      await bus.drain();
      const res = await running.stop();
      process.stdout.write(`bae agent stopped (${sig}): ${res.flushed} held frames sent, ${res.dropped} dropped; bae left loaded\n`);
    });

  for (const o of natsAuthOptions()) agent.addOption(o);

  agent
    .command('status')
    .description('show the running agent: ports, delay classes, delay line counters (exit 3 when none runs)')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const pinDir = pinDirOf(command);
      const socket = agentSocketPath(pinDir);
      let st: Json<AgentStatus>;
      try {
        st = await agentRequest<Json<AgentStatus>>(socket, { op: 'status' });
      } catch (err) {
        if (!(err instanceof NoAgentError)) throw err;
        // --json still prints a value (null: no agent); the reason goes where errors go, exit 3.
        if (opts.json) process.stdout.write('null\n');
        throw new AgentNotRunningError(`no bae agent is running for ${pinDir} (${socket} does not answer)`, { cause: err });
      }
      process.stdout.write((opts.json ? toJson(st, 2) : renderAgentStatus(st)) + '\n');
    });
}
