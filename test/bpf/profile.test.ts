// Conversation profiles: sizes, histogram, inter-arrival moments, TTL and the clock knob; map
// sizes as load options and LRU eviction.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LAYOUTS, MAPS, sizeBucket } from '../../src/datapath/layout';
import { buildPacket } from '../lib/packets';
import { Bae, Golden, statsDelta } from './harness';

const udp = (src: string, dst: string, frameLen: number, ttl = 64) =>
  buildPacket({ ip: { version: 4, src, dst, ttl }, l4: { proto: 'udp', sport: 9, dport: 9, payload: Buffer.alloc(frameLen - 42) } }).frame;

describe('conversation profiles', () => {
  let bae: Bae;
  let golden: Golden;
  before(() => {
    bae = new Bae();
    golden = new Golden(bae);
  });
  after(() => bae?.close());

  test('frame sizes land in their log2 bucket, with min, max and sum of squares', () => {
    // BPF_PROG_TEST_RUN hands a program without xdp.frags at most 3520 linear bytes (4 KiB page
    // less headroom and tailroom); a real port's MTU keeps frames smaller still.
    const sizes = [42, 63, 64, 127, 128, 255, 256, 511, 512, 1023, 1024, 1514, 2047, 2048, 3000, 3520];
    for (const len of sizes) {
      golden.send(udp('10.9.0.1', '10.9.0.2', len), { outcome: 'udp', ip: { src: '10.9.0.1', dst: '10.9.0.2', ttl: 64 } }, `${len} bytes`);
    }
    const d = bae.conv('10.9.0.1', '10.9.0.2').conv!.dir[0];
    assert.deepEqual(d.sizeHist, [2n, 2n, 2n, 2n, 2n, 3n, 3n, 0n]);
    assert.deepEqual(sizes.map(sizeBucket), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5, 6, 6, 6]);
    assert.equal(d.sizeMin, 42);
    assert.equal(d.sizeMax, 3520);
  });

  test('inter-arrival sums follow the clock; a clock that goes back adds a zero gap', () => {
    const send = (advanceNs: bigint, what: string) =>
      golden.send(udp('10.9.1.2', '10.9.1.1', 100), { outcome: 'udp', ip: { src: '10.9.1.2', dst: '10.9.1.1', ttl: 64 }, advanceNs }, what);
    send(1n, 'first');
    send(1_000_000n, '1 ms later');
    send(3n, '3 ns later');
    send(-500_000n, 'the clock went back 0.5 ms');
    send(10n ** 9n * 5000n, 'a gap of 83 minutes, capped in the squares');
    const d = bae.conv('10.9.1.2', '10.9.1.1').conv!.dir[1];
    // The step back records its own time as last seen: the next gap starts from there.
    assert.equal(d.iatSumNs, 1_000_000n + 3n + 0n + 10n ** 9n * 5000n);
    assert.equal(d.iatSumSq1024ns, (1_000_000n >> 10n) ** 2n + 0n + 0n + 0xffffffffn ** 2n);
    assert.equal(d.iatCount, 4n);
    assert.deepEqual(d.iatHist, [2n, 0n, 0n, 1n, 0n, 0n, 0n, 1n], '0 and 3 ns, 1 ms, 5000 s');
  });

  test('inter-arrival gaps land in their decade bucket, edges included', () => {
    // Each gap once, in this order: below and at every edge from 10 us to 10 s.
    const gaps = [9_999n, 10_000n, 99_999n, 100_000n, 999_999n, 1_000_000n, 9_999_999n, 10_000_000n, 99_999_999n, 100_000_000n, 999_999_999n, 1_000_000_000n, 9_999_999_999n, 10_000_000_000n, 0n];
    const send = (advanceNs: bigint, what: string) =>
      golden.send(udp('10.9.3.1', '10.9.3.2', 80), { outcome: 'udp', ip: { src: '10.9.3.1', dst: '10.9.3.2', ttl: 64 }, advanceNs }, what);
    send(1n, 'first');
    for (const g of gaps) send(g, `a gap of ${g} ns`);
    const d = bae.conv('10.9.3.1', '10.9.3.2').conv!.dir[0];
    assert.deepEqual(d.iatHist, [2n, 2n, 2n, 2n, 2n, 2n, 2n, 1n]);
    assert.equal(d.iatCount, BigInt(gaps.length));
    assert.deepEqual(bae.conv('10.9.3.1', '10.9.3.2').conv!.dir[1].iatHist, Array(8).fill(0n), 'nothing sent the other way');
  });

  test('TTL minimum, maximum and latest per direction', () => {
    for (const [ttl, from] of [[64, 'a'], [3, 'a'], [200, 'a'], [17, 'a'], [128, 'b']] as const) {
      const [src, dst] = from === 'a' ? ['10.9.2.1', '10.9.2.2'] : ['10.9.2.2', '10.9.2.1'];
      golden.send(udp(src, dst, 60, ttl), { outcome: 'udp', ip: { src, dst, ttl } }, `TTL ${ttl} from ${from}`);
    }
    const conv = bae.conv('10.9.2.1', '10.9.2.2').conv!;
    assert.deepEqual([conv.dir[0].ttlMin, conv.dir[0].ttlMax, conv.dir[0].ttlLast], [3, 200, 17]);
    assert.deepEqual([conv.dir[1].ttlMin, conv.dir[1].ttlMax, conv.dir[1].ttlLast], [128, 128, 128]);
  });
});

