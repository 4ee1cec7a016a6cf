// The policy maps of a loaded bae by their short names (POLICY_MAPS): what apply writes, the
// counters and the state readers read.
import { POLICY_MAPS, type BpfMap } from '../datapath';

export type PolicyMapName = keyof typeof POLICY_MAPS;
export type PolicyMaps = Record<PolicyMapName, BpfMap>;

/** The policy maps of a loaded program: `get` is collection.map or openLoadedMap. */
export function policyMapsOf(get: (name: string) => BpfMap): PolicyMaps {
  return Object.fromEntries(Object.entries(POLICY_MAPS).map(([k, name]) => [k, get(name)])) as PolicyMaps;
}
