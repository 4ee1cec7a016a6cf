// The seeded random numbers of the tests (mulberry32): the same seed gives the same stream on
// every machine, so a failing generated case is replayed by its seed. Never Math.random in a
// test that generates its input.

export interface Rng {
  /** A float in [0, 1). */
  (): number;
  /** A whole number in [0, 2^32). */
  u32(): number;
  /** A whole number in [lo, hi], both included. */
  int(lo: number, hi: number): number;
  /** One element of a non-empty list. */
  pick<T>(xs: readonly T[]): T;
  /** True with probability p. */
  chance(p: number): boolean;
}

export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const u32 = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const float = () => u32() / 4294967296;
  return Object.assign(float, {
    u32,
    int: (lo: number, hi: number) => lo + Math.floor(float() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => {
      if (xs.length === 0) throw new Error('rng.pick of an empty list');
      return xs[Math.floor(float() * xs.length)]!;
    },
    chance: (p: number) => float() < p,
  });
}
