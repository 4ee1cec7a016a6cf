// Jitter distributions as netem defines them (iproute2 normal.dist, pareto.dist,
// paretonormal.dist; uniform when no table is given). A delay is mu + sigma * t, where t is drawn
// from the unit distribution below. The native delay line (addon/delay_line/netem.h) draws t from a
// 4096-entry quantile table like netem; these are the continuous definitions the tables sample,
// used to validate parameters, to document, and by the Kolmogorov-Smirnov tests.

export const JITTER_DISTRIBUTIONS = ['uniform', 'normal', 'pareto', 'paretonormal'] as const;
export type JitterDistribution = (typeof JITTER_DISTRIBUTIONS)[number];

/** The code the native side uses for each distribution (enum Distribution in addon/delay_line/netem.h). */
export const DISTRIBUTION_CODES: Record<JitterDistribution, number> = { uniform: 0, normal: 1, pareto: 2, paretonormal: 3 };

/** netem's tables hold int16 values scaled by 8192: a unit draw never exceeds this. */
export const NETEM_TABLE_CLAMP = 32767 / 8192;
/** Entries of a netem distribution table: the native draw is one of this many quantiles. */
export const NETEM_TABLE_SIZE = 4096;

export function isJitterDistribution(s: unknown): s is JitterDistribution {
  return typeof s === 'string' && (JITTER_DISTRIBUTIONS as readonly string[]).includes(s);
}

/** The error function, Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7). */
export function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign * (1 - poly * Math.exp(-a * a));
}

/** Standard normal CDF. */
export function normalCdf(x: number): number {
  return 0.5 * (1 + erf(x / Math.SQRT2));
}

function bisect(f: (x: number) => number, target: number, lo: number, hi: number, steps = 60): number {
  for (let i = 0; i < steps; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) < target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Standard normal quantile. */
export function normalQuantile(p: number): number {
  return bisect(normalCdf, p, -10, 10);
}

/** netem's pareto: shape 3, scale 1 (mean 1.5), shifted to mean 0 and scaled by 4/3. */
export function paretoQuantile(p: number): number {
  return (Math.pow(1 - p, -1 / 3) - 1.5) * (4 / 3);
}

/** netem's paretonormal: quantiles of normal and pareto added with weights 1/4 and 3/4. */
export function paretoNormalQuantile(p: number): number {
  return (normalQuantile(p) + 3 * paretoQuantile(p)) / 4;
}

/** CDF of the unit distribution t (delay = mu + sigma * t), with netem's table clamp. */
export function unitCdf(dist: JitterDistribution, t: number): number {
  if (t >= NETEM_TABLE_CLAMP && dist !== 'uniform') return 1;
  switch (dist) {
    case 'uniform':
      return Math.min(1, Math.max(0, (t + 1) / 2));
    case 'normal':
      return t < -NETEM_TABLE_CLAMP ? 0 : normalCdf(t);
    case 'pareto':
      return t < -2 / 3 ? 0 : 1 - Math.pow(1.5 + 0.75 * t, -3);
    case 'paretonormal': {
      // Monotone quantile function: invert it numerically.
      if (t < -NETEM_TABLE_CLAMP) return 0;
      const lo = 1e-12, hi = 1 - 1e-12;
      if (paretoNormalQuantile(lo) >= t) return 0;
      if (paretoNormalQuantile(hi) <= t) return 1;
      return bisect(paretoNormalQuantile, t, lo, hi, 50);
    }
  }
}

/** CDF of the delay (same unit as mu and sigma); a negative draw means "at once" (0). */
export function delayCdf(dist: JitterDistribution, mu: number, sigma: number, x: number): number {
  if (x < 0) return 0;
  if (sigma === 0) return x >= mu ? 1 : 0;
  return unitCdf(dist, (x - mu) / sigma);
}
