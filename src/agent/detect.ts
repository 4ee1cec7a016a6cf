// `bae agent --detect`: every interval, the kernel's conversation profiles are read, summed per
// source and fed to the anomaly detector (src/profiles/detector.ts). Anomalies are logged (warn),
// counted in the metrics, kept in a bounded recent list for `bae agent status`, and handed to
// listeners (the bus publishes them as bae.events.<node>.anomaly).
import { MAPS, openLoadedMap, type BpfMap } from '../datapath';
import { UsageError } from '../errors';
import { moduleLogger } from '../log';
import { AnomalyDetector, readProfiles, sourceTotals, type Anomaly, type DetectorOptions } from '../profiles';

const log = moduleLogger('agent/detect');

/** Anomalies kept for `bae agent status` (the newest; older ones are in the log). */
export const RECENT_ANOMALIES = 100;
export const DEFAULT_DETECT_INTERVAL_MS = 1000;

export interface DetectOptions extends DetectorOptions {
  /** Time between two snapshots, ms (default 1000; 10 ms to 1 h). */
  intervalMs?: number;
}

export interface DetectStatus {
  intervalMs: number;
  alpha: number;
  threshold: number;
  warmup: number;
  idleMs: number;
  /** Sources with a baseline now, and those not followed because maxSources were. */
  sources: number;
  untracked: number;
  /** Snapshots taken, and those that could not read the kernel. */
  snapshots: number;
  readErrors: number;
  anomaliesTotal: number;
  /** The newest anomalies, oldest first (at most RECENT_ANOMALIES). */
  recent: Anomaly[];
}

export class DetectLoop {
  readonly intervalMs: number;
  readonly detector: AnomalyDetector;
  #convs: BpfMap;
  #timer: NodeJS.Timeout | undefined;
  #recent: Anomaly[] = [];
  #listeners: ((a: Anomaly) => void)[] = [];
  #snapshots = 0;
  #readErrors = 0;
  #anomaliesTotal = 0;
  #lastError = '';

  private constructor(convs: BpfMap, intervalMs: number, detector: AnomalyDetector) {
    this.#convs = convs;
    this.intervalMs = intervalMs;
    this.detector = detector;
  }

  /** Checks the options, opens bae_convs at pinDir and starts sampling. */
  static start(pinDir: string, opts: DetectOptions = {}): DetectLoop {
    const { intervalMs = DEFAULT_DETECT_INTERVAL_MS, ...detectorOpts } = opts;
    if (!(intervalMs >= 10 && intervalMs <= 3_600_000)) throw new UsageError(`detect interval ${intervalMs} ms: must be 10 ms to 1 h`);
    const detector = new AnomalyDetector(detectorOpts);
    const loop = new DetectLoop(openLoadedMap(MAPS.convs, pinDir, 'bae agent --detect'), intervalMs, detector);
    loop.#timer = setInterval(() => loop.tick(), intervalMs);
    const o = detector.options;
    log.info({ intervalMs, alpha: o.alpha, threshold: o.threshold, warmup: o.warmup, idleMs: o.idleMs }, 'anomaly detector running');
    loop.tick(); // the first snapshot only sets the totals
    return loop;
  }

  /** Called with each anomaly as it is found. */
  onAnomaly(listener: (a: Anomaly) => void): void {
    this.#listeners.push(listener);
  }

  /** One snapshot: read, detect, report. (The timer calls it; exposed for a test's own pace.) */
  tick(): Anomaly[] {
    let sources;
    try {
      sources = sourceTotals(readProfiles(this.#convs));
      this.#lastError = '';
    } catch (err) {
      this.#readErrors++;
      const msg = err instanceof Error ? err.message : String(err);
      if (msg !== this.#lastError) log.warn({ err }, 'detector: cannot read the conversation profiles');
      this.#lastError = msg;
      return [];
    }
    this.#snapshots++;
    // Wall-clock time that does not jump: rates need the true interval, records a date.
    const atMs = performance.timeOrigin + performance.now();
    const found = this.detector.observe({ atMs, sources });
    for (const a of found) {
      this.#anomaliesTotal++;
      this.#recent.push(a);
      log.warn({ anomaly: a }, `anomaly: ${a.source} ${a.metric} ${a.value.toPrecision(4)} is ${a.z.toFixed(1)} standard deviations from its baseline ${a.mean.toPrecision(4)}`);
      for (const l of this.#listeners) {
        try {
          l(a);
        } catch (err) {
          log.error({ err }, 'an anomaly listener failed');
        }
      }
    }
    if (this.#recent.length > RECENT_ANOMALIES) this.#recent.splice(0, this.#recent.length - RECENT_ANOMALIES);
    return found;
  }

  status(): DetectStatus {
    const o = this.detector.options;
    return {
      intervalMs: this.intervalMs,
      alpha: o.alpha,
      threshold: o.threshold,
      warmup: o.warmup,
      idleMs: o.idleMs,
      sources: this.detector.sourceCount,
      untracked: this.detector.untracked,
      snapshots: this.#snapshots,
      readErrors: this.#readErrors,
      anomaliesTotal: this.#anomaliesTotal,
      recent: [...this.#recent],
    };
  }

  /** Stops sampling and closes the map; safe twice. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#convs.close();
  }
}
