// Reading the policy state back from the kernel: counters, trigger windows, blocklist, stats.
import {
  decodePolicyBlockKey,
  decodePolicyTrigger,
  decodePolicyTriggerKey,
  sumPolicyCountersPerCpu,
  sumPolicyStatsPerCpu,
  type PolicyCountersValue,
  type PolicyStatsValue,
  type PolicyTriggerKey,
  type PolicyTriggerState,
} from '../datapath/layout';
import type { PolicyMaps } from './apply';

/** Stable id -> counters summed over the CPUs. */
export function readCounters(maps: PolicyMaps): Map<number, PolicyCountersValue> {
  const out = new Map<number, PolicyCountersValue>();
  for (const [key, value] of maps.counters.entries()) out.set(key.readUInt32LE(0), sumPolicyCountersPerCpu(value as Buffer[]));
  return out;
}

export function readTriggers(maps: PolicyMaps): { key: PolicyTriggerKey; state: PolicyTriggerState }[] {
  const { keys, values } = maps.triggers.lookupBatch();
  return keys.map((k, i) => ({ key: decodePolicyTriggerKey(k), state: decodePolicyTrigger(values[i]!) }));
}

/** Blocklist entries: family, address bytes, expiry (clock ns). */
export function readBlocklist(maps: PolicyMaps): { family: number; addr: Buffer; expiryNs: bigint }[] {
  const { keys, values } = maps.blocklist.lookupBatch();
  return keys.map((k, i) => ({ ...decodePolicyBlockKey(k), expiryNs: values[i]!.readBigUInt64LE(0) }));
}

export function readPolicyStats(maps: PolicyMaps): PolicyStatsValue {
  const key = Buffer.alloc(4);
  const values = maps.stats.lookupPerCpu(key);
  return sumPolicyStatsPerCpu(values ?? []);
}
