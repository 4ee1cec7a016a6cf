// test-unit: needs no root and no kernel (make test-unit).
//
// The golden bytes of every forged kind: each frame is rebuilt by the tests' own packet builder
// (test/lib/packets.ts, its own checksum code) from the fields the kind claims, and must equal
// the forged frame byte for byte, but for the flaw the kind names (checked on its own).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DirectionProfile } from '../../src/profiles';
import { FORGE_KINDS, drawFrameSize, forgeKind, forgeRng, wrongChecksum, type ForgeContext } from '../../src/reconstruct';
import { IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG, buildPacket, internetChecksum, mac } from '../lib/packets';

const SRC = '10.0.0.1';
const DST = '10.0.0.2';
const SPORT = 40000;
const DPORT = 80;
const SEQ = 0xfffffff0; // wraps within a segment: sequence arithmetic is modular
const ACK = 2000;
const WINDOW = 512;
const FRAME = 100; // bytes on the wire the profile "draws"
const IP_ID = 0x1234;

function context(proto: 'tcp' | 'udp' = 'tcp'): ForgeContext {
  return {
    ep: { srcMac: mac('02:00:00:00:00:01'), dstMac: mac('02:00:00:00:00:02'), src: SRC, dst: DST, sport: SPORT, dport: DPORT, ttl: 64 },
    proto,
    tcp: proto === 'tcp' ? { seq: SEQ, ack: ACK, window: WINDOW } : undefined,
    frameSize: () => FRAME,
    ipId: IP_ID,
  };
}

function forge(name: string, seed = 7, proto: 'tcp' | 'udp' = 'tcp'): { frames: Buffer[]; ctx: ForgeContext } {
  const kind = forgeKind(name);
  assert.ok(kind, `kind ${name}`);
  const ctx = context(proto);
  return { frames: kind.forge(ctx, forgeRng(seed)), ctx };
}

const ip = (extra: Record<string, unknown> = {}) => ({ version: 4 as const, src: SRC, dst: DST, id: IP_ID, dontFragment: true, ...extra });
const tcp = (extra: Record<string, unknown> = {}) => ({ proto: 'tcp' as const, sport: SPORT, dport: DPORT, seq: SEQ, ack: ACK, window: WINDOW, ...extra });
const udp = (payload: Buffer) => ({ proto: 'udp' as const, sport: SPORT, dport: DPORT, payload });

