// Reading the policy state back from the kernel: counters, trigger windows, blocklist, stats.
import {
  decodePolicyActState,
  decodePolicyBlockKey,
  decodePolicyOffence,
  decodePolicyTrigger,
  decodePolicyTriggerKey,
  sumPolicyStatsPerCpu,
  type PolicyActState,
  type PolicyCountersValue,
  type PolicyStatsValue,
  type PolicyTriggerKey,
  type PolicyTriggerState,
} from '../datapath';
import { readCtl } from './apply';
import type { PolicyMaps } from './maps';
import { readCountersWith } from './counters';

/** Stable id -> counters (summed over CPUs, generations and earlier applies) of the active set. */
export function readCounters(maps: PolicyMaps): Map<number, PolicyCountersValue> {
  return readCountersWith(maps, readCtl(maps));
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

/** Histories of escalating blocks (policy_offences): family, address bytes, count, last expiry. */
export function readOffences(maps: PolicyMaps): { family: number; addr: Buffer; count: number; lastExpiryNs: bigint }[] {
  const { keys, values } = maps.offences.lookupBatch();
  return keys.map((k, i) => ({ ...decodePolicyBlockKey(k), ...decodePolicyOffence(values[i]!) }));
}

export function readPolicyStats(maps: PolicyMaps): PolicyStatsValue {
  const key = Buffer.alloc(4);
  const values = maps.stats.lookupPerCpu(key);
  return sumPolicyStatsPerCpu(values ?? []);
}

/** Emulation states (bpf/actions.h): per rule (scope policy) and per conversation (rate). */
export function readActStates(maps: PolicyMaps): { key: PolicyTriggerKey; state: PolicyActState }[] {
  const { keys, values } = maps.actStates.lookupBatch();
  return keys.map((k, i) => ({ key: decodePolicyTriggerKey(k), state: decodePolicyActState(values[i]!) }));
}
