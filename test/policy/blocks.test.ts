// The blocklist stage beyond single addresses, in the kernel (BPF_PROG_TEST_RUN, test clock):
// blocked prefixes with their own expiry, protected prefixes that no policy may block (the
// refusal is an event), and monitor-only policies and nodes that enforce nothing.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { formatAddress, RingBuffer } from '../../src/datapath';
import { XDP } from '../../src/datapath/layout';
import { decodePolicyEvent, type PolicyEventRecord } from '../../src/datapath/policy-layout';
import { parsePrefix, type Prefix } from '../../src/policy/net';
import { blockPrefix, listBlockedPrefixes, listProtectedPrefixes, protectPrefix, setProtectedPrefixes, unblockPrefix, unprotectPrefix, protectedPrefixOf } from '../../src/policy/prefix-blocks';
import { readBlocklist, readCounters, readPolicyStats } from '../../src/policy/state';
import { TCP_SYN } from '../lib/packets';
import { PolicyBae, frame, policies, policyYaml } from './helpers';

const S = 1_000_000_000n;
const EVENT = { block: 2, refused: 4, wouldBlock: 5 };
const prefix = (t: string): Prefix => parsePrefix(t) as Prefix;
const udp = (src: string) => frame({ ip: src.includes(':') ? { version: 6, src, dst: '2001:db8:ff::1' } : { version: 4, src, dst: '10.0.0.2' }, l4: { proto: 'udp', sport: 1, dport: 2 } });
const syn = (src: string) => frame({ ip: { version: 4, src, dst: '10.0.0.2' }, l4: { proto: 'tcp', sport: 40000, dport: 443, flags: TCP_SYN } });
const SYN_BLOCK = policyYaml('syn', 'match: { proto: tcp }\ntrigger: { when: tcp.syn > 3, within: 1s, scope: source }\nfor: 2s\nactions: [ { block: { ttl: 10s } } ]');

