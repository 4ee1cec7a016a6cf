// A user-space anomaly detector over the conversation profiles: per source, an exponentially
// weighted baseline (mean and variance) of four figures, and an anomaly when a new sample lies
// more than `threshold` standard deviations from it.
//
// Fed with successive snapshots of the kernel's cumulative counters (sourceTotals of
// readProfiles), it works on what changed between two snapshots: packets/s, bytes/s, mean frame
// size and mean inter-arrival gap of what the source sent in that interval. An interval in
// which a source sent nothing is no sample (a source that pauses is not an anomaly); a source
// silent for `idleMs` is forgotten, and starts a new baseline (warm-up included) when it comes
// back. Time comes with each snapshot: the detector reads no clock.
import { UsageError } from '../errors';
import type { ConversationProfile } from './profiles';

export const DETECTOR_METRICS = ['packets_per_second', 'bytes_per_second', 'mean_frame_bytes', 'mean_interarrival_seconds'] as const;
export type DetectorMetric = (typeof DETECTOR_METRICS)[number];

export interface DetectorOptions {
  /** Weight of a new sample in the baseline, 0 < alpha <= 1 (default 0.1: about the last 10-20 samples count). */
  alpha?: number;
  /** |z| above this is an anomaly (default 4). */
  threshold?: number;
  /** Samples of a source before it can be anomalous (default 10). */
  warmup?: number;
  /** A source that sent nothing for this long is forgotten, ms (default 60 000). */
  idleMs?: number;
  /**
   * The standard deviation used is at least this fraction of the mean (default 0.1), so that a
   * figure that never varied (every frame 98 bytes) does not make a 1 % change an anomaly.
   */
  minRelativeStddev?: number;
  /** Sources followed at once; more are not followed until others age out (default 100 000). */
  maxSources?: number;
}

export const DETECTOR_DEFAULTS: Required<DetectorOptions> = {
  alpha: 0.1,
  threshold: 4,
  warmup: 10,
  idleMs: 60_000,
  minRelativeStddev: 0.1,
  maxSources: 100_000,
};

/** What a source has sent so far (cumulative, as the kernel counts it). */
export interface SourceTotals {
  packets: bigint;
  bytes: bigint;
  iatSumNs: bigint;
  iatCount: bigint;
}

export interface ProfileSnapshot {
  /** When the snapshot was read, ms (wall clock: Date.now() in the agent). */
  atMs: number;
  sources: ReadonlyMap<string, SourceTotals>;
}

export interface Anomaly {
  source: string;
  metric: DetectorMetric;
  /** The figure in the interval that ended at `at`. */
  value: number;
  /** The baseline before this sample: its mean and the standard deviation used (floor applied). */
  mean: number;
  stddev: number;
  /** (value - mean) / stddev: positive above the baseline, negative below. */
  z: number;
  /** ISO time of the snapshot that showed it. */
  at: string;
}

interface Baseline {
  mean: number;
  variance: number;
  samples: number;
}

interface SourceState {
  /** Totals at the last snapshot the source was in; undefined after it was missing from one. */
  totals: SourceTotals | undefined;
  lastAtMs: number;
  lastActiveMs: number;
  baselines: Record<DetectorMetric, Baseline>;
}

const freshBaselines = (): Record<DetectorMetric, Baseline> =>
  Object.fromEntries(DETECTOR_METRICS.map((m) => [m, { mean: 0, variance: 0, samples: 0 }])) as Record<DetectorMetric, Baseline>;

/** Each source's totals: what it sent (its direction) summed over its conversations. */
export function sourceTotals(profiles: readonly ConversationProfile[]): Map<string, SourceTotals> {
  const out = new Map<string, SourceTotals>();
  const add = (source: string, d: ConversationProfile['aToB']) => {
    if (d.packets === 0n) return;
    const t = out.get(source) ?? { packets: 0n, bytes: 0n, iatSumNs: 0n, iatCount: 0n };
    t.packets += d.packets;
    t.bytes += d.bytes;
    t.iatSumNs += d.iatSumNs;
    t.iatCount += d.iatCount;
    out.set(source, t);
  };
  for (const p of profiles) {
    add(p.a, p.aToB);
    add(p.b, p.bToA);
  }
  return out;
}

function checkOptions(o: DetectorOptions): Required<DetectorOptions> {
  const v = { ...DETECTOR_DEFAULTS, ...o };
  const bad = (what: string, value: unknown, want: string) => new UsageError(`detector ${what} ${String(value)}: ${want}`);
  if (!(v.alpha > 0 && v.alpha <= 1)) throw bad('alpha', v.alpha, 'must be above 0 and at most 1');
  if (!(v.threshold > 0 && Number.isFinite(v.threshold))) throw bad('threshold', v.threshold, 'must be a positive number of standard deviations');
  if (!Number.isInteger(v.warmup) || v.warmup < 1) throw bad('warm-up', v.warmup, 'must be a whole number of samples, at least 1');
  if (!(v.idleMs > 0 && Number.isFinite(v.idleMs))) throw bad('idle time', v.idleMs, 'must be a positive number of ms');
  if (!(v.minRelativeStddev >= 0 && v.minRelativeStddev < 10)) throw bad('minimum relative stddev', v.minRelativeStddev, 'must be in [0, 10)');
  if (!Number.isInteger(v.maxSources) || v.maxSources < 1) throw bad('source limit', v.maxSources, 'must be a whole number, at least 1');
  return v;
}

