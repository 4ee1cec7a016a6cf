// test-unit: needs no root and no kernel (make test-unit).
// Packet events (frames bae sent, handed to the agent by `bae inject` and `bae reconstruct`): the
// agent takes a well-formed one and refuses anything else naming the field; reconstruct groups
// its frames by conversation, policy, reason and port, and folds what is past the bound.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_PACKET_EVENTS, checkPacketEvent, type PacketEvent } from '../../src/agent';
import { reconstructedEvents } from '../../src/cli/reconstruct';
import type { PacketRecord } from '../../src/reconstruct';

const GOOD: PacketEvent = { kind: 'injected', time: '2026-12-07T03:58:44.173Z', by: 'bae inject', reason: 'tcp-rst', policy: null, src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, proto: 'tcp', port: 'eth1', frames: 1 };

/** An Ethernet + IPv4 frame from `src` to `dst` (enough of it for the addresses). */
function frame(src: string, dst: string): Buffer {
  const b = Buffer.alloc(60);
  b.writeUInt16BE(0x0800, 12);
  b[14] = 0x45;
  Buffer.from(src.split('.').map(Number)).copy(b, 26);
  Buffer.from(dst.split('.').map(Number)).copy(b, 30);
  return b;
}
const record = (src: string, dst: string, policy: string, reason: string, ifindex = 7): PacketRecord => ({ tsNs: 1n, ifindex, kind: 'reconstructed', policy, action: 'reconstruct', reason, origLen: 60, data: frame(src, dst) });

describe('packet events', () => {
  it('a well-formed event is taken as it is', () => {
    assert.deepEqual(checkPacketEvent(GOOD), GOOD);
    assert.deepEqual(checkPacketEvent({ ...GOOD, kind: 'reconstructed', policy: 'lossy', sport: null, dport: null, proto: null, port: null, src: '', dst: '' }), { ...GOOD, kind: 'reconstructed', policy: 'lossy', sport: null, dport: null, proto: null, port: null, src: '', dst: '' });
  });

  it('a bad field is named', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ kind: 'dropped' }, /^event\.kind: expected one of injected, reconstructed$/],
      [{ time: 'yesterday' }, /^event\.time: expected an ISO time$/],
      [{ by: '' }, /^event\.by: expected a non-empty string/],
      [{ reason: 'x'.repeat(300) }, /^event\.reason: expected a non-empty string of at most 256 characters$/],
      [{ policy: 3 }, /^event\.policy: .* or null$/],
      [{ sport: 70000 }, /^event\.sport: expected a port \(0-65535\) or null$/],
      [{ dport: 1.5 }, /^event\.dport: expected a port/],
      [{ proto: 'sctp' }, /^event\.proto: expected tcp, udp, icmp or null$/],
      [{ frames: -1 }, /^event\.frames: expected a whole number$/],
      [{ secret: 1 }, /^event\.secret: not a field of a packet event/],
    ];
    for (const [patch, re] of bad) assert.match(String(checkPacketEvent({ ...GOOD, ...patch })), re, JSON.stringify(patch));
    assert.equal(checkPacketEvent(null), 'event: expected an object');
    assert.equal(checkPacketEvent([GOOD]), 'event: expected an object');
  });

  it('bae reconstruct: one event per conversation, policy, reason and port, frames counted, in first-frame order', () => {
    const now = new Date('2026-12-07T04:00:00Z');
    const sent = [record('10.0.0.1', '10.0.0.2', 'lossy', 'seeded loss'), record('10.0.0.3', '10.0.0.2', 'lossy', 'seeded loss'), record('10.0.0.1', '10.0.0.2', 'lossy', 'seeded loss'), record('10.0.0.1', '10.0.0.2', 'lossy', 'seeded loss', 8)];
    const events = reconstructedEvents(sent, (i) => (i === 7 ? 'to-server' : null), now);
    assert.deepEqual(
      events.map((e) => [e.src, e.dst, e.port, e.frames, e.reason, e.policy]),
      [['10.0.0.1', '10.0.0.2', 'to-server', 2, 'seeded loss', 'lossy'], ['10.0.0.3', '10.0.0.2', 'to-server', 1, 'seeded loss', 'lossy'], ['10.0.0.1', '10.0.0.2', null, 1, 'seeded loss', 'lossy']],
    );
    for (const e of events) assert.deepEqual(checkPacketEvent(e), e, 'every event passes the agent\'s check');
    assert.equal(events[0]!.time, now.toISOString());
  });

  it(`bae reconstruct: past ${MAX_PACKET_EVENTS} groups the rest is one event, reason 'mixed', no addresses`, () => {
    const sent = Array.from({ length: 250 }, (_, i) => record(`10.1.${i >> 8}.${i & 255}`, '10.0.0.2', 'p', 'r'));
    const events = reconstructedEvents(sent, () => 'eth1');
    assert.equal(events.length, MAX_PACKET_EVENTS);
    const rest = events[events.length - 1]!;
    assert.deepEqual([rest.reason, rest.src, rest.dst, rest.frames], ['mixed', '', '', 250 - (MAX_PACKET_EVENTS - 1)]);
    assert.equal(events.reduce((n, e) => n + e.frames, 0), 250, 'every frame counted once');
  });
});
