// Per-policy counters: the kernel counts per rule slot (policy_counters, a per-CPU array indexed
// like policy_rules); a policy's total is its base (policy_counter_base, folded in by applies)
// plus its slots in both generations. See bae.h.
import { encodePolicyCounters, LAYOUTS, POLICY, splitPerCpu, sumPolicyCountersPerCpu, type PolicyCountersValue, type PolicyCtl } from '../datapath';
import type { PolicyMaps } from './maps';

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

/** The stable id in each used slot of generation `gen` (one batch read of its slots). */
function genIds(maps: PolicyMaps, ctl: PolicyCtl, gen: number): number[] {
  const n = ctl.g[gen].rules;
  const ids = new Array<number>(n);
  if (n === 0) return ids;
  const { count, values } = maps.rules.lookupRange(gen * POLICY.maxRules, n);
  const size = maps.rules.valueSize;
  const at = LAYOUTS.policy_rule!.fields.id!.offset;
  for (let slot = 0; slot < count; slot++) ids[slot] = values.readUInt32LE(slot * size + at);
  return ids;
}

/** The stable id in each used slot of both generations. */
export function slotIds(maps: PolicyMaps, ctl: PolicyCtl): [number[], number[]] {
  return [genIds(maps, ctl, 0), genIds(maps, ctl, 1)];
}

/**
 * The counters of the used slots of generation `gen`, summed over the CPUs; all-zero slots are
 * left out. One batch read of those slots, and no Buffer per slot unless it counted something.
 */
function genCounters(maps: PolicyMaps, ctl: PolicyCtl, gen: number): PolicyCountersValue[] {
  const out: PolicyCountersValue[] = [];
  const n = ctl.g[gen].rules;
  if (n === 0) return out;
  const { count, values } = maps.counters.lookupRange(gen * POLICY.maxRules, n);
  const zero = Buffer.alloc(values.length);
  if (values.equals(zero)) return out;
  const stride = values.length / count;
  for (let slot = 0; slot < count; slot++) {
    if (values.compare(zero, 0, stride, slot * stride, (slot + 1) * stride) === 0) continue;
    out[slot] = sumPolicyCountersPerCpu(splitPerCpu(values.subarray(slot * stride, (slot + 1) * stride), LAYOUTS.policy_counters!.size));
  }
  return out;
}

function readBase(maps: PolicyMaps): Map<number, PolicyCountersValue> {
  const { keys, values } = maps.counterBase.lookupBatch();
  return new Map(keys.map((k, i) => [k.readUInt32LE(0), sumPolicyCountersPerCpu([values[i]!])]));
}

/** Stable id -> counters of every policy of the active set. */
export function readCountersWith(maps: PolicyMaps, ctl: PolicyCtl): Map<number, PolicyCountersValue> {
  const ids = slotIds(maps, ctl);
  const counts = [genCounters(maps, ctl, 0), genCounters(maps, ctl, 1)];
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
  const counts = genCounters(maps, ctl, idle);
  const base = readBase(maps);
  const changed = new Map<number, PolicyCountersValue>();
  const zeroSlots: number[] = [];
  if (counts.length) {
    const idleIds = genIds(maps, ctl, idle);
    const activeIds = new Set(genIds(maps, ctl, active));
    counts.forEach((c, slot) => {
      if (!c || isZero(c)) return;
      const id = idleIds[slot]!;
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
