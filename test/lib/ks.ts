// One-sample Kolmogorov-Smirnov test and a lag-1 autocorrelation, for the jitter tests.

/** sup |F_n(x) - F(x)| of the samples against the CDF `cdf`. */
export function ksStatistic(samples: ArrayLike<number>, cdf: (x: number) => number): number {
  const xs = Array.from(samples).sort((a, b) => a - b);
  const n = xs.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = cdf(xs[i]!);
    d = Math.max(d, f - i / n, (i + 1) / n - f);
  }
  return d;
}

/**
 * Critical value of the one-sample KS statistic at significance `alpha` for n samples, from the
 * asymptotic Kolmogorov distribution: c(alpha) / sqrt(n) with c(alpha) = sqrt(-ln(alpha / 2) / 2).
 */
export function ksCriticalValue(n: number, alpha: number): number {
  return Math.sqrt(-Math.log(alpha / 2) / 2) / Math.sqrt(n);
}

/** Lag-1 sample autocorrelation. */
export function lag1Autocorrelation(samples: ArrayLike<number>): number {
  const xs = Array.from(samples);
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) {
    den += (xs[i]! - mean) ** 2;
    if (i > 0) num += (xs[i]! - mean) * (xs[i - 1]! - mean);
  }
  return num / den;
}

/** Two-sided standard normal quantile for the test bounds (alpha = 0.001: 3.2905). */
export const Z_ALPHA_0001 = 3.2905;
