// What a scenario keeps of the applied policy set: the policies as YAML and the seed each one's
// random sequences started from in the kernel (policies without spec.seed get a random one at
// apply), so that a replay draws what the recording drew.
import { stringify } from 'yaml';
import { POLICY, decodePolicyRule } from '../datapath';
import { API_VERSION, parsePolicyText, policySpec, readCtl, type Policy, type PolicyMaps } from '../policy';

/** The seeds of the live generation's rules, by policy id (rules without emulation: none). */
export function readKernelSeeds(maps: PolicyMaps): Map<number, bigint> {
  const ctl = readCtl(maps);
  const gen = ctl.gen & 1;
  const count = ctl.g[gen].rules;
  const out = new Map<number, bigint>();
  if (!count) return out;
  const size = maps.rules.valueSize;
  const { values } = maps.rules.lookupRange(gen * POLICY.maxRules, count);
  for (let slot = 0; slot < count; slot++) {
    const r = decodePolicyRule(values.subarray(slot * size, (slot + 1) * size));
    if (r.emul && r.emul.seed !== 0n) out.set(r.id, r.emul.seed);
  }
  return out;
}

/** Seeds by policy name, as decimal strings (JSON keeps every bit of a u64 that way). */
export function seedsByName(policies: readonly Policy[], seeds: ReadonlyMap<number, bigint>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of policies) {
    const s = seeds.get(p.id);
    if (s !== undefined) out[p.name] = s.toString();
  }
  return out;
}

/** The policies with the recorded seeds put back as their spec.seed. */
export function withSeeds(policies: readonly Policy[], seeds: Readonly<Record<string, string>>): Policy[] {
  return policies.map((p) => (seeds[p.name] === undefined ? p : { ...p, seed: BigInt(seeds[p.name]!) }));
}

/** The policies as one YAML stream (what `bae policy apply` reads back). */
export function policiesToYaml(policies: readonly Policy[]): string {
  return policies
    .map((p) => {
      const { name, ...spec } = policySpec(p);
      return stringify({ apiVersion: API_VERSION, kind: 'Policy', metadata: { name: name ?? p.name }, spec });
    })
    .join('---\n');
}

export function policiesFromYaml(text: string, where: string): Policy[] {
  return parsePolicyText(text, where);
}
