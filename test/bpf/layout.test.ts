// src/datapath/layout.ts and the ABI generated for it (abi.gen.ts, scripts/gen-abi.mjs from
// bpftool's reading of the BTF) against libbpf's reading of the same BTF of bae.o, and the codecs.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadCollection } from '../../src/datapath';
import {
  IAT_BUCKETS,
  IAT_BUCKET_EDGES_NS,
  LAYOUTS,
  MAPS,
  PARSE_OUTCOMES,
  VERDICTS,
  convKeyFor,
  decodeConvDir,
  decodeConvKey,
  decodeFlowKey,
  emptyConvDir,
  encodeConv,
  encodeConvDir,
  encodeConvKey,
  encodeFlowKey,
  flowKeyFor,
  iatBucket,
  mergeConvPerCpu,
  sumStatsPerCpu,
  type ConvDir,
} from '../../src/datapath/layout';
import { BAE_OBJECT } from './harness';

describe('layout.ts mirrors bpf/bae.h', () => {
  test('every generated struct has the size and field offsets that libbpf reads from the BTF of bae.o', () => {
    using coll = loadCollection(BAE_OBJECT);
    for (const [name, ts] of Object.entries(LAYOUTS)) {
      const btf = coll.structLayout(name);
      assert.equal(ts.size, btf.size, `sizeof(struct ${name})`);
      const fromBtf = Object.fromEntries(btf.members.map((m) => [m.name, { offset: m.offset, size: m.size }]));
      const generated = Object.fromEntries(Object.entries(ts.fields).map(([f, d]) => [f, { offset: d.offset, size: d.size }]));
      assert.deepEqual(generated, fromBtf, `fields of struct ${name}`);
      for (const m of btf.members) assert.equal(m.bitSize, undefined, `${name}.${m.name} is not a bitfield`);
    }
  });

  test('the maps of bae.o have the key and value sizes of the structs layout.ts decodes', () => {
    using coll = loadCollection(BAE_OBJECT);
    const expect: [string, number, number][] = [
      [MAPS.convs, LAYOUTS.bae_conv_key!.size, LAYOUTS.bae_conv!.size],
      [MAPS.tcpFlows, LAYOUTS.bae_flow_key!.size, LAYOUTS.bae_tcp_flow!.size],
      [MAPS.stats, 4, LAYOUTS.bae_stats!.size],
      [MAPS.ports, 4, 4],
      [MAPS.testClock, 4, 8],
      [MAPS.httpPorts, 4, 8],
    ];
    for (const [name, keySize, valueSize] of expect) {
      const map = coll.map(name);
      assert.equal(map.keySize, keySize, `${name} key size`);
      assert.equal(map.valueSize, valueSize, `${name} value size`);
    }
    assert.equal(coll.map(MAPS.convs).type, 'lru_percpu_hash');
    assert.equal(coll.map(MAPS.tcpFlows).type, 'lru_hash');
    assert.equal(coll.map(MAPS.stats).type, 'percpu_array');
    assert.equal(coll.map(MAPS.ports).type, 'devmap_hash');
  });

  test('the counter arrays have one slot per verdict and per parse outcome', () => {
    using coll = loadCollection(BAE_OBJECT);
    const members = Object.fromEntries(coll.structLayout('bae_stats').members.map((m) => [m.name, m.size]));
    assert.equal(members.verdicts, 8 * VERDICTS);
    assert.equal(members.parse, 8 * PARSE_OUTCOMES.length);
  });
});

