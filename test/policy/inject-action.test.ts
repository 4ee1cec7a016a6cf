// test-unit: needs no root and no kernel (make test-unit).
// The `inject` action as the policy area knows it: its bit is one the kernel leaves alone, its
// kinds are the catalogue's kinds that fit a TCP flow, a policy with it parses, compiles and
// prints back, and every bad spec is refused with the field named.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ENUMS } from '../../src/datapath';
import { ACTION_BY_KIND, INJECT_ACTION_KINDS, INJECT_BIT, PolicyError, compilePolicies, parsePolicyText } from '../../src/policy';
import { FORGE_KINDS } from '../../src/reconstruct';

const doc = (action: string, trigger = '  trigger: { when: tcp.syn > 3, within: 1s, scope: source }\n') => `apiVersion: bae/v1
kind: Policy
metadata: { name: p }
spec:
  match: { proto: tcp, dport: 80 }
${trigger}  actions:
    - ${action}
`;

function refusal(text: string): string {
  try {
    parsePolicyText(text, 'p.yaml');
  } catch (err) {
    assert.ok(err instanceof PolicyError, String(err));
    return err.message;
  }
  assert.fail(`accepted: ${text}`);
}

describe('the inject action (policy side)', () => {
  it('has a bit that enum policy_action leaves free and below the delay-class bits', () => {
    const used = Object.values(ENUMS.policy_action as Record<string, number>);
    assert.ok(!used.includes(INJECT_BIT), `bit ${INJECT_BIT} is taken by the kernel: ${JSON.stringify(ENUMS.policy_action)}`);
    assert.equal(ACTION_BY_KIND.get('inject')!.bit, INJECT_BIT);
  });

  it('offers exactly the catalogue kinds that fit a TCP flow', () => {
    const fit = FORGE_KINDS.filter((k) => k.needs !== 'udp').map((k) => k.name).sort();
    assert.deepEqual([...INJECT_ACTION_KINDS].sort(), fit);
  });

  it('parses, compiles (no kernel work: a trigger and the bit) and prints back', () => {
    const [p] = parsePolicyText(doc('inject: { kind: tcp-dup-ack-storm, count: 50, rate: 500, toward: destination }'), 'p.yaml');
    assert.deepEqual(p!.actions[0]!.params, { kind: 'tcp-dup-ack-storm', count: 50, rate: 500, toward: 'destination' });
    assert.deepEqual((p!.spec as { actions: unknown[] }).actions, [{ inject: { kind: 'tcp-dup-ack-storm', count: 50, rate: 500, toward: 'destination' } }]);
    const set = compilePolicies([p!], { requireKernelActions: true });
    assert.equal(set.rules[0]!.actionMask, 1 << INJECT_BIT);
  });

  it('refuses bad specs with file, line, column, policy and the field', () => {
    const cases: [string, RegExp][] = [
      ['inject: { kind: tcp-rst, count: 0 }', /^p\.yaml:8:\d+: policy 'p': inject\.count 0 is out of range \(1\.\.100000\)$/],
      ['inject: { kind: tcp-rst, count: 1.5 }', /policy 'p': inject\.count must be a whole number/],
      ['inject: { kind: tcp-rst, rate: 0 }', /policy 'p': inject\.rate 0 is out of range/],
      ['inject: { kind: nope }', /policy 'p': inject\.kind: 'nope' is not one of tcp-rst, /],
      ['inject: { kind: udp-datagram }', /policy 'p': inject\.kind: 'udp-datagram' is not one of /],
      ['inject: { kind: tcp-rst, toward: both }', /policy 'p': inject\.toward: 'both' is not one of source, destination/],
      ['inject: { kind: tcp-rst, port: eth0 }', /policy 'p': unknown field 'port' in action 'inject' \(expected one of: kind, count, rate, toward\)/],
      ['inject: { count: 2 }', /policy 'p': action 'inject' needs 'kind'/],
      ['inject', /policy 'p': action 'inject' needs 'kind'/],
      ['inject: { kind: tcp-dup-ack-storm, count: 100000, rate: 100 }', /^p\.yaml:8:\d+: policy 'p': inject: 100000 packets at 100\/s take 1000 s, more than the 60 s one fire may inject for$/],
    ];
    for (const [action, want] of cases) assert.match(refusal(doc(action)), want, action);
    assert.match(refusal(doc('inject: { kind: tcp-rst }', '')), /^p\.yaml:7:7: policy 'p': action 'inject' needs a trigger: the agent injects once per fire/);
  });
});
