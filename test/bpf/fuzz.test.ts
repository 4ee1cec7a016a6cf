// Garbage in: random frames and valid frames with random bytes changed. Whatever the bytes, the
// program passes the frame and counts exactly one parse outcome and one verdict for it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, TCP_ACK, buildPacket, type PacketSpec } from '../lib/packets';
import { rng } from '../lib/rng';
import { Bae, statsDelta } from './harness';

const templates: PacketSpec[] = [
  { eth: { vlans: [{ vid: 3 }] }, ip: { version: 4, src: '10.20.0.1', dst: '10.20.0.2', options: Buffer.alloc(8, 1) }, l4: { proto: 'tcp', sport: 1, dport: 2, flags: TCP_ACK, payload: Buffer.alloc(20) } },
  { ip: { version: 6, src: 'fd20::1', dst: 'fd20::2', extensions: [{ type: 'hop-by-hop' }, { type: 'fragment' }, { type: 'ah' }] }, l4: { proto: 'udp', sport: 1, dport: 2, payload: Buffer.alloc(20) } },
  { ip: { version: 6, src: 'fd20::1', dst: 'fd20::2' }, l4: { proto: 'icmpv6', payload: Buffer.alloc(8) } },
];

describe('random and mangled frames', () => {
  let bae: Bae;
  before(() => {
    bae = new Bae();
  });
  after(() => bae?.close());

  const runOne = (frame: Buffer, what: string) => {
    const before = bae.stats();
    const verdict = bae.run(frame);
    const delta = statsDelta(before, bae.stats());
    assert.equal(verdict, 2, `${what}: XDP_PASS`);
    const parsed = Object.entries(delta).filter(([k]) => k.startsWith('parse.'));
    assert.equal(parsed.length, 1, `${what}: one parse outcome, got ${JSON.stringify(delta)}`);
    assert.equal(parsed[0]![1], 1, `${what}: counted once`);
    assert.equal(delta['verdict.pass'], 1, `${what}: one verdict`);
  };

  test('1000 random frames of 14 to 300 bytes, ethertypes biased towards IP and VLAN, all pass', () => {
    const seed = 20261121;
    const rand = rng(seed);
    const types = [ETH_P_IP, ETH_P_IPV6, ETH_P_8021Q, 0x88a8, 0x0806];
    for (let i = 0; i < 1000; i++) {
      const frame = Buffer.alloc(14 + Math.floor(rand() * 287));
      for (let j = 0; j < frame.length; j++) frame[j] = Math.floor(rand() * 256);
      if (rand() < 0.8) frame.writeUInt16BE(types[Math.floor(rand() * types.length)]!, 12);
      // Often a plausible version nibble, so the walk goes deeper than the IP header.
      if (rand() < 0.6 && frame.length > 14) frame[14] = rand() < 0.5 ? 0x40 | Math.floor(rand() * 16) : 0x60;
      runOne(frame, `seed ${seed}, frame ${i}`);
    }
  });

  test('valid frames with up to four random bytes changed in their headers, all pass', () => {
    const seed = 42;
    const rand = rng(seed);
    for (let i = 0; i < 1500; i++) {
      const frame = Buffer.from(buildPacket(templates[i % templates.length]!).frame);
      const headerEnd = Math.min(frame.length, 110);
      for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) frame[Math.floor(rand() * headerEnd)] = Math.floor(rand() * 256);
      const cut = rand() < 0.3 ? 14 + Math.floor(rand() * (frame.length - 14)) : frame.length;
      runOne(frame.subarray(0, cut), `seed ${seed}, frame ${i}`);
    }
  });
});