describe('blocked and protected prefixes, monitor-only policies', () => {
  let bae: PolicyBae;
  let ring: RingBuffer;
  const events: PolicyEventRecord[] = [];
  let t = 10n * S;
  before(() => {
    bae = new PolicyBae();
    ring = new RingBuffer(bae.collection.map('policy_events'), (r) => events.push(decodePolicyEvent(r)));
  });
  after(() => {
    ring?.close();
    bae?.close();
  });
  beforeEach(() => {
    t += 100n * S; // every case starts after the bans of the one before
    bae.setClock(t);
    events.length = 0;
  });

  /** Sends n SYNs from src 1 ms apart; the verdicts. */
  function synBurst(src: string, n: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      t += 1_000_000n;
      bae.setClock(t);
      out.push(bae.run(syn(src)));
    }
    return out;
  }

  it('drops every address of a blocked prefix until its expiry, and nothing else', async () => {
    await bae.apply([]);
    assert.equal(bae.run(udp('10.61.5.5')), XDP.pass, 'nothing blocked yet');
    blockPrefix(bae.maps, prefix('10.61.0.0/16'), t + 5n * S);
    blockPrefix(bae.maps, prefix('2001:db8:61::/48'), t + 5n * S);
    assert.deepEqual(listBlockedPrefixes(bae.maps).map((b) => b.prefix).sort(), ['10.61.0.0/16', '2001:db8:61::/48']);
    assert.equal(bae.run(udp('10.61.5.5')), XDP.drop);
    assert.equal(bae.run(udp('10.61.255.1')), XDP.drop);
    assert.equal(bae.run(udp('10.62.0.1')), XDP.pass);
    assert.equal(bae.run(udp('2001:db8:61::7')), XDP.drop);
    assert.equal(bae.run(udp('2001:db8:62::7')), XDP.pass);
    bae.setClock(t + 5n * S);
    assert.equal(bae.run(udp('10.61.5.5')), XDP.pass, 'the block ends at its expiry, with no process involved');
    bae.setClock(t);
    assert.equal(bae.run(udp('10.61.5.5')), XDP.drop);
    assert.equal(unblockPrefix(bae.maps, prefix('10.61.0.0/16')), true);
    assert.equal(unblockPrefix(bae.maps, prefix('10.61.0.0/16')), false, 'a second unblock finds nothing');
    assert.equal(bae.run(udp('10.61.5.5')), XDP.pass);
    unblockPrefix(bae.maps, prefix('2001:db8:61::/48'));
    assert.deepEqual(listBlockedPrefixes(bae.maps), []);
    assert.ok(readPolicyStats(bae.maps).blocklistDrops >= 4n);
  });

  it('refuses to block a protected address, counts it and says why in an event; the trigger still fires', async () => {
    await bae.apply(policies(SYN_BLOCK));
    protectPrefix(bae.maps, prefix('10.63.0.0/24'));
    assert.deepEqual(listProtectedPrefixes(bae.maps), ['10.63.0.0/24']);
    assert.equal(protectedPrefixOf(bae.maps, 4, prefix('10.63.0.9').addr), '10.63.0.0/24');
    assert.equal(protectedPrefixOf(bae.maps, 4, prefix('10.63.1.9').addr), undefined);
    const refusedBefore = readPolicyStats(bae.maps).blockRefused;
    const verdicts = synBurst('10.63.0.9', 6);
    // The rule is on (its verdict drops the SYN that fired it and those after), but no block.
    assert.deepEqual(verdicts, [XDP.pass, XDP.pass, XDP.pass, XDP.drop, XDP.drop, XDP.drop]);
    assert.ok(!readBlocklist(bae.maps).some((b) => formatAddress(4, b.addr) === '10.63.0.9'), 'not on the blocklist');
    assert.equal(readPolicyStats(bae.maps).blockRefused - refusedBefore, 3n, 'each SYN while on was refused');
    ring.consume();
    const refused = events.filter((e) => e.kind === EVENT.refused);
    assert.equal(refused.length, 3);
    assert.equal(formatAddress(4, refused[0]!.addrA), '10.63.0.9');
    assert.equal(events.filter((e) => e.kind === EVENT.block).length, 0);
    // An unprotected source is blocked by the same policy.
    synBurst('10.64.0.9', 4);
    assert.ok(readBlocklist(bae.maps).some((b) => formatAddress(4, b.addr) === '10.64.0.9'));
    assert.equal(unprotectPrefix(bae.maps, prefix('10.63.0.0/24')), true);
    assert.deepEqual(listProtectedPrefixes(bae.maps), []);
  });

  it('a monitor-only policy counts, fires and says it would block, and enforces nothing', async () => {
    const monitored = policies(SYN_BLOCK.replace('spec:\n', 'spec:\n  monitor: true\n'));
    assert.equal(monitored[0]!.monitor, true);
    await bae.apply(monitored);
    const verdicts = synBurst('10.65.0.1', 6);
    assert.deepEqual(verdicts, new Array(6).fill(XDP.pass), 'nothing dropped');
    assert.ok(!readBlocklist(bae.maps).some((b) => formatAddress(4, b.addr) === '10.65.0.1'), 'nothing blocked');
    const c = readCounters(bae.maps).get(monitored[0]!.id)!;
    assert.equal(c.fired, 1n);
    assert.equal(c.blocks, 0n);
    ring.consume();
    const would = events.filter((e) => e.kind === EVENT.wouldBlock);
    assert.equal(would.length, 3, 'one would-block event per SYN while on');
    assert.equal(formatAddress(4, would[0]!.addrA), '10.65.0.1');
  });

  it('a monitor-only policy leaves the decision to the policies below it', async () => {
    const set = policies(policyYaml('watch-web', 'priority: 100\nmonitor: true\nmatch: { proto: udp }\nactions: [drop]') + '---\n' + policyYaml('drop-udp-low', 'priority: 1\nmatch: { proto: udp, src: 10.66.0.0/16 }\nactions: [drop]'));
    await bae.apply(set);
    assert.equal(bae.run(udp('10.67.0.1')), XDP.pass, 'the monitor policy alone: passes');
    assert.equal(bae.run(udp('10.66.0.1')), XDP.drop, 'the lower policy decides');
    assert.equal(readCounters(bae.maps).get(set[0]!.id)!.applied, 2n, 'the monitor policy counted both');
  });

  it('a monitor-only node (compile option) enforces none of its policies', async () => {
    await bae.apply(policies(SYN_BLOCK), { monitor: true });
    assert.deepEqual(synBurst('10.68.0.1', 6), new Array(6).fill(XDP.pass));
    assert.ok(!readBlocklist(bae.maps).some((b) => formatAddress(4, b.addr) === '10.68.0.1'));
    await bae.apply(policies(SYN_BLOCK));
    assert.deepEqual(synBurst('10.68.0.2', 6), [XDP.pass, XDP.pass, XDP.pass, XDP.drop, XDP.drop, XDP.drop], 'enforcing again');
  });

  it('protected prefixes alone cost no enforcement: traffic passes', async () => {
    await bae.apply([]);
    setProtectedPrefixes(bae.maps, [prefix('10.69.0.0/16'), prefix('2001:db8:69::/48')]);
    assert.equal(bae.run(udp('10.69.0.1')), XDP.pass);
    assert.equal(bae.run(udp('10.70.0.1')), XDP.pass);
    setProtectedPrefixes(bae.maps, []);
    assert.deepEqual(listProtectedPrefixes(bae.maps), []);
  });
});
