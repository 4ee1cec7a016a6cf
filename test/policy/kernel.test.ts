// The policy stage in the real kernel (BPF_PROG_TEST_RUN, test clock): golden packets whose
// verdicts, counters, blocklist and events are predicted by hand.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
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

  it('matches the port a packet arrived on (inline mode has two)', async () => {
    // A test cannot rely on interface names here: resolve 'port-a' to lo (ifindex 1, always there).
    await bae.apply(policies(policyYaml('port-a-only', 'match: { iface: port-a, proto: udp }\nactions: [drop]')), { ifindexOf: () => 1 });
    const udp = frame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, l4: { proto: 'udp', sport: 1, dport: 2 } });
    assert.equal(bae.run(udp, 1), XDP.drop, 'arrived on ifindex 1');
    const other = Number(fs.readFileSync('/sys/class/net/' + fs.readdirSync('/sys/class/net').find((n) => n !== 'lo') + '/ifindex', 'utf8'));
    assert.equal(bae.run(udp, other), XDP.pass, `arrived on ifindex ${other}`);
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

describe('applying a policy set', () => {
  let bae: PolicyBae;
  before(() => {
    bae = new PolicyBae();
  });
  after(() => bae?.close());

  const web = frame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, l4: { proto: 'tcp', sport: 1234, dport: 80 } });

  it('is atomic: until the flip packets see the old set whole, after it the new set whole', async () => {
    bae.setClock(1_000_000_000n);
    await bae.apply(policies(policyYaml('allow-web', 'match: { dport: 80 }\nactions: [pass]') + '---\n' + policyYaml('drop-all', 'actions: [drop]')));
    assert.equal(bae.run(web), XDP.pass, 'old set: web passes (allow-web outranks drop-all by specificity)');
    const seen: number[] = [];
    const res = await bae.apply(policies(policyYaml('drop-all', 'actions: [drop]')), {}, () => {
      // The new set is fully written into the idle generation; packets still use the old one.
      seen.push(bae.run(web));
    });
    assert.deepEqual(seen, [XDP.pass], 'before the flip: the old set');
    assert.equal(bae.run(web), XDP.drop, 'after the flip: the new set');
    const again = await bae.apply(policies(policyYaml('allow-web', 'match: { dport: 80 }\nactions: [pass]') + '---\n' + policyYaml('drop-all', 'actions: [drop]')));
    assert.notEqual(again.gen, res.gen, 'each apply writes the other generation');
    assert.equal(bae.run(web), XDP.pass);
  });

  it('keeps the trigger window and counters of a policy that is re-applied unchanged, and resets a changed one', async () => {
    const yaml = policyYaml('udp-burst', 'match: { proto: udp }\ntrigger: { when: packets > 4, within: 1s, scope: source }\nactions: [drop]');
    const udp = frame({ ip: { version: 4, src: '10.0.0.7', dst: '10.0.0.2' }, l4: { proto: 'udp', sport: 1, dport: 2 } });
    await bae.apply(policies(yaml));
    bae.setClock(50_000_000_000n);
    const verdicts = [bae.run(udp), bae.run(udp), bae.run(udp)];
    await bae.apply(policies(yaml)); // unchanged: same stable id, same window
    verdicts.push(bae.run(udp), bae.run(udp));
    assert.deepEqual(verdicts, [XDP.pass, XDP.pass, XDP.pass, XDP.pass, XDP.drop], 'the fifth packet crosses "> 4" across the re-apply');
    const id = policies(yaml)[0]!.id;
    assert.equal(readCounters(bae.maps).get(id)?.matched, 5n);
    const changed = policies(yaml.replace('packets > 4', 'packets > 5'));
    await bae.apply(changed);
    assert.equal(readCounters(bae.maps).get(id), undefined, 'the old id is gone');
    assert.equal(bae.run(udp), XDP.pass, 'the changed policy starts a fresh window');
    assert.equal(readCounters(bae.maps).get(changed[0]!.id)?.matched, 1n);
  });

  it('counts a burst that straddles a bucket boundary in one window', async () => {
    // within 800ms = 8 buckets of 100ms; 3 packets just before a boundary and 3 just after are
    // 6 within 2 ms: "> 5" fires on the sixth.
    await bae.apply(policies(policyYaml('edge', 'match: { proto: udp }\ntrigger: { when: packets > 5, within: 800ms, scope: policy }\nfor: 1s\nactions: [drop]')));
    const udp = frame({ ip: { version: 6, src: '2001:db8::1', dst: '2001:db8::2' }, l4: { proto: 'udp', sport: 1, dport: 2 } });
    const base = 100_000_000_000n; // a multiple of 100 ms
    const times = [base - 3n, base - 2n, base - 1n, base, base + 1n, base + 2n];
    const verdicts = times.map((t) => {
      bae.setClock(t);
      return bae.run(udp);
    });
    assert.deepEqual(verdicts, [XDP.pass, XDP.pass, XDP.pass, XDP.pass, XDP.pass, XDP.drop]);
    // 1 s of `for` later and a window further on, the policy is off again.
    bae.setClock(base + 2n + 1_000_000_000n);
    assert.equal(bae.run(udp), XDP.pass);
  });

  it('lets the higher priority decide, then the more specific policy', async () => {
    const set = policies(
      [
        policyYaml('wide-drop', 'priority: 10\nmatch: { dst: 10.0.0.0/8 }\nactions: [drop]'),
        policyYaml('narrow-pass', 'priority: 10\nmatch: { dst: 10.1.0.0/16 }\nactions: [pass]'),
        policyYaml('urgent-drop', 'priority: 20\nmatch: { dst: 10.1.2.0/24, dport: 22 }\nactions: [drop]'),
      ].join('---\n'),
    );
    await bae.apply(set);
    const to = (dst: string, dport: number) => frame({ ip: { version: 4, src: '192.0.2.1', dst }, l4: { proto: 'tcp', sport: 999, dport } });
    assert.equal(bae.run(to('10.9.9.9', 80)), XDP.drop, 'only wide-drop matches');
    assert.equal(bae.run(to('10.1.9.9', 80)), XDP.pass, 'equal priority: the /16 outranks the /8');
    assert.equal(bae.run(to('10.1.2.9', 22)), XDP.drop, 'higher priority wins over specificity');
    assert.equal(bae.run(to('10.1.2.9', 23)), XDP.pass);
  });
});
