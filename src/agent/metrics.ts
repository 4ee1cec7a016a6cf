// The agent's Prometheus metrics (prom-client): what the kernel counted, read at scrape time,
// and the gauges that other parts of the agent set (the bus's state, the detector's anomalies).
//
// One scrape reads the kernel once (bae_stats, the policy maps, the delay line) into a snapshot;
// every collector then reports from that snapshot, so the figures of one scrape belong together.
// A scrape that cannot read the kernel (bae unloaded under the agent) reports bae_up 0 and
// leaves the kernel's series out rather than failing the whole page.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import {
  MAPS,
  PARSE_OUTCOMES,
  VERDICT_NAMES,
  openLoadedMap,
  sumStatsPerCpu,
  type PolicyCountersValue,
  type PolicyDelayStats,
  type PolicyStatsValue,
  type Stats,
} from '../datapath';
import type { DelayLineStats } from '../emulation';
import { moduleLogger } from '../log';
import { openPolicyMaps, readBlocklist, readCounters, readPolicyStats, storedNames } from '../policy';

const log = moduleLogger('agent/metrics');

/** The delay line's counters the metrics report (what AgentStatus carries). */
export type DelayLineCounters = Pick<DelayLineStats, 'received' | 'transmitted' | 'overflow' | 'duplicated' | 'reordered' | 'inFlight' | 'txErrors' | 'txDropped' | 'lateDropped'>;

export interface AgentMetricsOptions {
  pinDir: string;
  /** The delay line's counters, when the agent holds one (inline mode). */
  delayLine?: () => { kernel: PolicyDelayStats; line: DelayLineCounters };
  /** Now on the kernel's clock (CLOCK_MONOTONIC ns), for blocks whose expiry is ahead. */
  nowNs?: () => bigint;
  /** Node's process metrics (process_*, nodejs_*) too (default true). */
  processMetrics?: boolean;
}

/** What one scrape read from the kernel. */
interface KernelSnapshot {
  stats: Stats | undefined;
  policies: { name: string; counters: PolicyCountersValue }[];
  policyStats: PolicyStatsValue;
  blocksActive: number;
  blocklistEntries: number;
}

function readKernel(pinDir: string, nowNs: bigint): KernelSnapshot {
  const statsMap = openLoadedMap(MAPS.stats, pinDir, 'bae agent --metrics');
  let stats: Stats | undefined;
  try {
    const perCpu = statsMap.lookupPerCpu(Buffer.alloc(4));
    stats = perCpu ? sumStatsPerCpu(perCpu) : undefined;
  } finally {
    statsMap.close();
  }
  const loaded = openPolicyMaps(pinDir);
  try {
    const names = storedNames(pinDir);
    const counters = readCounters(loaded.maps);
    const blocklist = readBlocklist(loaded.maps);
    return {
      stats,
      policies: [...counters].map(([id, c]) => ({ name: names.get(id) ?? `#${id}`, counters: c })),
      policyStats: readPolicyStats(loaded.maps),
      blocksActive: blocklist.filter((b) => b.expiryNs > nowNs).length,
      blocklistEntries: blocklist.length,
    };
  } finally {
    loaded.close();
  }
}

/** A counter whose value the kernel keeps: set from the scrape's snapshot (never decreases while bae stays loaded). */
function kernelCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  values: () => Iterable<[Partial<Record<L, string>>, bigint | number]> | undefined,
): Counter<L> {
  return new Counter<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      const vs = values();
      // reset() leaves an unlabelled metric at 0: without a reading it has no sample at all.
      if (!vs) {
        if (labelNames.length === 0) this.remove({});
        return;
      }
      for (const [labels, v] of vs) this.inc(labels, Number(v));
    },
  });
}

function kernelGauge(registry: Registry, name: string, help: string, value: () => number | undefined): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      const v = value();
      if (v !== undefined) this.set(v);
      else this.remove({});
    },
  });
}

