// Delay-class actions in compile and in the kernel: parameter sets -> classes 1..7, the limits and
// refusals with their file:line:column, the class written into the rule, and the bae program's
// fallback when no socket holds a class's slot (BPF_PROG_TEST_RUN, inline and ingress mode).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { DELAY_MAPS, sumPolicyDelayStatsPerCpu } from '../../src/datapath/delay-layout';
import { POLICY, decodePolicyRule } from '../../src/datapath/policy-layout';
import { compilePolicies } from '../../src/policy/compile';
import { applyCompiled, readCtl } from '../../src/policy/apply';
import { policyMapsOf, type PolicyMaps } from '../../src/policy/maps';
import type { Policy } from '../../src/policy/model';
import { Bae } from '../bpf/harness';
import { frame, policies, policyYaml } from '../policy/helpers';

/** The bae program under BPF_PROG_TEST_RUN in a chosen mode, with its policy maps. */
class ModeBae extends Bae {
  readonly maps: PolicyMaps;
  constructor(mode: 'inline' | 'ingress') {
    super({ mode });
    this.maps = policyMapsOf((n) => this.collection.map(n));
  }

  async apply(list: readonly Policy[]): Promise<void> {
    await applyCompiled(this.maps, compilePolicies(list, { requireKernelActions: true }), { sleep: async () => undefined });
  }
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

describe('delay classes in compile', () => {
  it('gives equal parameter sets one class, numbered in decision order, and converts the units', () => {
    const set = compilePolicies(
      policies(
        [
          policyYaml('a', 'priority: 30\nmatch: { src: 10.0.0.1/32 }\nactions:\n  - delay: { time: 10ms, jitter: 2ms, distribution: normal, correlation: 25 }'),
          policyYaml('b', 'priority: 20\nmatch: { src: 10.0.0.2/32 }\nactions:\n  - duplicate: { probability: 5 }'),
          policyYaml('c', 'priority: 10\nmatch: { src: 10.0.0.3/32 }\nactions:\n  - delay: { time: 10ms, jitter: 2ms, distribution: normal, correlation: 25 }'),
          policyYaml('d', 'priority: 5\nmatch: { src: 10.0.0.4/32 }\nactions:\n  - delay: { time: 50ms }\n  - reorder: { probability: 25, correlation: 50, gap: 5 }'),
          policyYaml('e', 'priority: 1\nmatch: { src: 10.0.0.5/32 }\nactions: [drop]'),
        ].join('---\n'),
      ),
    );
    assert.deepEqual(set.rules.map((r) => [r.policy.name, r.delayClass]), [['a', 1], ['b', 2], ['c', 1], ['d', 3], ['e', 0]]);
    assert.deepEqual(set.delayClasses.map((c) => [c.cls, c.policies]), [[1, ['a', 'c']], [2, ['b']], [3, ['d']]]);
    assert.deepEqual(set.delayClasses[0]!.params, {
      delayMs: 10, jitterMs: 2, distribution: 'normal', correlation: 0.25,
      duplicate: 0, duplicateCorrelation: 0, reorder: 0, reorderCorrelation: 0, reorderGap: 1,
    });
    assert.equal(set.delayClasses[1]!.params.duplicate, 0.05);
    assert.equal(set.delayClasses[1]!.params.delayMs, 0);
    assert.deepEqual(
      [set.delayClasses[2]!.params.delayMs, set.delayClasses[2]!.params.reorder, set.delayClasses[2]!.params.reorderCorrelation, set.delayClasses[2]!.params.reorderGap],
      [50, 0.25, 0.5, 5],
    );
  });

  it('refuses an eighth distinct parameter set, naming the policy and its action', () => {
    const docs = Array.from({ length: 8 }, (_, i) => policyYaml(`p${i}`, `priority: ${100 - i}\nmatch: { src: 10.0.0.${i + 1}/32 }\nactions:\n  - delay: { time: ${i + 1}ms }`));
    assert.doesNotThrow(() => compilePolicies(policies(docs.slice(0, 7).join('---\n'))));
    assert.throws(
      () => compilePolicies(policies(docs.join('---\n'), 'eight.yaml')),
      /^PolicyError: eight\.yaml:\d+:7: policy 'p7': too many distinct delay\/duplicate\/reorder parameter sets: the delay line has 7 classes/,
    );
  });

  it('refuses reorder without delay in the same policy', () => {
    assert.throws(
      () => compilePolicies(policies(policyYaml('r', 'match: { proto: udp }\nactions:\n  - reorder: { probability: 10 }'), 'r.yaml')),
      /r\.yaml:7:7: policy 'r': action 'reorder' needs a 'delay' action in the same policy/,
    );
  });
});

describe('delay classes in the kernel', () => {
  const baes: ModeBae[] = [];
  after(() => baes.forEach((b) => b.close()));

  const delayStats = (bae: ModeBae) => sumPolicyDelayStatsPerCpu(bae.collection.map(DELAY_MAPS.stats).lookupPerCpu(u32(0))!);
  const udp = (src: string) => frame({ ip: { version: 4, src, dst: '10.0.9.9' }, l4: { proto: 'udp', sport: 1000, dport: 2000 } });

  it('writes the class into the rule, forwards a frame of a delay class undelayed when its slot is empty, and counts it', async () => {
    const bae = new ModeBae('inline');
    baes.push(bae);
    // Inline: frames from ifindex 1 (lo) leave on ifindex 1.
    bae.ports.update(u32(1), u32(1));
    await bae.apply(policies(policyYaml('slow', 'match: { src: 10.0.0.1/32, proto: udp }\nactions:\n  - delay: { time: 20ms }')));
    const gen = readCtl(bae.maps).gen;
    assert.equal(decodePolicyRule(bae.maps.rules.lookup(u32(gen * POLICY.maxRules))!).delayClass, 1);

    const plain = bae.run(udp('10.0.0.2'), 1);
    const delayed = bae.run(udp('10.0.0.1'), 1);
    assert.equal(delayed, plain, 'the same verdict as a frame no policy delays: forwarded to the peer port');
    assert.deepEqual(delayStats(bae), { redirected: 0n, noSocket: 1n });
  });

  it('leaves frames alone in ingress mode, where apply refuses delay classes', async () => {
    const bae = new ModeBae('ingress');
    baes.push(bae);
    await bae.apply(policies(policyYaml('slow', 'match: { src: 10.0.0.1/32, proto: udp }\nactions:\n  - delay: { time: 20ms }')));
    assert.equal(bae.run(udp('10.0.0.1'), 1), 2 /* XDP_PASS */);
    assert.deepEqual(delayStats(bae), { redirected: 0n, noSocket: 0n });
  });
});
