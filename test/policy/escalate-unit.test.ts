// test-unit: needs no root and no kernel (make test-unit).
// Escalation in TypeScript (src/policy/escalate.ts, the kernel's policy_escalate_ttl in
// bpf/policy_trigger.h is the same): ttl x factor^n up to the maximum, the history's memory, and
// the policy file's block parameters, with every misuse refused naming the parameter.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escalatedTtl, offencesInMemory, recordOffence, ESCALATE_STEPS } from '../../src/policy/escalate';
import { PolicyError } from '../../src/policy/errors';
import { parsePolicyText } from '../../src/policy/parse';
import { compilePolicies } from '../../src/policy/compile';

const S = 1_000_000_000n;
const doc = (block: string) => `apiVersion: bae/v1\nkind: Policy\nmetadata: { name: b }\nspec:\n  trigger: { when: packets > 5, within: 1s }\n  actions: [ { block: ${block} } ]\n`;

describe('escalation', () => {
  it('multiplies the ttl by the factor per remembered offence, at most the maximum', () => {
    const e = { factor: 2, maxNs: 100n * S, forgetNs: 3600n * S };
    const ttls = [0, 1, 2, 3, 4, 5].map((count) => escalatedTtl(10n * S, e, count ? { count, lastExpiryNs: 1000n * S } : undefined, 1001n * S).ttlNs);
    assert.deepEqual(ttls, [10n, 20n, 40n, 80n, 100n, 100n].map((x) => x * S));
    // A huge count, a tiny ttl: the loop bound still reaches the maximum without overflow.
    const big = escalatedTtl(1_000_000n, { factor: 2, maxNs: 30n * 86_400n * S, forgetNs: S }, { count: 4_000_000_000, lastExpiryNs: 0n }, 0n);
    assert.equal(big.ttlNs, 30n * 86_400n * S);
    assert.ok(2n ** BigInt(ESCALATE_STEPS) * 1_000_000n > 30n * 86_400n * S, 'the step bound covers 1 ms to 30 d');
    assert.equal(escalatedTtl(7n, { factor: 16, maxNs: 10n ** 17n, forgetNs: S }, { count: 100, lastExpiryNs: 0n }, 0n).ttlNs, 10n ** 17n);
  });

  it('remembers offences until `forget` after the latest block ended, then starts again', () => {
    const h = { count: 3, lastExpiryNs: 100n * S };
    assert.equal(offencesInMemory(h, 60n * S, 50n * S), 3, 'during the block');
    assert.equal(offencesInMemory(h, 60n * S, 159n * S), 3, 'within forget');
    assert.equal(offencesInMemory(h, 60n * S, 160n * S), 0, 'forgotten');
    assert.equal(offencesInMemory(undefined, 60n * S, 0n), 0);
    assert.deepEqual(recordOffence(3, 200n * S, 40n * S), { count: 4, lastExpiryNs: 240n * S });
  });

  it('is a block parameter of policies, compiled into the rule', () => {
    const [p] = parsePolicyText(doc('{ ttl: 5m, escalate: 3, maxTtl: 2h, forget: 7d }'), 'e.yaml');
    const set = compilePolicies([p!]);
    assert.deepEqual(set.rules[0]!.escalate, { factor: 3, maxNs: 7200n * S, forgetNs: 7n * 86_400n * S });
    const [d] = parsePolicyText(doc('{ ttl: 5m, escalate: 2 }'), 'e.yaml');
    assert.deepEqual(compilePolicies([d!]).rules[0]!.escalate, { factor: 2, maxNs: 86_400n * S, forgetNs: 86_400n * S }, 'defaults: 24h, 1d');
    const [n] = parsePolicyText(doc('{ ttl: 5m }'), 'e.yaml');
    assert.equal(compilePolicies([n!]).rules[0]!.escalate, undefined, 'no escalate: none');
  });

  it('refuses misuse in a policy file, naming the parameter', () => {
    const cases: [string, RegExp][] = [
      ['{ ttl: 5m, maxTtl: 1h }', /block\.maxTtl needs 'escalate'/],
      ['{ ttl: 5m, forget: 1h }', /block\.forget needs 'escalate'/],
      ['{ ttl: 5m, escalate: 1 }', /escalate/],
      ['{ ttl: 5m, escalate: 2.5 }', /escalate/],
      ['{ ttl: 2h, escalate: 2, maxTtl: 1h }', /block\.maxTtl \(default 24h\) must be at least its ttl/],
      ['{ ttl: 2d, escalate: 2 }', /block\.maxTtl \(default 24h\) must be at least its ttl/],
    ];
    for (const [block, re] of cases) {
      assert.throws(() => parsePolicyText(doc(block), 'e.yaml'), (err: unknown) => err instanceof PolicyError && re.test((err as Error).message), block);
    }
  });
});