/** The positions where two equally long buffers differ. */
function diff(a: Buffer, b: Buffer): number[] {
  assert.equal(a.length, b.length, 'same length');
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

/** A checksum field that verifies: the sum over the covered bytes, field included, folds to 0. */
const ipHeaderVerifies = (frame: Buffer) => internetChecksum(frame.subarray(14, 34)) === 0;
function l4Verifies(frame: Buffer, protocol: number): boolean {
  const seg = frame.subarray(34);
  const pseudo = Buffer.alloc(12);
  frame.copy(pseudo, 0, 26, 34);
  pseudo[9] = protocol;
  pseudo.writeUInt16BE(seg.length, 10);
  return internetChecksum(pseudo, seg) === 0;
}

const TCP_DATA = FRAME - 14 - 20 - 20;
const UDP_DATA = FRAME - 14 - 20 - 8;

describe('forged frames, byte for byte', () => {
  it('tcp-in-window is a valid data segment at the next expected byte, and moves the sender on', () => {
    const { frames, ctx } = forge('tcp-in-window');
    const payload = frames[0]!.subarray(54);
    assert.equal(payload.length, TCP_DATA);
    assert.match(payload.toString('latin1'), /^[a-z]+$/);
    assert.deepEqual(frames[0], buildPacket({ ip: ip(), l4: tcp({ flags: TCP_ACK | TCP_PSH, payload }) }).frame);
    assert.equal(ctx.tcp!.seq, (SEQ + TCP_DATA) >>> 0);
    assert.ok(ipHeaderVerifies(frames[0]!) && l4Verifies(frames[0]!, IPPROTO_TCP));
  });

  it('udp-datagram is a valid datagram of the size drawn', () => {
    const { frames } = forge('udp-datagram', 7, 'udp');
    const payload = frames[0]!.subarray(42);
    assert.equal(payload.length, UDP_DATA);
    assert.deepEqual(frames[0], buildPacket({ ip: ip(), l4: udp(payload) }).frame);
  });

  it('ip-bad-checksum differs from the valid frame in the IP checksum only, which does not verify', () => {
    const f = forge('ip-bad-checksum').frames[0]!;
    const ref = buildPacket({ ip: ip(), l4: tcp({ flags: TCP_ACK | TCP_PSH, payload: f.subarray(54) }) }).frame;
    assert.ok(diff(f, ref).every((i) => i === 24 || i === 25) && diff(f, ref).length > 0);
    assert.equal(ipHeaderVerifies(f), false);
    assert.equal(l4Verifies(f, IPPROTO_TCP), true);
  });

  it('tcp-bad-checksum differs in the TCP checksum only, which does not verify', () => {
    const f = forge('tcp-bad-checksum').frames[0]!;
    const ref = buildPacket({ ip: ip(), l4: tcp({ flags: TCP_ACK | TCP_PSH, payload: f.subarray(54) }) }).frame;
    assert.ok(diff(f, ref).every((i) => i === 50 || i === 51) && diff(f, ref).length > 0);
    assert.equal(ipHeaderVerifies(f), true);
    assert.equal(l4Verifies(f, IPPROTO_TCP), false);
  });

  it('udp-bad-checksum differs in the UDP checksum only, which does not verify and is not 0', () => {
    const f = forge('udp-bad-checksum', 7, 'udp').frames[0]!;
    const ref = buildPacket({ ip: ip(), l4: udp(f.subarray(42)) }).frame;
    assert.ok(diff(f, ref).every((i) => i === 40 || i === 41) && diff(f, ref).length > 0);
    assert.notEqual(f.readUInt16BE(40), 0);
    assert.equal(l4Verifies(f, IPPROTO_UDP), false);
  });

  it('eth-truncated is an Ethernet header announcing IPv4 and nothing after it', () => {
    const f = forge('eth-truncated').frames[0]!;
    assert.deepEqual(f, buildPacket({ ip: ip(), l4: tcp() }).frame.subarray(0, 14));
  });

  it('ip-truncated ends inside a valid IPv4 header', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const f = forge('ip-truncated', seed).frames[0]!;
      assert.ok(f.length > 14 && f.length < 34, `length ${f.length}`);
      const ref = buildPacket({ ip: ip(), l4: tcp({ flags: TCP_ACK | TCP_PSH, payload: Buffer.alloc(TCP_DATA) }) }).frame;
      assert.deepEqual(f, ref.subarray(0, f.length));
    }
  });

  it('tcp-truncated and udp-truncated end inside their header, and the IP length says so', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const t = forge('tcp-truncated', seed).frames[0]!;
      const k = t.length - 34;
      assert.ok(k >= 1 && k <= 19, `kept ${k}`);
      const fullTcp = buildPacket({ ip: ip(), l4: tcp() }).frame.subarray(34);
      assert.deepEqual(t, buildPacket({ ip: ip(), l4: { proto: IPPROTO_TCP, payload: fullTcp.subarray(0, k) } }).frame);
      const u = forge('udp-truncated', seed, 'udp').frames[0]!;
      const ku = u.length - 34;
      assert.ok(ku >= 1 && ku <= 7, `kept ${ku}`);
      assert.equal(u.readUInt16BE(16), 20 + ku);
      const udpHead = Buffer.alloc(6);
      udpHead.writeUInt16BE(SPORT, 0);
      udpHead.writeUInt16BE(DPORT, 2);
      udpHead.writeUInt16BE(8 + UDP_DATA, 4); // the length of the datagram it was cut from
      assert.deepEqual(u.subarray(34, 34 + Math.min(ku, 6)), udpHead.subarray(0, Math.min(ku, 6)));
      assert.ok(ipHeaderVerifies(u) && ipHeaderVerifies(t));
    }
  });

  for (const [name, flags] of [['tcp-syn-fin', TCP_SYN | TCP_FIN], ['tcp-null', 0], ['tcp-xmas', TCP_FIN | TCP_PSH | TCP_URG]] as const) {
    it(`${name} carries flags 0x${flags.toString(16).padStart(2, '0')} in window, otherwise valid`, () => {
      const f = forge(name).frames[0]!;
      assert.deepEqual(f, buildPacket({ ip: ip(), l4: tcp({ flags, ack: 0 }) }).frame);
    });
  }

  it('ip-bad-ihl has a header length field below 5, the rest as built', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 30; seed++) {
      const f = forge('ip-bad-ihl', seed).frames[0]!;
      const ihl = f[14]! & 0x0f;
      seen.add(ihl);
      assert.ok(ihl < 5);
      assert.deepEqual(f, buildPacket({ ip: ip({ ihl }), l4: tcp({ flags: TCP_ACK | TCP_PSH, payload: f.subarray(54) }) }).frame);
    }
    assert.ok(seen.size >= 3, `seeds give several lengths: ${[...seen]}`);
  });

  it('ip-bad-total-length claims more bytes than the frame carries', () => {
    const f = forge('ip-bad-total-length').frames[0]!;
    const total = f.readUInt16BE(16);
    assert.ok(total > f.length - 14 && total <= f.length - 14 + 1000, `total length ${total}, frame ${f.length}`);
    assert.deepEqual(f, buildPacket({ ip: ip({ totalLength: total }), l4: tcp({ flags: TCP_ACK | TCP_PSH, payload: f.subarray(54) }) }).frame);
  });

  it('ip-tiny-fragment is a first fragment of 8 bytes: ports and sequence number only', () => {
    const f = forge('ip-tiny-fragment').frames[0]!;
    const first8 = Buffer.alloc(8);
    first8.writeUInt16BE(SPORT, 0);
    first8.writeUInt16BE(DPORT, 2);
    first8.writeUInt32BE(SEQ, 4);
    assert.deepEqual(f, buildPacket({ ip: { version: 4, src: SRC, dst: DST, id: IP_ID, moreFragments: true, fragOffset: 0 }, l4: { proto: IPPROTO_TCP, payload: first8 } }).frame);
  });

  it('ip-overlapping-fragments are two fragments of one datagram whose overlap disagrees', () => {
    const [a, b] = forge('ip-overlapping-fragments').frames as [Buffer, Buffer];
    const fragIp = (fragOffset: number, moreFragments: boolean) => ({ version: 4 as const, src: SRC, dst: DST, id: IP_ID, fragOffset, moreFragments });
    assert.deepEqual(a, buildPacket({ ip: fragIp(0, true), l4: { proto: IPPROTO_TCP, payload: a.subarray(34) } }).frame);
    assert.deepEqual(b, buildPacket({ ip: fragIp(1, false), l4: { proto: IPPROTO_TCP, payload: b.subarray(34) } }).frame);
    assert.equal(a.length - 34, 16);
    // Bytes 8..15 of the datagram are in both, different in every byte.
    for (let i = 0; i < 8; i++) assert.notEqual(a[34 + 8 + i], b[34 + i]);
    // The first fragment starts a real TCP header of the flow.
    assert.equal(a.readUInt16BE(34), SPORT);
    assert.equal(a.readUInt32BE(38), SEQ);
  });

  it('tcp-bad-options carries an MSS option of length 1', () => {
    const f = forge('tcp-bad-options').frames[0]!;
    assert.deepEqual(f, buildPacket({ ip: ip(), l4: tcp({ flags: TCP_ACK, options: Buffer.from([2, 1, 1, 1]) }) }).frame);
  });

  it('tcp-out-of-window lands 2^30 to 2^30 + 2^20 beyond the next expected byte', () => {
    const f = forge('tcp-out-of-window').frames[0]!;
    const ahead = (f.readUInt32BE(38) - SEQ) >>> 0;
    assert.ok(ahead >= 2 ** 30 && ahead <= 2 ** 30 + 2 ** 20, `ahead by ${ahead}`);
    assert.deepEqual(f, buildPacket({ ip: ip(), l4: tcp({ seq: f.readUInt32BE(38), flags: TCP_ACK | TCP_PSH, payload: f.subarray(54) }) }).frame);
  });

  it('tcp-rst is RST+ACK at exactly the next expected byte', () => {
    assert.deepEqual(forge('tcp-rst').frames[0], buildPacket({ ip: ip(), l4: tcp({ flags: TCP_RST | TCP_ACK }) }).frame);
  });

  it('tcp-dup-ack-storm is one pure ACK, repeated', () => {
    const kind = forgeKind('tcp-dup-ack-storm')!;
    assert.equal(kind.repeats, true);
    assert.deepEqual(forge('tcp-dup-ack-storm').frames[0], buildPacket({ ip: ip(), l4: tcp({ flags: TCP_ACK }) }).frame);
  });
});

