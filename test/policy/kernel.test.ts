// The policy stage in the real kernel (BPF_PROG_TEST_RUN, test clock): golden packets whose
// verdicts, counters, blocklist and events are predicted by hand.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { XDP } from '../../src/datapath/layout';
import { PolicyBae, frame, policies, policyYaml } from './helpers';
import { TCP_ACK, TCP_SYN } from '../lib/packets';
import { readCounters } from '../../src/policy/state';

describe('the policy stage in the kernel', () => {
  let bae: PolicyBae;
  before(() => {
    bae = new PolicyBae();
  });
  after(() => bae?.close());

  it('drops TCP to a destination port a policy drops, and passes everything else', async () => {
    await bae.apply(policies(policyYaml('no-web', 'match: { dport: 80, proto: tcp }\nactions: [drop]')));
    bae.setClock(1_000_000_000n);
    const web = frame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, l4: { proto: 'tcp', sport: 1234, dport: 80 } });
    const ssh = frame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, l4: { proto: 'tcp', sport: 1234, dport: 22 } });
    const udp = frame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, l4: { proto: 'udp', sport: 1234, dport: 80 } });
    assert.equal(bae.run(web), XDP.drop);
    assert.equal(bae.run(ssh), XDP.pass);
    assert.equal(bae.run(udp), XDP.pass);
    const c = readCounters(bae.maps).get(policies(policyYaml('no-web', 'match: { dport: 80, proto: tcp }\nactions: [drop]'))[0]!.id);
    assert.deepEqual(c, { matched: 1n, applied: 1n, fired: 0n, blocks: 0n });
  });

  it('blocks a source after more than 3 SYNs within a second and drops it until the ban ends', async () => {
    const set = policies(policyYaml('syn', 'match: { proto: tcp }\ntrigger: { when: tcp.syn > 3, within: 1s, scope: source }\nfor: 2s\nactions: [ { block: { ttl: 10s } } ]'));
    await bae.apply(set);
    let t = 5_000_000_000n;
    const syn = (src: string) => frame({ ip: { version: 4, src, dst: '10.0.0.2' }, l4: { proto: 'tcp', sport: 40000, dport: 443, flags: TCP_SYN } });
    const verdicts: number[] = [];
    for (let i = 0; i < 6; i++) {
      t += 1_000_000n;
      bae.setClock(t);
      verdicts.push(bae.run(syn('10.9.9.9')));
    }
    assert.deepEqual(verdicts, [XDP.pass, XDP.pass, XDP.pass, XDP.drop, XDP.drop, XDP.drop]);
    assert.equal(bae.run(syn('10.9.9.8')), XDP.pass, 'another source is not blocked');
    bae.setClock(t + 10_000_000_000n);
    assert.equal(bae.run(frame({ ip: { version: 4, src: '10.9.9.9', dst: '10.0.0.2' }, l4: { proto: 'tcp', sport: 40000, dport: 443, flags: TCP_ACK } })), XDP.pass, 'the ban ends after its ttl');
  });
});