describe('the clock knob', () => {
  test('by default first and last seen come from CLOCK_MONOTONIC (bpf_ktime_get_ns)', () => {
    const bae = new Bae({ clock: 'real' });
    try {
      const t0 = process.hrtime.bigint();
      bae.run(udp('10.9.3.1', '10.9.3.2', 60));
      const t1 = process.hrtime.bigint();
      bae.run(udp('10.9.3.1', '10.9.3.2', 60));
      const t2 = process.hrtime.bigint();
      const d = bae.conv('10.9.3.1', '10.9.3.2').conv!.dir[0];
      assert.ok(t0 <= d.firstSeenNs && d.firstSeenNs <= t1, `first seen ${d.firstSeenNs} within [${t0}, ${t1}]`);
      assert.ok(t1 <= d.lastSeenNs && d.lastSeenNs <= t2, `last seen ${d.lastSeenNs} within [${t1}, ${t2}]`);
      assert.equal(d.iatSumNs, d.lastSeenNs - d.firstSeenNs);
    } finally {
      bae.close();
    }
  });

  test('with the test clock, time is the value tests put in bae_test_clock', () => {
    const bae = new Bae({ clock: 'test' });
    try {
      bae.setClock(42n);
      bae.run(udp('10.9.3.1', '10.9.3.2', 60));
      bae.setClock(10n ** 12n);
      bae.run(udp('10.9.3.1', '10.9.3.2', 60));
      const d = bae.conv('10.9.3.1', '10.9.3.2').conv!.dir[0];
      assert.deepEqual([d.firstSeenNs, d.lastSeenNs, d.iatSumNs], [42n, 10n ** 12n, 10n ** 12n - 42n]);
    } finally {
      bae.close();
    }
  });
});

describe('map sizes', () => {
  test('are load options, and a full conversation map evicts the coldest entries', () => {
    const bae = new Bae({ maxEntries: { [MAPS.convs]: 64, [MAPS.tcpFlows]: 32 } });
    try {
      assert.equal(bae.convs.maxEntries, 64);
      assert.equal(bae.flows.maxEntries, 32);
      const before = bae.stats();
      for (let i = 0; i < 500; i++) bae.run(udp(`10.10.${i >> 8}.${i & 255}`, '10.11.0.1', 60));
      // Every frame got its profile (the LRU made room); the map never holds more than its size.
      assert.deepEqual(statsDelta(before, bae.stats()), { 'verdict.pass': 500, 'parse.udp': 500 });
      const held = bae.convs.lookupBatch().keys.length;
      assert.ok(held > 0 && held <= 64, `${held} conversations held`);
      assert.ok(bae.conv('10.10.1.243', '10.11.0.1').conv, 'the newest conversation is there');
      assert.equal(bae.conv('10.10.0.0', '10.11.0.1').conv, undefined, 'the oldest was evicted');
      assert.equal(bae.convs.valueSize, LAYOUTS.bae_conv!.size);
    } finally {
      bae.close();
    }
  });
});
