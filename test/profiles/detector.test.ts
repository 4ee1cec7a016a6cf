// test-unit: needs no root and no kernel (make test-unit).
// The anomaly detector on synthetic series: cumulative totals per source, one snapshot a
// second, the clock handed in. Expected baselines come from a plain restatement of the EWMA
// recurrences below, and from their closed forms where a series has one.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Conv, convKeyFor, emptyConvDir, encodeConv, encodeConvKey } from '../../src/datapath/layout';
import { AnomalyDetector, profileFromEntry, sourceTotals, type Anomaly, type DetectorOptions, type SourceTotals } from '../../src/profiles';
import { UsageError } from '../../src/errors';
import { rng } from '../lib/rng';

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);

/** Per interval: packets sent, bytes per packet, gap between packets (ms). */
interface Step {
  packets: number;
  size?: number;
  gapMs?: number;
}

/** Feeds a detector one snapshot per `intervalMs`, each source's totals growing by its step. */
class Feeder {
  readonly det: AnomalyDetector;
  readonly totals = new Map<string, SourceTotals>();
  atMs = T0;
  readonly anomalies: (Anomaly & { sample: number })[] = [];
  sample = 0;

  constructor(options: DetectorOptions = {}) {
    this.det = new AnomalyDetector(options);
  }

  tick(steps: Record<string, Step>, intervalMs = 1000): Anomaly[] {
    this.atMs += intervalMs;
    for (const [src, s] of Object.entries(steps)) {
      const t = this.totals.get(src) ?? { packets: 0n, bytes: 0n, iatSumNs: 0n, iatCount: 0n };
      t.packets += BigInt(s.packets);
      t.bytes += BigInt(s.packets * (s.size ?? 100));
      t.iatCount += BigInt(s.packets);
      t.iatSumNs += BigInt(s.packets) * BigInt(Math.round((s.gapMs ?? 10) * 1e6));
      this.totals.set(src, t);
    }
    const found = this.det.observe({ atMs: this.atMs, sources: new Map([...this.totals].map(([k, v]) => [k, { ...v }])) });
    this.anomalies.push(...found.map((a) => ({ ...a, sample: this.sample })));
    this.sample++;
    return found;
  }
}

/** The EWMA recurrences, restated: the baseline after each sample of xs. */
function ewma(xs: readonly number[], alpha: number): { mean: number; variance: number } {
  let mean = xs[0]!;
  let variance = 0;
  for (const x of xs.slice(1)) {
    const d = x - mean;
    mean += alpha * d;
    variance = (1 - alpha) * (variance + alpha * d * d);
  }
  return { mean, variance };
}

