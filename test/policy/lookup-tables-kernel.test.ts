// The lookup tables user space builds for the policy stage (lookup-tables.test.ts checks them
// against plain models) as the kernel's policy stage reads them: the IPv4 direct tables while they
// fit, hash lookups per length when they do not, and combinations of an older table ignored.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { XDP } from '../../src/datapath/layout';
import { PolicyLookup } from '../../src/datapath/policy-layout';
import { readCtl } from '../../src/policy/apply';
import { PolicyBae, frame, policies, policyYaml } from './helpers';

describe('the lookup tables in the kernel', () => {
  let bae: PolicyBae;
  before(() => {
    bae = new PolicyBae();
    bae.setClock(1_000_000_000n);
  });
  after(() => bae?.close());

  const tcp = (src: string, dport: number) => frame({ ip: { version: 4, src, dst: '192.168.0.1' }, l4: { proto: 'tcp', sport: 40000, dport } });

  it('uses the IPv4 direct tables while they fit, and hash lookups per length when they do not', async () => {
    const nested = (extra: string) =>
      policies(
        policyYaml('wide', 'match: { src: 10.0.0.0/8, proto: tcp, dport: 80 }\nactions: [drop]') +
          '---\n' +
          policyYaml('narrow', 'priority: 5\nmatch: { src: 10.1.2.0/24, proto: tcp, dport: 80 }\nactions: [pass]') +
          '---\n' +
          policyYaml('host', 'priority: 9\nmatch: { src: 10.1.2.3/32, proto: tcp, dport: 80 }\nactions: [drop]') +
          extra,
      );
    const check = () => {
      assert.equal(bae.run(tcp('10.9.9.9', 80)), XDP.drop, '/8 only');
      assert.equal(bae.run(tcp('10.1.2.4', 80)), XDP.pass, 'the /24 outranks the /8');
      assert.equal(bae.run(tcp('10.1.2.3', 80)), XDP.drop, 'the /32 outranks the /24');
      assert.equal(bae.run(tcp('11.1.2.3', 80)), XDP.pass, 'outside every prefix');
      assert.equal(bae.run(tcp('10.1.2.3', 81)), XDP.pass, 'another port');
    };
    let res = await bae.apply(nested(''));
    assert.equal(readCtl(bae.maps).g[res.gen]!.dims[0][0].mode, PolicyLookup.v4);
    check();
    // 700 /16s with a /24 and a /32 each: more chunks than a region has.
    const many: string[] = [];
    for (let i = 0; i < 700; i++) {
      const b = `${20 + (i >> 8)}.${i & 255}.5`;
      many.push(policyYaml(`n${i}`, `match: { src: [${b}.0/24, ${b}.9/32], proto: tcp, dport: 443 }\nactions: [count]`));
    }
    res = await bae.apply(nested('---\n' + many.join('---\n')));
    const dim = readCtl(bae.maps).g[res.gen]!.dims[0][0];
    assert.equal(dim.mode, PolicyLookup.hash);
    assert.deepEqual(dim.lens, [32, 24, 8]);
    check();
    res = await bae.apply(nested(''));
    assert.equal(readCtl(bae.maps).g[res.gen]!.dims[0][0].mode, PolicyLookup.v4, 'and back');
    check();
  });

  it('ignores the slots an older table left in a generation', async () => {
    const set = (a: number, b: number) =>
      policies(
        policyYaml('one', `match: { src: 10.1.0.0/16, proto: tcp, dport: ${a} }\nactions: [drop]`) +
          '---\n' +
          policyYaml('two', `match: { src: 10.2.0.0/16, proto: tcp, dport: ${b} }\nactions: [drop]`),
      );
    // The same classes in both sets (sources 1 and 2, ports 80 and 81 as port classes 1 and 2),
    // crossed: the first set's (source 1, port 80) stays in the generation the third apply writes.
    const first = await bae.apply(set(80, 81));
    assert.equal(bae.run(tcp('10.1.0.5', 80)), XDP.drop);
    await bae.apply(policies(policyYaml('other', 'match: { dport: 9 }\nactions: [drop]')));
    const third = await bae.apply(set(81, 80));
    assert.equal(third.gen, first.gen, 'the third apply rewrites the first one\'s generation');
    assert.equal(bae.run(tcp('10.1.0.5', 80)), XDP.pass, 'source 1 to port 80 is no longer a combination');
    assert.equal(bae.run(tcp('10.1.0.5', 81)), XDP.drop);
    assert.equal(bae.run(tcp('10.2.0.5', 80)), XDP.drop);
    assert.equal(bae.run(tcp('10.2.0.5', 81)), XDP.pass);
  });
});
