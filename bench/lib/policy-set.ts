// The 10k-rule policy set of the policy benchmarks: 100 /16 source blocks, each with 99 /24s
// inside it (nested prefixes), TCP to one of 50 destination ports, half drop, half count, every
// tenth with a SYN trigger. Built as Policy objects directly from YAML, once, outside the timing.
import type { Policy } from '../../src/policy/model';
import { parsePolicyText } from '../../src/policy/parse';

export const RULES = 10_000;

export function benchPolicyYaml(n: number = RULES): string {
  const docs: string[] = [];
  for (let i = 0; i < n; i++) {
    const block = i % 100;
    const sub = Math.floor(i / 100);
    const src = sub === 0 ? `10.${block}.0.0/16` : `10.${block}.${sub}.0/24`;
    const trigger = i % 10 === 0 ? `\n  trigger: { when: tcp.syn > 50, within: 1s, scope: source }\n  for: 10s` : '';
    docs.push(
      `apiVersion: bae/v1\nkind: Policy\nmetadata: { name: rule-${i} }\nspec:\n  priority: ${i % 7}\n` +
        `  match: { src: ${src}, proto: tcp, dport: ${1000 + (i % 50)} }${trigger}\n  actions: [${i % 2 ? 'count' : 'drop'}]\n`,
    );
  }
  return docs.join('---\n');
}

export function benchPolicies(n: number = RULES): Policy[] {
  return parsePolicyText(benchPolicyYaml(n), 'bench.yaml');
}