describe('anomaly detector', () => {
  test('a steady source with noise (seeded) gives no anomaly over 600 samples', () => {
    const r = rng(20261206);
    const f = new Feeder();
    for (let i = 0; i < 600; i++) {
      f.tick({ '10.0.0.1': { packets: r.int(90, 110), size: r.int(95, 105), gapMs: 9 + 2 * r() } });
    }
    assert.deepEqual(f.anomalies, []);
    const b = f.det.baseline('10.0.0.1', 'packets_per_second')!;
    assert.ok(Math.abs(b.mean - 100) < 5 && b.samples === 599, `baseline ${JSON.stringify(b)}`);
  });

  test('a step gives one anomaly per stepped figure, at the step, with the expected z; the new level becomes normal', () => {
    const alpha = 0.1;
    const f = new Feeder({ alpha, minRelativeStddev: 0 });
    const series: number[] = [];
    for (let i = 0; i < 200; i++) {
      const packets = i % 2 ? 110 : 100;
      if (i > 0) series.push(packets); // the first snapshot only sets the totals
      f.tick({ '10.0.0.1': { packets } });
    }
    assert.deepEqual(f.anomalies, []);
    // Alternating 100/110: the mean settles near 105 and the standard deviation near 5; the
    // restatement gives the exact figures the detector must have used.
    const expected = ewma(series, alpha);
    assert.ok(Math.abs(expected.mean - 105) < 0.3 && Math.abs(Math.sqrt(expected.variance) - 5) < 0.5, `baseline ${JSON.stringify(expected)}`);
    const step = f.tick({ '10.0.0.1': { packets: 1000 } });
    const z = (1000 - expected.mean) / Math.sqrt(expected.variance);
    assert.deepEqual(step.map((a) => a.metric).sort(), ['bytes_per_second', 'packets_per_second']);
    const pps = step.find((a) => a.metric === 'packets_per_second')!;
    assert.equal(pps.source, '10.0.0.1');
    assert.equal(pps.value, 1000);
    assert.ok(Math.abs(pps.mean - expected.mean) < 1e-9 && Math.abs(pps.stddev - Math.sqrt(expected.variance)) < 1e-9);
    assert.ok(Math.abs(pps.z - z) < 1e-9, `z ${pps.z}, expected ${z}`);
    assert.ok(pps.z > 150 && pps.z < 200, `z ${pps.z}: (1000 - 105) / 5 is 179`);
    const bps = step.find((a) => a.metric === 'bytes_per_second')!;
    assert.ok(Math.abs(bps.z - z) < 1e-9, 'bytes/s steps by the same factor');
    assert.equal(pps.at, new Date(f.atMs).toISOString());
    // The baseline took the step in: the next sample at the new level scores about
    // z = sqrt((1 - alpha) / alpha) = 3 < 4, and less after that.
    for (let i = 0; i < 50; i++) f.tick({ '10.0.0.1': { packets: 1000 } });
    assert.equal(f.anomalies.length, 2, `only the step: ${JSON.stringify(f.anomalies.slice(2, 4))}`);
  });

  test('a drop in the inter-arrival gap is an anomaly below the baseline (negative z)', () => {
    const f = new Feeder();
    for (let i = 0; i < 30; i++) f.tick({ s: { packets: 5, gapMs: 200 } });
    const found = f.tick({ s: { packets: 5, gapMs: 1 } });
    assert.deepEqual(found.map((a) => a.metric), ['mean_interarrival_seconds']);
    // A constant baseline: the floor (10 % of the mean) is the standard deviation.
    assert.ok(Math.abs(found[0]!.stddev - 0.02) < 1e-12 && Math.abs(found[0]!.z - (0.001 - 0.2) / 0.02) < 1e-9, JSON.stringify(found[0]));
  });

  test('the warm-up is respected: a step after 9 samples is learnt, after 10 it is an anomaly', () => {
    for (const [samplesBefore, expected] of [[9, 0], [10, 2]] as const) {
      const f = new Feeder({ warmup: 10 });
      // The first snapshot only sets the totals; samples start with the second.
      for (let i = 0; i <= samplesBefore; i++) f.tick({ s: { packets: 100 } });
      assert.equal(f.det.baseline('s', 'packets_per_second')!.samples, samplesBefore);
      assert.equal(f.tick({ s: { packets: 1000 } }).length, expected, `step after ${samplesBefore} samples`);
    }
  });

  test('a source that goes quiet is forgotten after the idle time, and starts a new baseline when it returns', () => {
    const f = new Feeder({ idleMs: 30_000 });
    for (let i = 0; i < 20; i++) f.tick({ quiet: { packets: 10 }, busy: { packets: 10 } });
    // quiet sends nothing (its totals stay), busy goes on: quiet's pause is no sample and no anomaly.
    for (let i = 0; i < 30; i++) f.tick({ quiet: { packets: 0 }, busy: { packets: 10 } });
    assert.equal(f.det.baseline('quiet', 'packets_per_second')?.samples, 19, 'still followed at exactly the idle time');
    f.tick({ quiet: { packets: 0 }, busy: { packets: 10 } });
    assert.equal(f.det.baseline('quiet', 'packets_per_second'), undefined, 'forgotten past the idle time');
    assert.equal(f.det.sourceCount, 1);
    // Back with ten times the rate: a new source in warm-up, not an anomaly.
    for (let i = 0; i < 5; i++) f.tick({ quiet: { packets: 100 }, busy: { packets: 10 } });
    assert.deepEqual(f.anomalies, []);
    assert.equal(f.det.baseline('quiet', 'packets_per_second')!.samples, 4);
  });

  test('a source missing from a snapshot (its conversations evicted) restarts its count without a sample', () => {
    const f = new Feeder();
    for (let i = 0; i < 20; i++) f.tick({ s: { packets: 10 } });
    f.atMs += 1000;
    assert.deepEqual(f.det.observe({ atMs: f.atMs, sources: new Map() }), []);
    // Back with smaller totals (a new conversation): no sample from the difference.
    assert.deepEqual(f.det.observe({ atMs: f.atMs + 1000, sources: new Map([['s', { packets: 3n, bytes: 300n, iatSumNs: 0n, iatCount: 0n }]]) }), []);
    assert.equal(f.det.baseline('s', 'packets_per_second')!.samples, 19);
  });

  test("a source's totals are what it sent, summed over its conversations, from both sides", () => {
    const entry = (src: string, dst: string, packets: bigint, bytes: bigint, iatSumNs: bigint) => {
      const { key, dir } = convKeyFor(src, dst);
      const conv: Conv = { dir: [emptyConvDir(), emptyConvDir()] };
      Object.assign(conv.dir[dir], { packets, bytes, iatSumNs, lastSeenNs: 5n, firstSeenNs: 1n });
      return profileFromEntry(encodeConvKey(key), [encodeConv(conv)]);
    };
    const totals = sourceTotals([entry('10.0.0.9', '10.0.0.1', 4n, 400n, 30n), entry('10.0.0.9', '10.0.0.2', 2n, 100n, 7n), entry('10.0.0.2', '10.0.0.9', 1n, 60n, 0n)]);
    assert.deepEqual(totals.get('10.0.0.9'), { packets: 6n, bytes: 500n, iatSumNs: 37n, iatCount: 4n });
    assert.deepEqual(totals.get('10.0.0.2'), { packets: 1n, bytes: 60n, iatSumNs: 0n, iatCount: 0n });
    assert.equal(totals.has('10.0.0.1'), false, 'a receiver that sent nothing is no source');
  });

  test('refuses options outside their ranges, naming the option', () => {
    assert.throws(() => new AnomalyDetector({ alpha: 0 }), (e: unknown) => e instanceof UsageError && /^detector alpha 0: must be above 0 and at most 1$/.test(e.message));
    assert.throws(() => new AnomalyDetector({ alpha: 1.5 }), /detector alpha 1\.5/);
    assert.throws(() => new AnomalyDetector({ threshold: -1 }), /detector threshold -1/);
    assert.throws(() => new AnomalyDetector({ warmup: 0 }), /detector warm-up 0/);
    assert.throws(() => new AnomalyDetector({ idleMs: 0 }), /detector idle time 0/);
  });

  test('follows at most maxSources sources and counts the others', () => {
    const f = new Feeder({ maxSources: 2 });
    f.tick({ a: { packets: 1 }, b: { packets: 1 }, c: { packets: 1 } });
    assert.equal(f.det.sourceCount, 2);
    assert.equal(f.det.untracked, 1);
  });
});