describe('forged frames over IPv6, byte for byte', () => {
  const SRC6 = 'fd00:bae::1';
  const DST6 = 'fd00:bae::2';
  function forge6(name: string, seed = 7, proto: 'tcp' | 'udp' = 'tcp'): Buffer[] {
    const ctx = context(proto);
    ctx.ep = { ...ctx.ep, src: SRC6, dst: DST6 };
    return forgeKind(name)!.forge(ctx, forgeRng(seed));
  }
  const ip6 = { version: 6 as const, src: SRC6, dst: DST6 };
  const TCP6_DATA = FRAME - 14 - 40 - 20;
  /** The upper layer's checksum verifies over the IPv6 pseudo-header (RFC 8200 8.1). */
  function l4Verifies6(frame: Buffer, protocol: number): boolean {
    const seg = frame.subarray(54);
    const pseudo = Buffer.alloc(40);
    frame.copy(pseudo, 0, 22, 54);
    pseudo.writeUInt32BE(seg.length, 32);
    pseudo[39] = protocol;
    return internetChecksum(pseudo, seg) === 0;
  }

  it('tcp-in-window and udp-datagram are valid, sized for the 40-byte header', () => {
    const t = forge6('tcp-in-window')[0]!;
    assert.equal(t.length - 74, TCP6_DATA);
    assert.deepEqual(t, buildPacket({ ip: ip6, l4: tcp({ flags: TCP_ACK | TCP_PSH, payload: t.subarray(74) }) }).frame);
    assert.ok(l4Verifies6(t, IPPROTO_TCP));
    const u = forge6('udp-datagram', 7, 'udp')[0]!;
    assert.deepEqual(u, buildPacket({ ip: ip6, l4: udp(u.subarray(62)) }).frame);
  });

  it('tcp-bad-checksum and udp-bad-checksum differ in the checksum only, which does not verify', () => {
    const t = forge6('tcp-bad-checksum')[0]!;
    const tref = buildPacket({ ip: ip6, l4: tcp({ flags: TCP_ACK | TCP_PSH, payload: t.subarray(74) }) }).frame;
    assert.ok(diff(t, tref).length > 0 && diff(t, tref).every((i) => i === 70 || i === 71));
    assert.equal(l4Verifies6(t, IPPROTO_TCP), false);
    const u = forge6('udp-bad-checksum', 7, 'udp')[0]!;
    const uref = buildPacket({ ip: ip6, l4: udp(u.subarray(62)) }).frame;
    assert.ok(diff(u, uref).length > 0 && diff(u, uref).every((i) => i === 60 || i === 61));
    assert.equal(l4Verifies6(u, IPPROTO_UDP), false);
  });

  it('flags, RST, bad options and the storm are the IPv4 segments over an IPv6 header', () => {
    assert.deepEqual(forge6('tcp-rst')[0], buildPacket({ ip: ip6, l4: tcp({ flags: TCP_RST | TCP_ACK }) }).frame);
    assert.deepEqual(forge6('tcp-xmas')[0], buildPacket({ ip: ip6, l4: tcp({ flags: TCP_FIN | TCP_PSH | TCP_URG, ack: 0 }) }).frame);
    assert.deepEqual(forge6('tcp-bad-options')[0], buildPacket({ ip: ip6, l4: tcp({ flags: TCP_ACK, options: Buffer.from([2, 1, 1, 1]) }) }).frame);
    assert.deepEqual(forge6('tcp-dup-ack-storm')[0], buildPacket({ ip: ip6, l4: tcp({ flags: TCP_ACK }) }).frame);
  });

  it('truncations cut the IPv6 header, or the TCP header with the payload length saying so', () => {
    assert.deepEqual(forge6('eth-truncated')[0], buildPacket({ ip: ip6, l4: tcp() }).frame.subarray(0, 14));
    for (let seed = 1; seed <= 20; seed++) {
      const f = forge6('ip-truncated', seed)[0]!;
      assert.ok(f.length > 14 && f.length < 54, `length ${f.length}`);
      const ref = buildPacket({ ip: ip6, l4: tcp({ flags: TCP_ACK | TCP_PSH, payload: Buffer.alloc(TCP6_DATA) }) }).frame;
      assert.deepEqual(f, ref.subarray(0, f.length));
      const t = forge6('tcp-truncated', seed)[0]!;
      const k = t.length - 54;
      const fullTcp = buildPacket({ ip: ip6, l4: tcp() }).frame.subarray(54);
      assert.deepEqual(t, buildPacket({ ip: ip6, l4: { proto: IPPROTO_TCP, payload: fullTcp.subarray(0, k) } }).frame);
    }
  });

  it('the IPv4 header flaws are marked IPv4-only; the rest are not', () => {
    assert.deepEqual(
      FORGE_KINDS.filter((k) => k.ipv4Only).map((k) => k.name),
      ['ip-bad-checksum', 'ip-bad-ihl', 'ip-bad-total-length', 'ip-tiny-fragment', 'ip-overlapping-fragments'],
    );
  });
});

