// test-unit: needs no root and no kernel (make test-unit).
// The profile view without a kernel: entries built with layout.ts's encoders, merged over CPUs,
// sorted and rendered (their JSON: test/shared/json.test.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Conv, LAYOUTS, convKeyFor, emptyConvDir, encodeConv, encodeConvKey } from '../../src/datapath/layout';
import { findProfile, humanAge, humanCount, profileFromEntry, renderHistograms, renderTable, sortProfiles } from '../../src/profiles';

function entry(src: string, dst: string, perCpu: Array<{ packets: bigint; bytes: bigint; last: bigint; retx?: bigint; httpRequests?: bigint; httpErrors?: bigint; iatHist?: bigint[] }>) {
  const { key, dir } = convKeyFor(src, dst);
  const values = perCpu.map((p) => {
    const conv: Conv = { dir: [emptyConvDir(), emptyConvDir()] };
    const d = conv.dir[dir];
    Object.assign(d, {
      packets: p.packets,
      bytes: p.bytes,
      firstSeenNs: p.last - 1000n,
      lastSeenNs: p.last,
      sizeMin: 60,
      sizeMax: 1514,
      sizeSumSq: p.bytes * 100n,
      retransmits: p.retx ?? 0n,
      httpRequests: p.httpRequests ?? 0n,
      httpErrors: p.httpErrors ?? 0n,
      ...(p.iatHist ? { iatHist: p.iatHist } : {}),
    });
    return encodeConv(conv);
  });
  return profileFromEntry(encodeConvKey(key), values);
}

describe('conversation profiles', () => {
  test('per-CPU copies add up and the lower address is A', () => {
    const p = entry('10.0.0.9', '10.0.0.1', [
      { packets: 2n, bytes: 200n, last: 5000n },
      { packets: 3n, bytes: 300n, last: 7000n, retx: 1n },
    ]);
    assert.equal(LAYOUTS.bae_conv!.size, encodeConv({ dir: [emptyConvDir(), emptyConvDir()] }).length);
    assert.deepEqual([p.family, p.a, p.b], ['ipv4', '10.0.0.1', '10.0.0.9']);
    assert.deepEqual([p.bToA.packets, p.bToA.bytes, p.aToB.packets], [5n, 500n, 0n]);
    assert.deepEqual([p.packets, p.bytes, p.retransmits, p.lastSeenNs, p.firstSeenNs], [5n, 500n, 1n, 7000n, 4000n]);
    assert.equal(p.bToA.sizeMean, 100);
  });

  test('sorting puts the largest first for each key and breaks ties by bytes, then addresses', () => {
    const big = entry('10.0.0.1', '10.0.0.2', [{ packets: 10n, bytes: 100n, last: 1001n }]);
    const heavy = entry('10.0.0.1', '10.0.0.3', [{ packets: 2n, bytes: 3000n, last: 9000n, retx: 4n }]);
    const v6 = entry('fd00::1', 'fd00::2', [{ packets: 2n, bytes: 3000n, last: 5000n }]);
    const names = (ps: { b: string }[]) => ps.map((p) => p.b);
    assert.deepEqual(names(sortProfiles([big, heavy, v6], 'packets')), ['10.0.0.2', '10.0.0.3', 'fd00::2']);
    assert.deepEqual(names(sortProfiles([big, v6, heavy], 'bytes')), ['10.0.0.3', 'fd00::2', '10.0.0.2']);
    assert.deepEqual(names(sortProfiles([big, v6, heavy], 'retransmits')), ['10.0.0.3', 'fd00::2', '10.0.0.2']);
    assert.deepEqual(names(sortProfiles([big, v6, heavy], 'last-seen')), ['10.0.0.3', 'fd00::2', '10.0.0.2']);
    assert.equal(findProfile([big, heavy], '10.0.0.3', '10.0.0.1'), heavy);
  });

  test('inter-arrival histograms add over CPUs, bucket 0 from each copy\'s gaps, and render per direction', () => {
    const p = entry('10.0.0.1', '10.0.0.2', [
      { packets: 5n, bytes: 500n, last: 5000n, iatHist: [0n, 1n, 0n, 0n, 0n, 0n, 0n, 2n] },
      { packets: 3n, bytes: 300n, last: 6000n, iatHist: [0n, 0n, 0n, 1n, 0n, 0n, 0n, 0n] },
    ]);
    // Copy 0: 4 gaps, 3 stored; copy 1: 2 gaps, 1 stored.
    assert.deepEqual(p.aToB.iatHist, [2n, 1n, 0n, 1n, 0n, 0n, 0n, 2n]);
    assert.equal(p.aToB.iatCount, 6n);
    assert.deepEqual(p.bToA.iatHist, Array(8).fill(0n));
    const lines = renderHistograms(p).split('\n');
    assert.equal(lines[0], '10.0.0.1 - 10.0.0.2');
    assert.match(lines[1]!, /^ {2}SIZE\s+<64\s+64-127\s+128-255\s+256-511\s+512-1023\s+1024-2047\s+2048-4095\s+>=4096$/);
    assert.match(lines[4]!, /^ {2}GAP\s+<10us\s+10-100us\s+100us-1ms\s+1-10ms\s+10-100ms\s+100ms-1s\s+1-10s\s+>=10s$/);
    assert.deepEqual(lines[5]!.trim().split(/\s+/), ['A>B', '2', '1', '0', '1', '0', '0', '0', '2']);
    assert.deepEqual(lines[6]!.trim().split(/\s+/), ['B>A', '0', '0', '0', '0', '0', '0', '0', '0']);
    // Columns line up: every count ends where its head ends.
    const ends = (l: string) => [...l.matchAll(/\S+/g)].map((m) => m.index! + m[0].length);
    assert.deepEqual(ends(lines[5]!), ends(lines[4]!));
  });

  test('the table aligns columns and shows ages and sizes', () => {
    const p = entry('10.0.0.1', '10.0.0.2', [{ packets: 12345n, bytes: 1_234_567n, last: 1_000_000_000n }]);
    const lines = renderTable([p], 3_500_000_000n).split('\n');
    assert.match(lines[0]!, /^A\s+B\s+PKTS A>B/);
    assert.match(lines[0]!, /\sRETX\s+HTTP REQ\/ERR\s+IDLE\s+AGE$/);
    assert.match(lines[1]!, /^10\.0\.0\.1\s+10\.0\.0\.2\s+12k\s+0\s+1\.2M\s+0\s+100 \(60-1514\)\s+-\s+0\s+-\s+2s\s+2s$/);
    const web = entry('10.0.0.3', '10.0.0.4', [{ packets: 10n, bytes: 1000n, last: 1_000_000_000n, httpRequests: 7n }, { packets: 5n, bytes: 500n, last: 1_000_000_000n, httpRequests: 2n, httpErrors: 3n }]);
    assert.match(renderTable([web], 3_500_000_000n).split('\n')[1]!, /\s0\s+9\/3\s+2s\s+2s$/, 'requests and errors of both CPU copies');
    assert.deepEqual([humanCount(9999n), humanCount(10_000n), humanCount(2_500_000_000n)], ['9999', '10k', '2.5G']);
    assert.deepEqual([humanAge(999_000_000n), humanAge(61_000_000_000n), humanAge(7_300_000_000_000n)], ['999ms', '1m01s', '2h01m']);
  });
});
