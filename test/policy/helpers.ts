// Shared by the policy tests: the bae program under BPF_PROG_TEST_RUN with its policy maps, and
// policies and frames written in a line.
import { Bae } from '../bpf/harness';
import { policyMapsOf, applyCompiled, type ApplyResult, type PolicyMaps } from '../../src/policy/apply';
import { compilePolicies, type CompileOptions } from '../../src/policy/compile';
import { parsePolicyText } from '../../src/policy/parse';
import type { Policy } from '../../src/policy/model';
import { buildPacket, type PacketSpec } from '../lib/packets';

export class PolicyBae extends Bae {
  readonly maps: PolicyMaps;
  constructor() {
    super();
    this.maps = policyMapsOf((n) => this.collection.map(n));
  }

  async apply(policies: readonly Policy[], options: CompileOptions = {}, beforeFlip?: () => void): Promise<ApplyResult> {
    return applyCompiled(this.maps, compilePolicies(policies, { requireKernelActions: true, ...options }), {
      // No packet runs concurrently with a test's apply: no grace period to wait for.
      sleep: async () => undefined,
      ...(beforeFlip ? { beforeFlip } : {}),
    });
  }
}

export function policies(yaml: string, file = 'test.yaml'): Policy[] {
  return parsePolicyText(yaml, file);
}

/** One policy document from its spec lines (indented under spec:). */
export function policyYaml(name: string, spec: string): string {
  return `apiVersion: bae/v1\nkind: Policy\nmetadata: { name: ${name} }\nspec:\n${spec
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => '  ' + l)
    .join('\n')}\n`;
}

export function frame(spec: PacketSpec): Buffer {
  return buildPacket(spec).frame;
}
