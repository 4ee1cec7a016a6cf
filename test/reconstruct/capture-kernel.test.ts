// The capture action in the kernel (BPF_PROG_TEST_RUN, test clock, fixed seeds): golden frames
// through bae with a capture policy, the records read back from the bae_capture ring.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CAPTURE, CAPTURE_MAPS, decodeCaptureRecord, RingBuffer } from '../../src/datapath';
import { XDP } from '../../src/datapath/layout';
import { captureSeed, fractionToProb, nextRandom, type EmulState } from '../../src/policy/actions-model';
import type { Policy } from '../../src/policy/model';
import { readPolicyStats } from '../../src/policy/state';
import { packetRecordOf } from '../../src/reconstruct/capture';
import type { PacketRecord } from '../../src/reconstruct/packet-record';
import { buildPacket } from '../lib/packets';
import { PolicyBae, policies, policyYaml } from '../policy/helpers';

/** A UDP frame from `src` whose payload starts with its sequence number, `payload` bytes long. */
function udpFrame(seq: number, payload = 200, src = '10.0.0.1'): Buffer {
  const body = Buffer.alloc(payload, 0);
  for (let i = 0; i < payload; i++) body[i] = (i * 31 + seq) & 0xff;
  body.writeUInt32BE(seq, 0);
  return buildPacket({ ip: { version: 4, src, dst: '10.0.0.2' }, l4: { proto: 'udp', sport: 5000, dport: 9000, payload: body } }).frame;
}

/** The sequence number of a frame built by udpFrame (Ethernet 14 + IPv4 20 + UDP 8). */
const seqOf = (data: Buffer): number => data.readUInt32BE(42);