describe('layout.ts codecs', () => {
  test('per-CPU copies of a conversation merge: counts add, extremes and first/last combine', () => {
    const copy = (over: Partial<ConvDir>): ConvDir => ({ ...emptyConvDir(), ...over });
    const cpu0 = copy({
      packets: 3n, bytes: 300n, firstSeenNs: 100n, lastSeenNs: 900n, sizeSumSq: 30000n, iatSumNs: 800n, iatSumSq1024ns: 5n,
      sizeHist: [0n, 3n, 0n, 0n, 0n, 0n, 0n, 0n], tcpFlags: [1n, 1n, 0n, 0n, 3n, 0n, 0n, 0n], retransmits: 1n,
      // Bucket 0 is not stored: whatever is given here, the decoded copy has the rest of its gaps.
      iatHist: [9n, 1n, 0n, 0n, 0n, 0n, 0n, 1n],
      httpRequests: 2n, httpResponses: 1n, httpErrors: 1n,
      sizeMin: 60, sizeMax: 140, ttlMin: 60, ttlMax: 64, ttlLast: 61,
    });
    const cpu1 = copy({
      packets: 2n, bytes: 2000n, firstSeenNs: 50n, lastSeenNs: 700n, sizeSumSq: 2000000n, iatSumNs: 650n, iatSumSq1024ns: 1n,
      sizeHist: [0n, 0n, 0n, 0n, 0n, 2n, 0n, 0n], tcpFlags: [0n, 0n, 1n, 0n, 2n, 0n, 0n, 0n], outOfOrder: 2n, zeroWindow: 1n,
      httpResponses: 3n, httpErrors: 2n, http5xx: 1n,
      sizeMin: 1000, sizeMax: 1000, ttlMin: 30, ttlMax: 30, ttlLast: 30,
    });
    const idle = emptyConvDir(); // a CPU that never saw the direction must not drag minima to 0
    const merged = mergeConvPerCpu([encodeConv({ dir: [cpu0, idle] }), encodeConv({ dir: [cpu1, idle] }), encodeConv({ dir: [idle, idle] })]);
    assert.deepEqual(merged.dir[0], {
      packets: 5n, bytes: 2300n, firstSeenNs: 50n, lastSeenNs: 900n, sizeSumSq: 2030000n, iatSumNs: 1450n, iatSumSq1024ns: 6n,
      sizeHist: [0n, 3n, 0n, 0n, 0n, 2n, 0n, 0n], tcpFlags: [1n, 1n, 1n, 0n, 5n, 0n, 0n, 0n], retransmits: 1n, outOfOrder: 2n, zeroWindow: 1n,
      iatHist: [1n, 1n, 0n, 0n, 0n, 0n, 0n, 1n], // cpu0: its 2 gaps stored; cpu1: its 1 gap in bucket 0
      httpRequests: 2n, httpResponses: 4n, httpErrors: 3n, http5xx: 1n,
      sizeMin: 60, sizeMax: 1000, ttlMin: 30, ttlMax: 64, ttlLast: 61, iatCount: 3n,
    });
    assert.deepEqual(merged.dir[1], emptyConvDir());
  });

  test('inter-arrival bucket 0 is the rest of the gaps, never below 0', () => {
    const d = (over: Partial<ConvDir>) => decodeConvDir(encodeConvDir({ ...emptyConvDir(), ...over }));
    assert.deepEqual(d({ packets: 10n, iatHist: [0n, 2n, 0n, 3n, 0n, 0n, 1n, 0n] }).iatHist, [3n, 2n, 0n, 3n, 0n, 0n, 1n, 0n]);
    assert.deepEqual(d({ packets: 1n }).iatHist, Array(IAT_BUCKETS).fill(0n), 'one packet, no gap');
    assert.deepEqual(d({ packets: 2n, iatHist: [0n, 5n, 0n, 0n, 0n, 0n, 0n, 0n] }).iatHist, [0n, 5n, 0n, 0n, 0n, 0n, 0n, 0n], 'seeded past its gaps');
  });

  test('inter-arrival buckets are decades from 10 us to 10 s', () => {
    assert.deepEqual(IAT_BUCKET_EDGES_NS, [0n, 10_000n, 100_000n, 1_000_000n, 10_000_000n, 100_000_000n, 1_000_000_000n, 10_000_000_000n]);
    const gaps = [0n, 9_999n, 10_000n, 99_999n, 100_000n, 999_999n, 1_000_000n, 9_999_999n, 10_000_000n, 99_999_999n, 100_000_000n, 999_999_999n, 1_000_000_000n, 9_999_999_999n, 10_000_000_000n, 2n ** 64n - 1n];
    assert.deepEqual(gaps.map(iatBucket), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]);
  });

  test('global counters sum over CPUs', () => {
    const size = LAYOUTS.bae_stats!.size;
    const a = Buffer.alloc(size);
    const b = Buffer.alloc(size);
    const parse = LAYOUTS.bae_stats!.fields.parse!.offset;
    a.writeBigUInt64LE(3n, 2 * 8); // verdicts[XDP_PASS]
    b.writeBigUInt64LE(4n, 2 * 8);
    a.writeBigUInt64LE(7n, parse + 8 * PARSE_OUTCOMES.indexOf('non_ip'));
    b.writeBigUInt64LE(1n, LAYOUTS.bae_stats!.fields.inline_no_port!.offset);
    const s = sumStatsPerCpu([a, b]);
    assert.equal(s.verdicts.pass, 7n);
    assert.equal(s.parse.non_ip, 7n);
    assert.equal(s.parse.tcp, 0n);
    assert.equal(s.inlineNoPort, 1n);
  });

  test('keys put the lower address first and round-trip', () => {
    assert.deepEqual(convKeyFor('10.0.0.9', '10.0.0.10'), { key: { family: 2, a: '10.0.0.9', b: '10.0.0.10' }, dir: 0 });
    assert.deepEqual(convKeyFor('10.0.0.10', '9.255.255.255'), { key: { family: 2, a: '9.255.255.255', b: '10.0.0.10' }, dir: 1 });
    assert.deepEqual(convKeyFor('2001:db8::2', '2001:db8::1:0').dir, 0);
    const { key } = convKeyFor('fe80::1', '::1');
    assert.deepEqual(decodeConvKey(encodeConvKey(key)), { family: 10, a: '::1', b: 'fe80::1' });
    assert.throws(() => encodeConvKey({ family: 2, a: '10.0.0.2', b: '10.0.0.1' }), /a must be the lower address/);
    assert.throws(() => convKeyFor('10.0.0.1', '::1'), /different families/);
    assert.throws(() => convKeyFor('10.0.0.256', '10.0.0.1'), /not an IPv4 or IPv6 address: '10.0.0.256'/);
    const flow = flowKeyFor('10.0.0.2', 80, '10.0.0.1', 40000);
    assert.deepEqual(flow, { key: { family: 2, proto: 6, a: '10.0.0.1', portA: 40000, b: '10.0.0.2', portB: 80 }, dir: 1 });
    assert.deepEqual(decodeFlowKey(encodeFlowKey(flow.key)), flow.key);
    assert.equal(flowKeyFor('10.0.0.1', 9, '10.0.0.1', 8).dir, 1, 'same address: the lower port is endpoint a');
  });
});
