// Jitter through the real delay line: frames cross the lab, the native thread records the delay
// it drew for each, and the samples are tested against netem's definition of the distribution.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { delayCdf, DelayLine, JITTER_DISTRIBUTIONS, NETEM_TABLE_SIZE, type DelayParams } from '../../src/emulation';
import { createDelayLab, pinNeighbours, sendUdp, type DelayLab } from '../lib/delay-lab';
import { ksCriticalValue, ksStatistic, lag1Autocorrelation, Z_ALPHA_0001 } from '../lib/ks';
import { until } from '../lib/wait';

const SAMPLES = 2000;
const ALPHA = 0.001;
const SEED = 7;
const MU_MS = 20;
const SIGMA_MS = 5;
// The native side draws one of 4096 midpoint quantiles (netem's table), so its CDF is a step
// function within half a step (0.5/4096) of the continuous definition; allow one full step.
const TABLE_RESOLUTION = 1 / NETEM_TABLE_SIZE;

describe('jitter distributions of the delay line', () => {
  let lab: DelayLab | undefined;
  let dl: DelayLine | undefined;

  before(() => {
    lab = createDelayLab('j');
    pinNeighbours(lab);
    dl = new DelayLine({ xskMap: lab.xskMap, ports: [lab.portA, lab.portB], seed: SEED });
  });

  after(async () => {
    await dl?.close();
    lab?.remove();
  });

  /** Sends `n` frames through the line with `params` and returns the delays drawn, in ms. */
  async function collect(params: Partial<DelayParams>, n: number, seed = SEED): Promise<number[]> {
    dl!.setParams({ ...params });
    dl!.setSeed(seed);
    dl!.recordDelays(n);
    // 10 frames per ms: at most mu + 4 sigma = 40 ms of frames (400) are held at once.
    const received = dl!.stats().received;
    const sent = await sendUdp(lab!, 9, n, 10);
    assert.equal(sent, n);
    // Until the line has taken every frame and let each go: right after the send, a loaded machine
    // may not have run the line's thread yet, and nothing is in flight then either.
    await until(`the line to take and send ${n} frames`, () => dl!.stats().received - received >= n && dl!.stats().inFlight === 0, 10_000, 20);
    const { delaysNs } = dl!.takeDelays();
    assert.equal(delaysNs.length, n, `recorded ${delaysNs.length} of ${n} frames`);
    return Array.from(delaysNs, (ns) => ns / 1e6);
  }

  const firstDraws = new Map<string, number[]>();

  // A seed of its own for each distribution: with one seed they would all map the same uniform
  // draws through their quantile functions, and the four tests would be one.
  const seedOf = (distribution: string) => SEED + JITTER_DISTRIBUTIONS.indexOf(distribution as never);

  for (const distribution of JITTER_DISTRIBUTIONS) {
    test(`${distribution} delays pass a Kolmogorov-Smirnov test against netem's definition`, async (t) => {
      const delays = await collect({ delayMs: MU_MS, jitterMs: SIGMA_MS, distribution, correlation: 0 }, SAMPLES, seedOf(distribution));
      firstDraws.set(distribution, delays);
      const d = ksStatistic(delays, (x) => delayCdf(distribution, MU_MS, SIGMA_MS, x));
      const critical = ksCriticalValue(SAMPLES, ALPHA) + (distribution === 'uniform' ? 0 : TABLE_RESOLUTION);
      t.diagnostic(`${distribution}: D = ${d.toFixed(6)}, critical ${critical.toFixed(4)}`);
      assert.ok(d < critical, `${distribution}: D = ${d.toFixed(4)} >= critical ${critical.toFixed(4)} (n=${SAMPLES}, alpha=${ALPHA})`);
    });
  }

  test('the KS test would notice a wrong distribution (normal samples against pareto)', (t) => {
    const normal = firstDraws.get('normal');
    assert.ok(normal, 'the normal test ran first');
    const d = ksStatistic(normal, (x) => delayCdf('pareto', MU_MS, SIGMA_MS, x));
    t.diagnostic(`normal samples against pareto: D = ${d.toFixed(4)}`);
    assert.ok(d > ksCriticalValue(SAMPLES, ALPHA) + TABLE_RESOLUTION, `D = ${d}`);
  });

  test('the same seed and frame sequence give the same delays', async () => {
    const first = firstDraws.get('pareto');
    assert.ok(first, 'the pareto test ran first');
    const again = await collect({ delayMs: MU_MS, jitterMs: SIGMA_MS, distribution: 'pareto', correlation: 0 }, 500, seedOf('pareto'));
    assert.deepEqual(again, first.slice(0, 500));
    const other = await collect({ delayMs: MU_MS, jitterMs: SIGMA_MS, distribution: 'pareto', correlation: 0 }, 500, seedOf('pareto') + 100);
    assert.notDeepEqual(other, first.slice(0, 500), 'another seed gives other delays');
  });

  test('a delay correlation of 0.9 makes successive uniform delays correlate like netem (AR(1), rho 0.9)', async (t) => {
    const rho = 0.9;
    const delays = await collect({ delayMs: MU_MS, jitterMs: SIGMA_MS, distribution: 'uniform', correlation: rho }, SAMPLES);
    const r = lag1Autocorrelation(delays);
    t.diagnostic(`lag-1 autocorrelation ${r.toFixed(4)}`);
    // Standard error of the lag-1 estimate of an AR(1) series: sqrt((1 - rho^2) / n).
    const bound = Z_ALPHA_0001 * Math.sqrt((1 - rho * rho) / SAMPLES);
    assert.ok(Math.abs(r - rho) < bound, `lag-1 autocorrelation ${r.toFixed(3)}, expected ${rho} +- ${bound.toFixed(3)}`);

    const independent = await collect({ delayMs: MU_MS, jitterMs: SIGMA_MS, distribution: 'uniform', correlation: 0 }, SAMPLES);
    const r0 = lag1Autocorrelation(independent);
    assert.ok(Math.abs(r0) < Z_ALPHA_0001 / Math.sqrt(SAMPLES), `uncorrelated draws: lag-1 autocorrelation ${r0.toFixed(3)}`);
  });
});
