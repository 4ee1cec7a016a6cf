// Escalation of blocks for repeat offenders in the kernel (BPF_PROG_TEST_RUN, test clock): a
// policy's `block: { ttl, escalate, maxTtl, forget }` blocks an address ttl x escalate^n, n = its
// earlier escalating blocks in the history map policy_offences, up to maxTtl; the history lapses
// `forget` after the latest block ended; user space's escalating blocks (Blocklist.block, as
// `bae block --escalate` and block commands use it) share the same history.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { formatAddress, RingBuffer } from '../../src/datapath';
import { XDP } from '../../src/datapath/layout';
import { decodePolicyEvent, type PolicyEventRecord } from '../../src/datapath/policy-layout';
import { Blocklist, parseBlockTarget, type BlockTarget } from '../../src/policy/blocks';
import { parsePrefix, type Prefix } from '../../src/policy/net';
import { setProtectedPrefixes } from '../../src/policy/prefix-blocks';
import { readBlocklist, readCounters, readOffences } from '../../src/policy/state';
import { TCP_SYN } from '../lib/packets';
import { PolicyBae, frame, policies, policyYaml } from './helpers';

const S = 1_000_000_000n;
const EVENT = { block: 2, refused: 4, wouldBlock: 5 };
const syn = (src: string) => frame({ ip: { version: 4, src, dst: '10.0.0.2' }, l4: { proto: 'tcp', sport: 40000, dport: 443, flags: TCP_SYN } });
// Three SYNs within a second fire the trigger (for 1 s) and block the source.
const escalating = (block: string, extra = '') =>
  policies(policyYaml('esc', `match: { proto: tcp }\ntrigger: { when: tcp.syn >= 3, within: 1s, scope: source }\nfor: 1s\n${extra}actions: [ { block: ${block} } ]`));