describe('the catalogue', () => {
  it('every kind has a unique name, a one-line summary, and a golden test above', () => {
    const names = FORGE_KINDS.map((k) => k.name);
    assert.equal(new Set(names).size, names.length);
    for (const k of FORGE_KINDS) assert.ok(k.summary.length > 10 && !k.summary.includes('\n'), k.name);
    assert.equal(names.length, 20);
  });

  it('the same seed forges the same frames; kinds with random parts change with the seed', () => {
    for (const k of FORGE_KINDS) {
      const proto = k.needs === 'udp' ? 'udp' : 'tcp';
      const once = forge(k.name, 42, proto).frames;
      assert.deepEqual(forge(k.name, 42, proto).frames, once, k.name);
      const random = ['tcp-in-window', 'udp-datagram', 'ip-bad-checksum', 'tcp-bad-checksum', 'udp-bad-checksum', 'ip-bad-total-length', 'tcp-out-of-window'];
      if (random.includes(k.name)) assert.notDeepEqual(forge(k.name, 43, proto).frames, once, k.name);
    }
  });

  it('a wrong checksum never verifies, for any correct one, also the zeros', () => {
    const r = forgeRng(1);
    for (const correct of [0, 0xffff, 1, 0x8000, 0xfffe, ...Array.from({ length: 200 }, () => r.u32() & 0xffff)]) {
      for (const udpSum of [false, true]) {
        const bad = wrongChecksum(correct, () => r.int(1, 0xfffe), udpSum);
        assert.notEqual(bad, correct);
        if (correct === 0 || correct === 0xffff) assert.ok(bad !== 0 && bad !== 0xffff);
        if (udpSum) assert.notEqual(bad, 0);
      }
    }
  });
});

describe('sizes drawn from a profile', () => {
  const dir = (hist: number[], min: number, max: number): DirectionProfile =>
    ({ packets: BigInt(hist.reduce((a, b) => a + b, 0)), sizeHist: hist.map(BigInt), sizeMin: min, sizeMax: max }) as unknown as DirectionProfile;

  it('stay within the bucket drawn and the direction\'s min and max', () => {
    const r = forgeRng(3);
    for (let i = 0; i < 500; i++) {
      const n = drawFrameSize(dir([0, 0, 10, 0, 0, 0, 0, 0], 130, 200), r);
      assert.ok(n >= 130 && n <= 200, `${n}`);
    }
  });

  it('follow the histogram\'s weights', () => {
    const r = forgeRng(4);
    let small = 0;
    const N = 2000;
    for (let i = 0; i < N; i++) if (drawFrameSize(dir([0, 90, 0, 0, 0, 10, 0, 0], 64, 2000), r) < 128) small++;
    // 90% expected; a binomial with n = 2000 has a standard deviation of 0.67%: 5% is far outside.
    assert.ok(Math.abs(small / N - 0.9) < 0.05, `${small} of ${N}`);
  });
});
