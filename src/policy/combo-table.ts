// The combination table of the kernel's policy stage (bpf/bae.h policy_combos): a cuckoo table
// built here, read by the program with plain array reads instead of a hash-map lookup.
//
// Buckets of POLICY.comboWays slots; a key may live in bucket h & mask or (h >> 16) & mask, with
// h = comboHash(key, seed) (bpf/policy.h policy_combo_hash computes the same). Buckets fill from
// slot 0, and a key goes to its second bucket only when the first is full and stays full (an
// insertion that displaces a key puts the new key in its place), so the program stops at the
// first free slot. Slots carry the epoch of the table they belong to: a new table never clears
// the old one's slots, it only writes its own.
import { POLICY } from '../datapath';
import type { ComboTable, CompiledCombo } from './compiled-set';

const BUCKETS_MAX = POLICY.comboSlots / POLICY.comboWays;
/** Displacements one insertion may make before the build starts over with another seed. */
const KICKS_MAX = 500;
const SEEDS_PER_SIZE = 8;

/** The four little-endian words of struct policy_combo_key with gen 0. */
export function comboWords(c: Pick<CompiledCombo, 'proto' | 'sportClass' | 'dportClass' | 'srcClass' | 'dstClass'>): [number, number, number, number] {
  return [((c.proto << 8) | (c.sportClass << 16)) >>> 0, c.dportClass >>> 0, c.srcClass >>> 0, c.dstClass >>> 0];
}

/** One word's step of comboHash(): mixed into the state, then folded. */
const mixWord = (h: number, w: number): number => {
  const x = Math.imul((h ^ w) >>> 0, 0x9e3779b1) >>> 0;
  return (x ^ (x >>> 15)) >>> 0;
};

/**
 * policy_combo_hash of bpf/policy.h: each word of comboWords(c) mixed into the seed, then a final
 * avalanche. Reads the fields directly (no word array): the table build hashes every combination
 * at least once per attempt, as cold code.
 */
export function comboHash(c: CompiledCombo, seed: number): number {
  let h = mixWord(seed >>> 0, ((c.proto << 8) | (c.sportClass << 16)) >>> 0);
  h = mixWord(h, c.dportClass >>> 0);
  h = mixWord(h, c.srcClass >>> 0);
  h = mixWord(h, c.dstClass >>> 0);
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** The buckets a combination may live in. */
export function comboBuckets(c: CompiledCombo, table: Pick<ComboTable, 'mask' | 'seed'>): [number, number] {
  const h = comboHash(c, table.seed);
  return [h & table.mask, (h >>> 16) & table.mask];
}

/** A small deterministic generator for seeds and kick choices (the same set builds the same table). */
function xorshift(state: number): () => number {
  let x = state >>> 0 || 0x2545f491;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

function tryBuild(combos: readonly CompiledCombo[], buckets: number, seed: number, rand: () => number): ComboTable | undefined {
  const ways = POLICY.comboWays;
  const mask = buckets - 1;
  const cells: (CompiledCombo | undefined)[] = new Array(buckets * ways);
  const fill = new Uint8Array(buckets);
  const table = { mask, seed, slots: new Map<number, CompiledCombo>() };
  for (let i = 0; i < combos.length; i++) {
    let item = combos[i]!;
    let placed = false;
    for (let kick = 0; kick <= KICKS_MAX && !placed; kick++) {
      const h = comboHash(item, seed);
      const b1 = h & mask;
      const b2 = (h >>> 16) & mask;
      const free = fill[b1]! < ways ? b1 : fill[b2]! < ways ? b2 : -1;
      if (free >= 0) {
        cells[free * ways + fill[free]!] = item;
        fill[free]!++;
        placed = true;
        break;
      }
      // Both full: take the place of one of the 2 x ways keys, which moves on to its other bucket.
      const pick = rand() % (2 * ways);
      const at = (pick < ways ? b1 : b2) * ways + (pick % ways);
      const out = cells[at]!;
      cells[at] = item;
      item = out;
    }
    if (!placed) return undefined;
  }
  for (let i = 0; i < cells.length; i++) if (cells[i]) table.slots.set(i, cells[i]!);
  return table;
}

/**
 * Builds the table for `combos` with at most 50% of the slots used where the region allows it.
 * Returns undefined when no table fits the region (the compiler's combination limit keeps sets
 * far from that).
 */
export function buildComboTable(combos: readonly CompiledCombo[], seedBase = 1): ComboTable | undefined {
  let buckets = 16;
  while (buckets * POLICY.comboWays < 2 * combos.length && buckets < BUCKETS_MAX) buckets *= 2;
  const rand = xorshift(seedBase * 0x9e3779b1);
  for (; buckets <= BUCKETS_MAX; buckets *= 2) {
    if (combos.length > buckets * POLICY.comboWays) continue;
    for (let i = 0; i < SEEDS_PER_SIZE; i++) {
      const table = tryBuild(combos, buckets, rand(), rand);
      if (table) return table;
    }
  }
  return undefined;
}

/** What the program finds for a key (the kernel's policy_combo_find, for tests). */
export function comboLookup(table: ComboTable, key: CompiledCombo): CompiledCombo | undefined {
  const words = comboWords(key).join(',');
  for (const b of comboBuckets(key, table)) {
    for (let w = 0; w < POLICY.comboWays; w++) {
      const c = table.slots.get(b * POLICY.comboWays + w);
      if (!c) return undefined;
      if (comboWords(c).join(',') === words) return c;
    }
  }
  return undefined;
}