describe('escalating blocks of repeat offenders', () => {
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
    t += 100_000n * S; // every case starts long after the bans and histories of the one before
    bae.setClock(t);
    events.length = 0;
  });

  /** Three SYNs 1 ms apart from src (an offence); the expiry of the block they led to, or undefined. */
  function offend(src: string): bigint | undefined {
    for (let i = 0; i < 3; i++) {
      t += 1_000_000n;
      bae.setClock(t);
      bae.run(syn(src));
    }
    return readBlocklist(bae.maps).find((b) => formatAddress(4, b.addr) === src && b.expiryNs > t)?.expiryNs;
  }
  const offences = (src: string) => readOffences(bae.maps).find((o) => formatAddress(4, o.addr) === src);
  const target = (a: string) => parseBlockTarget(a) as BlockTarget;

  it('doubles the block of each repeat offence up to maxTtl, and counts them in the history', async () => {
    const set = escalating('{ ttl: 10s, escalate: 2, maxTtl: 70s, forget: 1h }');
    await bae.apply(set);
    const src = '10.70.0.1';
    const ttls: bigint[] = [];
    for (let k = 0; k < 5; k++) {
      const start = t + 1_000_000n * 3n; // the third SYN blocks
      const expiry = offend(src);
      assert.ok(expiry !== undefined, `offence ${k + 1} blocks`);
      ttls.push(expiry - start);
      assert.equal(bae.run(syn(src)), XDP.drop, 'blocked');
      assert.deepEqual({ count: offences(src)?.count, last: offences(src)?.lastExpiryNs }, { count: k + 1, last: expiry });
      t = expiry + 5n * S; // after the block, well within forget
      bae.setClock(t);
      assert.equal(bae.run(syn(src)), XDP.pass, `the block of offence ${k + 1} ended at its expiry`);
      t += 2n * S; // the trigger's window and `for` are over
    }
    assert.deepEqual(ttls, [10n * S, 20n * S, 40n * S, 70n * S, 70n * S], 'ttl x 2^n, at most maxTtl');
    assert.equal(readCounters(bae.maps).get(set[0]!.id)!.blocks, 5n);
    ring.consume();
    const blocks = events.filter((e) => e.kind === EVENT.block);
    assert.equal(blocks.length, 5, 'one block event per offence');
  });

  it('forgets the history `forget` after the latest block ended: the next block is ttl again', async () => {
    await bae.apply(escalating('{ ttl: 10s, escalate: 3, forget: 60s }'));
    const src = '10.70.0.2';
    let start = t + 3_000_000n;
    let expiry = offend(src)!;
    assert.equal(expiry - start, 10n * S);
    t = expiry + 59n * S; // 59 s after: still remembered
    start = t + 3_000_000n;
    expiry = offend(src)!;
    assert.equal(expiry - start, 30n * S, 'x3 within forget');
    t = expiry + 60n * S; // 60 s after: forgotten
    start = t + 3_000_000n;
    expiry = offend(src)!;
    assert.equal(expiry - start, 10n * S, 'forgotten: ttl again');
    assert.equal(offences(src)?.count, 1, 'the history starts again at 1');
  });

  it('a block without escalate keeps no history and lasts its ttl whatever the history says', async () => {
    await bae.apply(escalating('{ ttl: 10s }'));
    const src = '10.70.0.3';
    const list = new Blocklist(bae.maps.blocklist, bae.maps.blockUsed, { offences: bae.maps.offences, clock: () => t });
    list.block(target(src), 5n * S, { factor: 2, maxNs: 1000n * S, forgetNs: 1000n * S }); // history: 1
    t += 6n * S;
    const start = t + 3_000_000n;
    const expiry = offend(src)!;
    assert.equal(expiry - start, 10n * S);
    assert.equal(offences(src)?.count, 1, 'left alone');
  });

  it('a block by command and a block by a policy count as one history', async () => {
    await bae.apply(escalating('{ ttl: 10s, escalate: 2, maxTtl: 1h }'));
    const src = '10.70.0.4';
    const list = new Blocklist(bae.maps.blocklist, bae.maps.blockUsed, { offences: bae.maps.offences, clock: () => t });
    const esc = { factor: 2, maxNs: 3600n * S, forgetNs: 86_400n * S };
    const first = list.block(target(src), 10n * S, esc);
    assert.equal(first.remainingNs, 10n * S);
    assert.equal(first.offences, 1);
    assert.equal(bae.run(syn(src)), XDP.drop, 'the command block is enforced');
    t = first.expiryNs + S;
    const start = t + 3_000_000n;
    const expiry = offend(src)!;
    assert.equal(expiry - start, 20n * S, 'the policy counts the command block: x2');
    t = expiry + S;
    const third = list.block(target(src), 10n * S, esc);
    assert.equal(third.remainingNs, 40n * S, 'the command counts both: x4');
    assert.equal(third.offences, 3);
    const listed = list.list().find((e) => e.address === src)!;
    assert.equal(listed.offences, 3, 'the list shows the offence count');
    assert.equal(listed.expiryNs, t + 40n * S);
  });

  it('monitor-only and protected addresses say the escalated expiry and leave the history alone', async () => {
    const src = '10.70.0.5';
    const list = new Blocklist(bae.maps.blocklist, bae.maps.blockUsed, { offences: bae.maps.offences, clock: () => t });
    list.block(target(src), 1n * S, { factor: 2, maxNs: 3600n * S, forgetNs: 86_400n * S });
    t += 2n * S;
    await bae.apply(escalating('{ ttl: 10s, escalate: 2 }', 'monitor: true\n'));
    let start = t + 3_000_000n;
    assert.equal(offend(src), undefined, 'monitor-only: not blocked');
    ring.consume();
    const would = events.filter((e) => e.kind === EVENT.wouldBlock);
    assert.equal(would.length, 1);
    assert.equal(would[0]!.value, start + 20n * S, 'would-block carries the escalated expiry');
    assert.equal(offences(src)?.count, 1);

    events.length = 0;
    await bae.apply(escalating('{ ttl: 10s, escalate: 2 }'));
    setProtectedPrefixes(bae.maps, [parsePrefix('10.70.0.0/24') as Prefix]);
    try {
      t += 2n * S;
      start = t + 3_000_000n;
      assert.equal(offend(src), undefined, 'protected: not blocked');
      ring.consume();
      const refused = events.filter((e) => e.kind === EVENT.refused);
      assert.equal(refused.length, 1);
      assert.equal(refused[0]!.value, start + 20n * S, 'the refusal carries the escalated expiry');
      assert.equal(offences(src)?.count, 1, 'no offence counted');
    } finally {
      setProtectedPrefixes(bae.maps, []);
    }
  });
});