describe('the capture action in the kernel', () => {
  let bae: PolicyBae;
  let ring: RingBuffer;
  let got: PacketRecord[] = [];
  let names = new Map<number, string>();
  let now = 1_000_000_000n;
  const clock = { offsetNs: 0n };

  before(() => {
    bae = new PolicyBae();
    ring = new RingBuffer(bae.collection.map(CAPTURE_MAPS.ring), (buf) => {
      got.push(packetRecordOf(decodeCaptureRecord(buf), names, clock));
    });
  });
  after(() => {
    ring?.close();
    bae?.close();
  });
  beforeEach(() => {
    ring.consume();
    got = [];
  });

  const apply = async (name: string, spec: string): Promise<Policy[]> => {
    const ps = policies(policyYaml(name, spec));
    await bae.apply(ps);
    names = new Map(ps.map((p) => [p.id, p.name]));
    return ps;
  };
  const run = (frame: Buffer): number => {
    now += 1_000_000n;
    bae.setClock(now);
    return bae.program.test(frame).verdict;
  };
  const drain = (): PacketRecord[] => {
    ring.consume();
    const out = got;
    got = [];
    return out;
  };

  it('copies the exact bytes of a matching frame, and nothing of one that does not match', async () => {
    await apply('cap-all', `match: { proto: udp, dport: 9000 }\nactions: [{ capture: { snaplen: ${CAPTURE.snaplenMax} } }]`);
    const frame = udpFrame(7, 1400);
    assert.equal(run(frame), XDP.pass, 'capture decides nothing: the frame passes');
    const other = buildPacket({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, l4: { proto: 'udp', sport: 5000, dport: 9001, payload: Buffer.alloc(50) } }).frame;
    assert.equal(run(other), XDP.pass);
    const recs = drain();
    assert.equal(recs.length, 1, 'one record: the matching frame');
    const r = recs[0]!;
    assert.deepEqual(r.data, frame, 'the bytes are the frame, byte for byte');
    assert.equal(r.origLen, frame.length);
    assert.equal(r.kind, 'captured');
    assert.equal(r.policy, 'cap-all');
    assert.equal(r.action, 'capture');
    assert.equal(r.reason, null);
    assert.equal(r.tsNs, now - 1_000_000n, 'the time is the kernel clock of the frame');
    assert.equal(r.ifindex, 1, 'BPF_PROG_TEST_RUN runs on the loopback device');
  });

  it('cuts at snaplen, and keeps the default snaplen when none is given', async () => {
    await apply('cap-snap', 'match: { proto: udp }\nactions: [{ capture: { snaplen: 64 } }]');
    const frame = udpFrame(1, 500);
    run(frame);
    let recs = drain();
    assert.equal(recs.length, 1);
    assert.deepEqual(recs[0]!.data, frame.subarray(0, 64));
    assert.equal(recs[0]!.origLen, frame.length);

    await apply('cap-default', 'match: { proto: udp }\nactions: [capture]');
    run(frame);
    recs = drain();
    assert.equal(recs.length, 1);
    assert.equal(recs[0]!.data.length, CAPTURE.snaplenDefault);
    assert.deepEqual(recs[0]!.data, frame.subarray(0, CAPTURE.snaplenDefault));

    const small = udpFrame(2, 20);
    run(small);
    recs = drain();
    assert.deepEqual(recs[0]!.data, small, 'a frame shorter than snaplen is kept whole');
  });

  it('samples 1/4 of the frames, exactly those the seeded sequence picks', async () => {
    const seed = 4242;
    const [p] = await apply('cap-sample', `seed: ${seed}\nmatch: { proto: udp }\nactions: [{ capture: { sample: 0.25, snaplen: 64 } }]`);
    assert.ok(p);
    const n = 2000;
    for (let i = 0; i < n; i++) run(udpFrame(i));
    const picked = drain().map((r) => seqOf(r.data));
    // The model: one draw per matching frame from the capture sequence of the policy's seed.
    const st: EmulState = { prng: captureSeed(BigInt(seed)), credit: 0n, lastNs: 0n, lossLast: 0, geBad: 0 };
    const p4 = fractionToProb(0.25);
    const expected: number[] = [];
    for (let i = 0; i < n; i++) if (nextRandom(st) < p4) expected.push(i);
    assert.deepEqual(picked, expected, 'the kernel picked the frames the seed predicts');
    process.stderr.write(`capture sample 0.25: ${picked.length} of ${n} frames\n`);
    assert.ok(picked.length > 400 && picked.length < 600, `about a quarter (${picked.length})`);
  });

  it('with drops: true and loss keeps exactly the lost frames, and loses the same frames as without capture', async () => {
    const n = 600;
    await apply('lossy', 'seed: 5\nmatch: { proto: udp }\nactions: [{ loss: { probability: 30 } }]');
    const plain = Array.from({ length: n }, (_, i) => run(udpFrame(i)));
    assert.equal(drain().length, 0, 'no capture action, no record');

    await apply('lossy-cap', 'seed: 5\nmatch: { proto: udp }\nactions: [{ loss: { probability: 30 } }, { capture: { drops: true, snaplen: 1536 } }]');
    const frames = Array.from({ length: n }, (_, i) => udpFrame(i, 100 + (i % 300)));
    const verdicts = frames.map((f) => run(f));
    assert.deepEqual(verdicts, plain, 'capture changes no loss decision');
    const dropped = verdicts.flatMap((v, i) => (v === XDP.drop ? [i] : []));
    assert.ok(dropped.length > 100, `the policy lost frames (${dropped.length})`);
    const recs = drain();
    assert.deepEqual(recs.map((r) => seqOf(r.data)), dropped, 'the records are the lost frames, in order, and none that passed');
    for (const r of recs) {
      assert.deepEqual(r.data, frames[seqOf(r.data)], 'byte-exact');
      assert.equal(r.kind, 'dropped');
      assert.equal(r.action, 'loss');
      assert.equal(r.reason, 'seeded loss');
      assert.equal(r.policy, 'lossy-cap');
    }
    const stats = readPolicyStats(bae.maps);
    assert.ok(stats.captured >= BigInt(recs.length));
  });

  it('with drops: true keeps what drop and block remove, not what passes', async () => {
    await apply('dropper', "match: { src: 10.9.0.0/16, proto: udp }\nactions: [drop, { capture: { drops: true } }]");
    run(udpFrame(1, 100, '10.9.0.1'));
    run(udpFrame(2, 100, '10.0.0.1'));
    run(udpFrame(3, 100, '10.9.0.7'));
    let recs = drain();
    assert.deepEqual(recs.map((r) => seqOf(r.data)), [1, 3]);
    assert.ok(recs.every((r) => r.kind === 'dropped' && r.action === 'drop'));

    await apply('blocker', "match: { src: 10.8.0.0/16, proto: udp }\nactions: [{ block: { ttl: 10s } }, { capture: { drops: true } }]");
    const first = udpFrame(10, 100, '10.8.0.1');
    assert.equal(run(first), XDP.drop);
    assert.equal(run(udpFrame(11, 100, '10.8.0.1')), XDP.drop, 'the blocklist drops the source from now on');
    assert.equal(run(udpFrame(12, 100, '10.0.0.1')), XDP.pass);
    recs = drain();
    // The blocklist is checked before any policy and names none: only the frame the policy's
    // block action removed is the policy's.
    assert.equal(recs.length, 1);
    assert.deepEqual(recs[0]!.data, first);
    assert.equal(recs[0]!.action, 'block');
    assert.equal(recs[0]!.kind, 'dropped');
    assert.equal(recs[0]!.reason, 'source blocked by policy');
  });

  it('counts the records a full ring has no room for, and waits for none', async () => {
    await apply('cap-full', `match: { proto: udp }\nactions: [{ capture: { snaplen: ${CAPTURE.snaplenMax} } }]`);
    const before = readPolicyStats(bae.maps);
    // Full-size records: 24 bytes of header, 1514 of frame, 8 of ring header each.
    const frame = udpFrame(0, 1472);
    const fits = Math.floor(CAPTURE.ringBytes / (8 + 24 + frame.length));
    const n = fits + 500;
    now += 1_000_000n;
    bae.setClock(now);
    const res = bae.program.test(frame, { repeat: n });
    assert.equal(res.verdict, XDP.pass);
    const s = readPolicyStats(bae.maps);
    const captured = Number(s.captured - before.captured);
    const lost = Number(s.captureLost - before.captureLost);
    process.stderr.write(`capture ring: ${captured} records kept, ${lost} lost of ${n}\n`);
    assert.equal(captured + lost, n, 'every frame is either in the ring or counted as lost');
    assert.ok(lost >= 500 - 8, `the overflow is counted (${lost})`);
    assert.equal(drain().length, captured, 'the ring holds what was counted as kept');
  });
});
