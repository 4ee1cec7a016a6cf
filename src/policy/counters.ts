// Per-policy counters: the kernel counts per rule slot (policy_counters, a per-CPU array indexed
// like policy_rules); a policy's total is its base (policy_counter_base, folded in by applies)
// plus its slots in both generations. See bae.h.
import { splitPerCpu } from '../datapath';
import { encodePolicyCounters, LAYOUTS, POLICY, sumPolicyCountersPerCpu, type PolicyCountersValue } from '../datapath/layout';
import type { PolicyCtl } from '../datapath/layout';
import type { PolicyMaps } from './apply';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

const zero = (): PolicyCountersValue => ({ matched: 0n, applied: 0n, fired: 0n, blocks: 0n });
const add = (a: PolicyCountersValue, b: PolicyCountersValue): PolicyCountersValue => ({
  matched: a.matched + b.matched,
  applied: a.applied + b.applied,
  fired: a.fired + b.fired,
  blocks: a.blocks + b.blocks,
});
const isZero = (c: PolicyCountersValue) => c.matched === 0n && c.applied === 0n && c.fired === 0n && c.blocks === 0n;

/** The stable id in each used slot of both generations. */
export function slotIds(maps: PolicyMaps, ctl: PolicyCtl): [number[], number[]] {
  const ids: [number[], number[]] = [[], []];
  const { keys, values } = maps.rules.lookupBatch();
  keys.forEach((k, i) => {
    const index = k.readUInt32LE(0);
    const gen = index >= POLICY.maxRules ? 1 : 0;
    const slot = index % POLICY.maxRules;
    if (slot < ctl.g[gen].rules) ids[gen][slot] = values[i]!.readUInt32LE(0);
  });
  return ids;
}

/** The counters of the used slots of both generations, summed over the CPUs; all-zero slots are left out. */
function slotCounters(maps: PolicyMaps, ctl: PolicyCtl): [PolicyCountersValue[], PolicyCountersValue[]] {
  const out: [PolicyCountersValue[], PolicyCountersValue[]] = [[], []];
  const { keys, values } = maps.counters.lookupBatch();
  const size = LAYOUTS.policy_counters!.size;
  let empty = Buffer.alloc(0);
  keys.forEach((k, i) => {
    const index = k.readUInt32LE(0);
    const gen = index >= POLICY.maxRules ? 1 : 0;
    const slot = index % POLICY.maxRules;
    if (slot >= ctl.g[gen].rules) return;
    const raw = values[i]!;
    if (empty.length !== raw.length) empty = Buffer.alloc(raw.length);
    if (raw.equals(empty)) return;
    out[gen][slot] = sumPolicyCountersPerCpu(splitPerCpu(raw, size));
  });
  return out;
}

function readBase(maps: PolicyMaps): Map<number, PolicyCountersValue> {
  const { keys, values } = maps.counterBase.lookupBatch();
  return new Map(keys.map((k, i) => [k.readUInt32LE(0), sumPolicyCountersPerCpu([values[i]!])]));
}

/** Stable id -> counters of every policy of the active set. */
export function readCountersWith(maps: PolicyMaps, ctl: PolicyCtl): Map<number, PolicyCountersValue> {
  const ids = slotIds(maps, ctl);
  const counts = slotCounters(maps, ctl);
  const base = readBase(maps);
  const active = ctl.gen & 1;
  const out = new Map<number, PolicyCountersValue>();
  for (const id of ids[active]) out.set(id, base.get(id) ?? zero());
  for (const gen of [0, 1] as const) {
    ids[gen].forEach((id, slot) => {
      const total = out.get(id);
      if (total) out.set(id, add(total, counts[gen][slot] ?? zero()));
    });
  }
  return out;
}

/**
 * Before an apply reuses the idle generation: adds its slots' counts to the base of the policies
 * that stay (in the active set and in `keep`), zeroes those slots, and drops the base of
 * policies that leave.
 */
export function foldIdleCounters(maps: PolicyMaps, ctl: PolicyCtl, keep: ReadonlySet<number>): void {
  const active = ctl.gen & 1;
  const idle = active ^ 1;
  // A generation that never held rules has no counts (the first applies).
  const counts = ctl.g[idle].rules ? slotCounters(maps, ctl) : [[], []];
  const base = readBase(maps);
  const changed = new Map<number, PolicyCountersValue>();
  const zeroSlots: number[] = [];
  if (counts[idle].length) {
    const ids = slotIds(maps, ctl);
    const activeIds = new Set(ids[active]);
    counts[idle].forEach((c, slot) => {
      if (!c || isZero(c)) return;
      const id = ids[idle][slot]!;
      zeroSlots.push(idle * POLICY.maxRules + slot);
      if (!activeIds.has(id) || !keep.has(id)) return;
      changed.set(id, add(changed.get(id) ?? base.get(id) ?? zero(), c));
    });
  }
  if (changed.size) {
    const keys = [...changed.keys()];
    maps.counterBase.updateBatch(keys.map(u32), keys.map((id) => encodePolicyCounters(changed.get(id)!)));
  }
  if (zeroSlots.length) {
    const empty = Buffer.alloc(LAYOUTS.policy_counters!.size);
    maps.counters.updateBatch(zeroSlots.map(u32), zeroSlots.map(() => empty));
  }
  const gone = [...base.keys()].filter((id) => !keep.has(id));
  if (gone.length) maps.counterBase.deleteBatch(gone.map(u32));
}