/**
 * The agent's registry. Counters of the kernel are read at scrape time (`exposition()`); the bus
 * and the detector set theirs through setBusConnected, setBusLag and countAnomaly.
 */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly pinDir: string;
  #snapshot: KernelSnapshot | undefined;
  #delayLine: AgentMetricsOptions['delayLine'];
  #delay: ReturnType<NonNullable<AgentMetricsOptions['delayLine']>> | undefined;
  #nowNs: () => bigint;
  #busConnected: Gauge;
  #busLag: Gauge;
  #busBuffered: Gauge;
  #busDropped: Counter;
  #anomalies: Counter<'metric'>;
  #readErrors: Counter;
  #lastReadError = '';

  constructor(opts: AgentMetricsOptions) {
    this.pinDir = opts.pinDir;
    this.#nowNs = opts.nowNs ?? (() => process.hrtime.bigint());
    const r = this.registry;
    const snap = () => this.#snapshot;

    new Gauge({
      name: 'bae_up',
      help: "1 when this scrape read bae's kernel maps, 0 when it could not (bae unloaded under the agent: the bae_* kernel series are then missing)",
      registers: [r],
      collect: function (this: Gauge) {
        this.set(snap() ? 1 : 0);
      },
    });
    this.#readErrors = new Counter({
      name: 'bae_kernel_read_errors_total',
      help: "Scrapes that could not read bae's kernel maps (the agent's log says why)",
      registers: [r],
    });

    // ---- the datapath's global counters (bae_stats, summed over CPUs) ----
    kernelCounter(
      r,
      'bae_packets_total',
      'Frames the XDP program finished, by verdict: pass (to the kernel stack, ingress mode), redirect (forwarded to the other port or into the delay line, inline mode), drop (a policy or the blocklist), tx (sent back out of the port it came in on), aborted (a program error: should stay 0)',
      ['verdict'],
      () => snap()?.stats && VERDICT_NAMES.map((v) => [{ verdict: v }, snap()!.stats!.verdicts[v]] as [{ verdict: string }, bigint]),
    );
    kernelCounter(
      r,
      'bae_parse_outcomes_total',
      'Frames by how far the parser got (exactly one outcome per frame): tcp, udp, icmp, icmpv6 are complete headers; fragment, unknown_l4 and the trunc_*/bad_* outcomes say what was missing or malformed (docs/profiles.md lists them)',
      ['outcome'],
      () => snap()?.stats && PARSE_OUTCOMES.map((o) => [{ outcome: o }, snap()!.stats!.parse[o]] as [{ outcome: string }, bigint]),
    );
    kernelCounter(
      r,
      'bae_profile_inserts_failed_total',
      'Frames not profiled because their map had no room: map="conversations" (bae_convs) or "tcp_flows" (bae_tcp_flows); with LRU maps this stays 0 in practice',
      ['map'],
      () => {
        const s = snap()?.stats;
        return s && [[{ map: 'conversations' }, s.convFull], [{ map: 'tcp_flows' }, s.flowFull]];
      },
    );
    kernelCounter(r, 'bae_inline_no_port_total', 'Frames passed to the stack in inline mode because their ingress port has no entry in bae_ports (a port bae does not bridge)', [], () => {
      const s = snap()?.stats;
      return s && [[{}, s.inlineNoPort]];
    });

    // ---- the policy stage (policy_counters per policy, policy_stats, policy_blocklist) ----
    const perPolicy = (field: keyof PolicyCountersValue) => () =>
      snap()?.policies.map((p) => [{ policy: p.name }, p.counters[field]] as [{ policy: string }, bigint]);
    kernelCounter(r, 'bae_policy_matched_packets_total', "Packets that matched a policy's match block (its rule hits), whether or not its trigger was on", ['policy'], perPolicy('matched'));
    kernelCounter(r, 'bae_policy_applied_packets_total', "Packets a policy's actions were applied to (matched while its trigger, if any, was on)", ['policy'], perPolicy('applied'));
    kernelCounter(r, 'bae_policy_trigger_fires_total', "Times a policy's trigger switched on (its window sum crossed the threshold)", ['policy'], perPolicy('fired'));
    kernelCounter(r, 'bae_policy_blocks_total', "Sources a policy's block action put on the blocklist", ['policy'], perPolicy('blocks'));
    kernelCounter(r, 'bae_blocks_issued_total', 'Blocklist entries written, all policies together (bae_policy_blocks_total summed)', [], () => {
      const s = snap();
      return s && [[{}, s.policies.reduce((sum, p) => sum + p.counters.blocks, 0n)]];
    });
    kernelGauge(r, 'bae_blocks_active', 'Blocklist entries whose expiry is still ahead: sources whose packets are dropped now', () => snap()?.blocksActive);
    kernelGauge(r, 'bae_blocklist_entries', 'Blocklist entries held in the kernel, expired ones included (policy_blocklist is an LRU map; expired entries wait to be reused)', () => snap()?.blocklistEntries);
    kernelCounter(r, 'bae_blocklist_dropped_packets_total', 'Packets dropped because their source was on the blocklist (checked before any rule)', [], () => {
      const s = snap();
      return s && [[{}, s.policyStats.blocklistDrops]];
    });
    kernelCounter(r, 'bae_ringbuf_events_lost_total', 'Policy events (fire, block, match) the kernel could not put in the ring buffer because it was full: a reader fell behind', [], () => {
      const s = snap();
      return s && [[{}, s.policyStats.eventsLost]];
    });
    kernelCounter(r, 'bae_capture_records_total', 'Frames the capture actions copied to the capture ring (bae capture reads them)', [], () => {
      const s = snap();
      return s && [[{}, s.policyStats.captured]];
    });
    kernelCounter(r, 'bae_capture_lost_total', 'Frames a capture action could not copy because the capture ring was full: its reader fell behind', [], () => {
      const s = snap();
      return s && [[{}, s.policyStats.captureLost]];
    });
    kernelCounter(r, 'bae_policy_table_full_total', 'Packets whose trigger window or emulation state found no room: table="triggers" (policy_triggers) or "act_states"', ['table'], () => {
      const s = snap();
      return s && [[{ table: 'triggers' }, s.policyStats.triggerFull], [{ table: 'act_states' }, s.policyStats.actStateFull]];
    });

    // ---- the delay line (inline mode: AgentStatus.kernel and .line) ----
    if (opts.delayLine) {
      this.#delayLine = opts.delayLine;
      const cur = () => this.#delay;
      const line = (f: keyof DelayLineCounters) => () => {
        const d = cur();
        return d && ([[{}, d.line[f]]] as [Record<string, string>, number][]);
      };
      kernelGauge(r, 'bae_delay_line_frames_held', 'Frames the delay line holds now, waiting for their due time', () => cur()?.line.inFlight);
      kernelCounter(r, 'bae_delay_line_redirected_frames_total', 'Frames the XDP program redirected into the delay line (a delay, duplicate or reorder policy applied)', [], () => cur() && [[{}, cur()!.kernel.redirected]]);
      kernelCounter(r, 'bae_delay_line_no_socket_frames_total', 'Frames of a delay class forwarded undelayed because no delay-line socket held their slot', [], () => cur() && [[{}, cur()!.kernel.noSocket]]);
      kernelCounter(r, 'bae_delay_line_received_frames_total', 'Frames the delay line took from its receive rings', [], line('received'));
      kernelCounter(r, 'bae_delay_line_transmitted_frames_total', 'Frames the delay line handed to a transmit ring (duplicates included)', [], line('transmitted'));
      kernelCounter(r, 'bae_delay_line_overflow_frames_total', 'Frames that found the delay line full (dropped or passed undelayed, per --overflow)', [], line('overflow'));
      kernelCounter(r, 'bae_delay_line_late_dropped_frames_total', 'Frames dropped because they were more than --max-late-ms past due (the line was over capacity)', [], line('lateDropped'));
      kernelCounter(r, 'bae_delay_line_tx_dropped_frames_total', 'Frames dropped because their egress port was down and its transmit ring full', [], line('txDropped'));
      kernelCounter(r, 'bae_delay_line_tx_errors_total', 'Failed transmit kicks (egress port down or gone)', [], line('txErrors'));
      kernelCounter(r, 'bae_delay_line_duplicated_frames_total', 'Copies made by duplicate policies', [], line('duplicated'));
      kernelCounter(r, 'bae_delay_line_reordered_frames_total', 'Frames sent ahead of the delay by reorder policies', [], line('reordered'));
    }

    // ---- set by other parts of the agent ----
    this.#busConnected = new Gauge({ name: 'bae_bus_connected', help: 'Whether the agent is connected to its message bus: 1 connected, 0 not (events are buffered meanwhile)', registers: [r] });
    this.#busLag = new Gauge({ name: 'bae_bus_lag_seconds', help: 'Age of the oldest kernel event not yet delivered to the bus, in seconds (0 when none waits)', registers: [r] });
    this.#busBuffered = new Gauge({ name: 'bae_bus_events_buffered', help: 'Events held by the agent for the bus, not yet acknowledged (they grow while the bus is away)', registers: [r] });
    this.#busDropped = new Counter({ name: 'bae_bus_events_dropped_total', help: "Events the agent could not keep for the bus because its buffer was full (counted, never blocking the datapath)", registers: [r] });
    this.#anomalies = new Counter({ name: 'bae_anomalies_total', help: "Anomalies the detector (bae agent --detect) reported, by metric: a source's figure more than --detect-threshold standard deviations from its baseline", labelNames: ['metric'], registers: [r] });
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: r });
  }

  setBusConnected(connected: boolean): void {
    this.#busConnected.set(connected ? 1 : 0);
  }

  setBusLag(seconds: number): void {
    this.#busLag.set(seconds);
  }

  setBusBuffered(events: number): void {
    this.#busBuffered.set(events);
  }

  countBusEventsDropped(events = 1): void {
    this.#busDropped.inc(events);
  }

  countAnomaly(metric: string): void {
    this.#anomalies.inc({ metric });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition of every metric, the kernel read once for it. */
  async exposition(): Promise<string> {
    try {
      this.#snapshot = readKernel(this.pinDir, this.#nowNs());
      this.#lastReadError = '';
    } catch (err) {
      this.#snapshot = undefined;
      this.#readErrors.inc();
      const msg = err instanceof Error ? err.message : String(err);
      // Once per distinct failure: a scraper every 15 s must not fill the log.
      if (msg !== this.#lastReadError) log.warn({ err, pinDir: this.pinDir }, "metrics: cannot read bae's kernel maps");
      this.#lastReadError = msg;
    }
    this.#delay = this.#delayLine?.();
    try {
      return await this.registry.metrics();
    } finally {
      this.#snapshot = undefined;
      this.#delay = undefined;
    }
  }
}