export class AnomalyDetector {
  readonly options: Readonly<Required<DetectorOptions>>;
  #sources = new Map<string, SourceState>();
  /** Sources seen while maxSources were followed (not followed). */
  untracked = 0;

  constructor(options: DetectorOptions = {}) {
    this.options = Object.freeze(checkOptions(options));
  }

  /** Sources followed now. */
  get sourceCount(): number {
    return this.#sources.size;
  }

  /** A source's baseline of one figure (undefined when the source is not followed). */
  baseline(source: string, metric: DetectorMetric): { mean: number; stddev: number; samples: number } | undefined {
    const b = this.#sources.get(source)?.baselines[metric];
    return b && { mean: b.mean, stddev: Math.sqrt(b.variance), samples: b.samples };
  }

  /** Takes one snapshot; returns the anomalies it shows (several per source when several figures jump). */
  observe(snapshot: ProfileSnapshot): Anomaly[] {
    const { atMs } = snapshot;
    const anomalies: Anomaly[] = [];
    const at = new Date(atMs).toISOString();
    for (const [source, totals] of snapshot.sources) {
      const st = this.#sources.get(source);
      if (!st) {
        if (this.#sources.size >= this.options.maxSources) {
          this.untracked++;
          continue;
        }
        this.#sources.set(source, { totals, lastAtMs: atMs, lastActiveMs: atMs, baselines: freshBaselines() });
        continue;
      }
      const prev = st.totals;
      const dtMs = atMs - st.lastAtMs;
      if (dtMs <= 0) continue; // the same instant again: nothing to learn
      st.totals = totals;
      st.lastAtMs = atMs;
      if (!prev) continue; // back after a snapshot without it: these totals start a new count
      const dp = totals.packets - prev.packets;
      const db = totals.bytes - prev.bytes;
      const dIatSum = totals.iatSumNs - prev.iatSumNs;
      const dIatCount = totals.iatCount - prev.iatCount;
      // Conversations evicted from the kernel's LRU map take their counts with them.
      if (dp < 0n || db < 0n || dIatSum < 0n || dIatCount < 0n) continue;
      if (dp === 0n) continue; // quiet: no sample
      st.lastActiveMs = atMs;
      const seconds = dtMs / 1000;
      const values: Partial<Record<DetectorMetric, number>> = {
        packets_per_second: Number(dp) / seconds,
        bytes_per_second: Number(db) / seconds,
        mean_frame_bytes: Number(db) / Number(dp),
      };
      if (dIatCount > 0n) values.mean_interarrival_seconds = Number(dIatSum) / Number(dIatCount) / 1e9;
      for (const metric of DETECTOR_METRICS) {
        const x = values[metric];
        if (x === undefined) continue;
        const a = this.#sample(st.baselines[metric], x);
        if (a) anomalies.push({ source, metric, value: x, ...a, at });
      }
    }
    for (const [source, st] of this.#sources) {
      if (!snapshot.sources.has(source)) st.totals = undefined;
      if (atMs - st.lastActiveMs > this.options.idleMs) this.#sources.delete(source);
    }
    return anomalies;
  }

  /** Scores x against the baseline (after the warm-up), then folds it in. */
  #sample(b: Baseline, x: number): { mean: number; stddev: number; z: number } | undefined {
    const { alpha, threshold, warmup, minRelativeStddev } = this.options;
    let found: { mean: number; stddev: number; z: number } | undefined;
    if (b.samples >= warmup) {
      const stddev = Math.max(Math.sqrt(b.variance), minRelativeStddev * Math.abs(b.mean));
      if (stddev > 0) {
        const z = (x - b.mean) / stddev;
        if (Math.abs(z) > threshold) found = { mean: b.mean, stddev, z };
      }
    }
    if (b.samples === 0) {
      b.mean = x;
      b.variance = 0;
    } else {
      // The exponentially weighted mean and variance (West 1979; Finch 2009, "Incremental
      // calculation of weighted mean and variance"): an anomalous sample is folded in too, so a
      // lasting step becomes the new normal within a few samples instead of alarming forever.
      const d = x - b.mean;
      b.mean += alpha * d;
      b.variance = (1 - alpha) * (b.variance + alpha * d * d);
    }
    b.samples++;
    return found;
  }
}
