// TCP sequence analysis: crafted segment sequences with repeats, gaps, overlaps, wrap-around and
// zero windows give exactly the retransmission, out-of-order and zero-window counts that the
// rules of docs/profiles.md predict, segment by segment.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, buildPacket } from '../lib/packets';
import { Bae, Golden } from './harness';

interface Seg {
  from: 'client' | 'server';
  flags: number;
  seq: number;
  ack?: number;
  len?: number;
  window?: number;
  /** Ethernet padding after the IP packet (must not count as sequence space). */
  pad?: number;
  retransmit?: boolean;
  outOfOrder?: boolean;
  zeroWindow?: boolean;
  why: string;
}

describe('TCP sequence analysis', () => {
  let bae: Bae;
  let golden: Golden;
  before(() => {
    bae = new Bae();
    golden = new Golden(bae);
  });
  after(() => bae?.close());

  function play(client: string, server: string, cport: number, sport: number, segs: Seg[]): void {
    for (const [i, s] of segs.entries()) {
      const [src, dst, p1, p2] = s.from === 'client' ? [client, server, cport, sport] : [server, client, sport, cport];
      const frame = buildPacket({
        ip: client.includes(':') ? { version: 6, src, dst, hopLimit: 50 } : { version: 4, src, dst, ttl: 50 },
        l4: { proto: 'tcp', sport: p1, dport: p2, flags: s.flags, seq: s.seq, ack: s.ack ?? 0, window: s.window ?? 502, payload: Buffer.alloc(s.len ?? 0, 0x42) },
      }).frame;
      golden.send(
        Buffer.concat([frame, Buffer.alloc(s.pad ?? 0)]),
        {
          outcome: 'tcp',
          ip: { src, dst, ttl: 50 },
          tcp: { flags: s.flags, retransmit: s.retransmit ?? false, outOfOrder: s.outOfOrder ?? false, zeroWindow: s.zeroWindow ?? false },
        },
        `segment ${i + 1} (${s.why})`,
      );
    }
  }

  test('repeats count as retransmissions, gaps as out-of-order, window 0 as zero-window', () => {
    const c = '10.8.0.1';
    const s = '10.8.0.2';
    const A = TCP_ACK;
    const PA = TCP_PSH | TCP_ACK;
    play(c, s, 40000, 80, [
      { from: 'client', flags: TCP_SYN, seq: 1000, why: 'SYN: first segment of the direction sets the baseline' },
      { from: 'client', flags: TCP_SYN, seq: 1000, retransmit: true, why: 'the same SYN again' },
      { from: 'server', flags: TCP_SYN | A, seq: 5000, ack: 1001, window: 0, why: 'SYN-ACK with window 0 is no zero-window' },
      { from: 'client', flags: A, seq: 1001, ack: 5001, pad: 6, why: 'pure ACK padded to 60 bytes: no data' },
      { from: 'client', flags: A, seq: 1001, ack: 5001, why: 'duplicate pure ACK: no data, no retransmission' },
      { from: 'client', flags: PA, seq: 1001, len: 100, why: 'in order' },
      { from: 'client', flags: PA, seq: 1101, len: 100, why: 'in order' },
      { from: 'client', flags: PA, seq: 1101, len: 100, retransmit: true, why: 'repeat of 1101-1201' },
      { from: 'client', flags: PA, seq: 1301, len: 100, outOfOrder: true, why: 'gap 1201-1301' },
      { from: 'client', flags: PA, seq: 1201, len: 100, retransmit: true, why: 'the gap filled: ends below the highest end' },
      { from: 'client', flags: PA, seq: 1351, len: 100, why: 'overlaps and extends: neither' },
      { from: 'client', flags: A, seq: 1450, len: 0, why: 'keep-alive below the next seq: no data' },
      { from: 'client', flags: PA, seq: 1600, len: 50, outOfOrder: true, why: 'gap 1451-1600' },
      { from: 'client', flags: PA, seq: 1600, len: 50, retransmit: true, why: 'repeat' },
      { from: 'client', flags: PA, seq: 1620, len: 10, retransmit: true, why: 'inside what was seen' },
      { from: 'server', flags: A, seq: 5001, ack: 1650, window: 0, zeroWindow: true, why: 'window 0' },
      { from: 'server', flags: A, seq: 5001, ack: 1650, window: 0, zeroWindow: true, why: 'window 0 again' },
      { from: 'server', flags: PA, seq: 5001, len: 20, window: 0, zeroWindow: true, why: 'data with window 0' },
      { from: 'client', flags: TCP_FIN | A, seq: 1650, why: 'FIN takes one sequence number' },
      { from: 'client', flags: TCP_FIN | A, seq: 1650, retransmit: true, why: 'FIN again' },
      { from: 'server', flags: TCP_FIN | A, seq: 5021, window: 0, why: 'FIN with window 0 is no zero-window' },
      { from: 'server', flags: TCP_RST, seq: 5022, window: 0, why: 'RST with window 0 is no zero-window' },
    ]);
    const { conv, dir } = bae.conv(c, s);
    assert.ok(conv);
    const cl = conv.dir[dir];
    const sv = conv.dir[1 - dir]!;
    assert.deepEqual([cl.retransmits, cl.outOfOrder, cl.zeroWindow], [6n, 2n, 0n], 'client: retransmits, out-of-order, zero-window');
    assert.deepEqual([sv.retransmits, sv.outOfOrder, sv.zeroWindow], [0n, 0n, 3n], 'server: retransmits, out-of-order, zero-window');
    assert.deepEqual(bae.tcpHalf(c, 40000, s, 80), { seqHigh: 1651, ack: 0, window: 502, seen: true });
    assert.deepEqual(bae.tcpHalf(s, 80, c, 40000), { seqHigh: 5022, ack: 0, window: 0, seen: true });
  });

  test('sequence numbers compare across the 2^32 wrap', () => {
    const c = 'fd20::1';
    const s = 'fd20::2';
    play(c, s, 1234, 443, [
      { from: 'client', flags: TCP_SYN, seq: 0xfffffff0, why: 'ISN 16 below the wrap' },
      { from: 'client', flags: TCP_ACK, seq: 0xfffffff1, len: 100, why: 'data across the wrap, in order' },
      { from: 'client', flags: TCP_ACK, seq: 0xfffffff1, len: 100, retransmit: true, why: 'repeat across the wrap' },
      { from: 'client', flags: TCP_ACK, seq: 0x55, len: 10, why: 'right after the wrap, in order' },
      { from: 'client', flags: TCP_ACK, seq: 0x100, len: 10, outOfOrder: true, why: 'gap after the wrap' },
      { from: 'client', flags: TCP_ACK, seq: 0xffffff00, len: 10, retransmit: true, why: 'old data before the wrap' },
    ]);
    assert.equal(bae.tcpHalf(c, 1234, s, 443)?.seqHigh, 0x10a);
  });

  test('a SYN with a new ISN on the same ports starts the direction over', () => {
    const c = '10.8.1.1';
    const s = '10.8.1.2';
    play(c, s, 50000, 22, [
      { from: 'client', flags: TCP_SYN, seq: 10, why: 'first connection' },
      { from: 'client', flags: TCP_ACK, seq: 11, len: 1000, why: 'in order' },
      { from: 'client', flags: TCP_SYN, seq: 9, why: 'new connection, ISN below the old data: not a retransmission' },
      { from: 'client', flags: TCP_ACK, seq: 10, len: 5, why: 'in order in the new connection' },
      { from: 'client', flags: TCP_ACK, seq: 10, len: 5, retransmit: true, why: 'repeat in the new connection' },
    ]);
  });

  test('the first segment with data seen in a direction is the baseline, whatever its seq', () => {
    const c = '10.8.2.1';
    const s = '10.8.2.2';
    play(c, s, 1, 2, [
      { from: 'server', flags: TCP_ACK, seq: 777, len: 10, why: 'mid-stream start: baseline' },
      { from: 'server', flags: TCP_ACK, seq: 700, len: 10, retransmit: true, why: 'before the baseline' },
      { from: 'client', flags: TCP_ACK, seq: 1, len: 0, window: 0, zeroWindow: true, why: 'first client segment, window 0' },
      { from: 'client', flags: TCP_ACK, seq: 50, len: 10, why: 'a pure ACK sets no baseline: this one does' },
      { from: 'client', flags: TCP_ACK, seq: 60, len: 10, why: 'in order after it' },
    ]);
  });
});
