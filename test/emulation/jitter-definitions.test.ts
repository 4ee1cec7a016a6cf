// test-unit: needs no root and no kernel (make test-unit).
// The continuous definitions that the KS tests hold the delay line to (src/emulation/jitter.ts)
// must themselves be right: checked against closed forms and known values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  delayCdf,
  JITTER_DISTRIBUTIONS,
  NETEM_TABLE_CLAMP,
  normalCdf,
  normalQuantile,
  paretoNormalQuantile,
  paretoQuantile,
  unitCdf,
} from '../../src/emulation';

const close = (a: number, b: number, eps: number, what: string) => assert.ok(Math.abs(a - b) < eps, `${what}: ${a} vs ${b}`);

test('the normal CDF and quantile match the textbook values', () => {
  close(normalCdf(0), 0.5, 1e-7, 'Phi(0)');
  close(normalCdf(1.959964), 0.975, 1e-6, 'Phi(1.96)');
  close(normalCdf(-1), 0.158655, 1e-6, 'Phi(-1)');
  close(normalQuantile(0.975), 1.959964, 1e-5, 'Phi^-1(0.975)');
});

test("netem's pareto has shape 3, mean 0 after its shift, and its CDF inverts its quantile", () => {
  // Q(p) = ((1-p)^(-1/3) - 1.5) * 4/3: the lowest value is -2/3, the median (2^(1/3) - 1.5) * 4/3.
  close(paretoQuantile(0), -2 / 3, 1e-12, 'Q(0)');
  close(paretoQuantile(0.5), (Math.cbrt(2) - 1.5) * (4 / 3), 1e-12, 'median');
  // Mean of the unclamped distribution by integrating the quantile: 0.
  let mean = 0;
  const steps = 200_000;
  for (let i = 0; i < steps; i++) mean += paretoQuantile((i + 0.5) / steps) / steps;
  close(mean, 0, 0.01, 'mean');
  for (const p of [0.01, 0.3, 0.9, 0.98]) close(unitCdf('pareto', paretoQuantile(p)), p, 1e-9, `F(Q(${p}))`);
});

test('every distribution is a CDF: from 0 to 1, non-decreasing, clamped like netem', () => {
  for (const dist of JITTER_DISTRIBUTIONS) {
    let last = 0;
    for (let t = -6; t <= 6; t += 0.01) {
      const f = unitCdf(dist, t);
      assert.ok(f >= last - 1e-12 && f <= 1, `${dist} at ${t}: ${f} after ${last}`);
      last = f;
    }
    assert.equal(unitCdf(dist, -6), 0, `${dist} starts at 0`);
    assert.equal(unitCdf(dist, NETEM_TABLE_CLAMP), 1, `${dist} ends at netem's clamp`);
  }
  close(unitCdf('uniform', 0), 0.5, 1e-12, 'uniform median');
});

test('paretonormal is the weighted sum of the normal and pareto quantiles, and its CDF inverts it', () => {
  for (const p of [0.05, 0.5, 0.95]) {
    close(paretoNormalQuantile(p), (normalQuantile(p) + 3 * paretoQuantile(p)) / 4, 1e-9, `Q(${p})`);
    close(unitCdf('paretonormal', paretoNormalQuantile(p)), p, 1e-6, `F(Q(${p}))`);
  }
});

test('a delay CDF scales the unit distribution and puts negative draws at zero', () => {
  close(delayCdf('normal', 20, 5, 25), normalCdf(1), 1e-12, 'one sigma above');
  assert.equal(delayCdf('uniform', 10, 0, 9.99), 0);
  assert.equal(delayCdf('uniform', 10, 0, 10), 1);
  // uniform 1 +- 2 ms: a quarter of the draws are negative and leave at once (0).
  close(delayCdf('uniform', 1, 2, 0), 0.25, 1e-12, 'mass at zero');
  assert.equal(delayCdf('uniform', 1, 2, -0.001), 0);
});
