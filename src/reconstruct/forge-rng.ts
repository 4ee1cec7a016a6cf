// The seeded random numbers of forged packets (mulberry32, as test/lib/rng.ts): the same seed
// gives the same frames on every machine, so `bae inject --seed S` repeats an experiment.

export interface ForgeRng {
  /** A float in [0, 1). */
  (): number;
  /** A whole number in [0, 2^32). */
  u32(): number;
  /** A whole number in [lo, hi], both included. */
  int(lo: number, hi: number): number;
  /** `n` random bytes. */
  bytes(n: number): Buffer;
}

export function forgeRng(seed: number): ForgeRng {
  let a = seed >>> 0;
  const u32 = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const float = (): number => u32() / 4294967296;
  return Object.assign(float, {
    u32,
    int: (lo: number, hi: number) => lo + Math.floor(float() * (hi - lo + 1)),
    bytes: (n: number) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = u32() & 0xff;
      return b;
    },
  });
}
