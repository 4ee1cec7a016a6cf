// The emulation actions in the kernel against the reference model: generated policy sets with
// loss (random, correlated, Gilbert-Elliott), rate (per policy and per conversation), truncate,
// corrupt and tcp-flags, alone and combined, with and without triggers, fed a generated stream
// of TCP/UDP/ICMP/other frames (IPv4 with options, IPv6 with extension headers, VLAN tags,
// Ethernet padding, odd lengths) through BPF_PROG_TEST_RUN with the test clock. Every verdict
// and every output byte must agree; the random sequences, loss states and buckets at every
// checkpoint.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CAPTURE_MAPS, decodeCaptureRecord, RingBuffer, type CaptureRecord } from '../../src/datapath';
import { XDP } from '../../src/datapath/layout';
import { ACTION_BY_KIND } from '../../src/policy/actions';
import { compilePolicies } from '../../src/policy/compile';
import { PolicyError } from '../../src/policy/errors';
import type { Policy } from '../../src/policy/model';
import { ReferenceModel } from '../../src/policy/reference';
import { readActStates, readCounters } from '../../src/policy/state';
import { buildPacket, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, type PacketSpec } from '../lib/packets';
import { rng } from '../lib/rng';
import { PolicyBae, policies, policyYaml, refPacket } from './helpers';

const PACKETS = Number(process.env.BAE_ACTIONS_DIFF_PACKETS ?? 30_000);
const CHECK_EVERY = 1000;
const CHURN_EVERY = 6000;
const SEED = Number(process.env.BAE_DIFF_SEED ?? 7);
const SET_SEED = 0x5eed0fbaen;

const rand = rng(SEED);
const { pick, chance, int } = rand;

const ACTIONS = [
  () => `{ loss: { probability: ${pick([0, 5, 30, 50, 5, 100])}${chance(0.5) ? `, correlation: ${pick([25, 80])}` : ''} } }`,
  () => `{ loss: { model: gilbert-elliott, p: ${pick([5, 20])}, r: ${pick([10, 50])}${chance(0.5) ? `, lossBad: ${pick([60, 100])}, lossGood: ${pick([0, 3])}` : ''} } }`,
  () => `{ corrupt: { probability: ${pick([30, 100])}, bits: ${int(1, 8)}, region: ${pick(['any', 'ip', 'transport', 'payload'])}, checksums: ${pick(['fix', 'leave'])} } }`,
  () => (chance(0.5) ? `{ truncate: { to: ${pick([14, 34, 40, 54, 60, 61, 100, 200])}, lengths: ${pick(['fix', 'leave'])} } }` : `{ truncate: { by: ${pick([1, 7, 30, 101, 500])}, lengths: ${pick(['fix', 'leave'])} } }`),
  () => `{ tcp-flags: { ${pick(['set: SYN', 'clear: ACK', 'set: "FIN,URG", clear: PSH', 'set: "CWR,ECE"', 'clear: "SYN,RST,PSH"'])} } }`,
  () => `{ rate: { rate: ${pick(['200kbit', '1mbit', '"20 mbit"'])}, burst: ${pick(['64', '1600', '4kb'])}, per: ${pick(['policy', 'conversation'])} } }`,
];
const VERDICTS = ['', 'count', 'event', 'pass', 'count', 'drop'];

function randomPolicy(i: number): string {
  const lines = [`priority: ${pick([0, 10, 20])}`];
  const match: string[] = [];
  const proto = chance(0.6) ? pick(['tcp', 'udp', 'icmp', '[tcp, udp]', 'icmpv6']) : undefined;
  if (proto) match.push(`proto: ${proto}`);
  if (proto && !proto.includes('icmp') && chance(0.3)) match.push(`dport: ${pick(['80', '"1000-3000"', '[53, 443]'])}`);
  if (chance(0.3)) match.push(`src: ${pick(['10.1.0.0/16', '10.1.2.3/32', '"2001:db8::/32"', '0.0.0.0/0'])}`);
  if (match.length) lines.push(`match: { ${match.join(', ')} }`);
  if (chance(0.25)) lines.push(`trigger: { when: "${pick(['packets', 'bytes'])} > ${int(0, 30)}", within: ${pick(['1ms', '10ms'])}, scope: ${pick(['source', 'policy'])} }`, `for: ${pick(['2ms', '20ms'])}`);
  if (chance(0.3)) lines.push(`seed: ${int(0, 2 ** 40)}`);
  const n = int(1, 4);
  const chosen = new Set<number>();
  for (let k = 0; k < n; k++) chosen.add(int(0, ACTIONS.length - 1));
  // loss twice is refused; keep one of the two loss models.
  if (chosen.has(0) && chosen.has(1)) chosen.delete(1);
  const acts = [...chosen].map((k) => ACTIONS[k]!());
  const v = pick(VERDICTS);
  if (v && chance(0.3)) acts.push(v);
  // Capture copies and decides nothing: the reference model has no capture, and must agree.
  if (chance(0.3)) acts.push(pick(['capture', '{ capture: { drops: true } }', '{ capture: { sample: 0.5, snaplen: 64 } }']));
  lines.push(`actions: [${acts.join(', ')}]`);
  return policyYaml(`e${i}`, lines.join('\n'));
}

function randomSet(): Policy[] {
  for (;;) {
    const set = policies(Array.from({ length: int(2, 8) }, (_, i) => randomPolicy(i)).join('---\n'));
    try {
      compilePolicies(set, { seed: SET_SEED });
      return set;
    } catch (err) {
      if (!(err instanceof PolicyError) || !err.detail.startsWith('too many rules')) throw err;
    }
  }
}

const V4 = ['10.1.2.3', '10.1.9.9', '192.168.1.1'];
const V6 = ['2001:db8::1', '2001:db8::2', 'fe80::9'];

function randomFrame(): { spec: PacketSpec; frame: Buffer } {
  const v6 = chance(0.35);
  const src = pick(v6 ? V6 : V4);
  const dst = pick(v6 ? V6 : V4);
  const ip = v6
    ? ({ version: 6, src, dst, ...(chance(0.2) ? { extensions: [{ type: pick(['hop-by-hop', 'destination'] as const) }] } : {}) } as const)
    : ({ version: 4, src, dst, ...(chance(0.15) ? { options: Buffer.from([1, 1, 1, 0]) } : {}) } as const);
  const payload = Buffer.from(Array.from({ length: pick([0, 1, 2, 3, 17, 40, 99, 300, 1000]) }, () => int(0, 255)));
  const r = rand();
  const eth = chance(0.1) ? { vlans: [{ vid: 5 }] } : undefined;
  let l4: PacketSpec['l4'];
  if (r < 0.5) {
    l4 = {
      proto: 'tcp',
      sport: pick([1234, 40000]),
      dport: pick([80, 443, 2000]),
      seq: int(0, 2 ** 32 - 1),
      flags: pick([TCP_SYN, TCP_ACK, TCP_ACK | TCP_PSH, TCP_FIN | TCP_ACK]),
      ...(chance(0.2) ? { options: Buffer.from([2, 4, 5, 180]) } : {}),
      payload,
    };
  } else if (r < 0.75) l4 = { proto: 'udp', sport: pick([53, 5000]), dport: pick([53, 80, 1500]), payload };
  else if (r < 0.95) l4 = { proto: v6 ? 'icmpv6' : 'icmp', payload };
  else l4 = { proto: 47, payload };
  const spec = { ...(eth ? { eth } : {}), ip, l4 } as PacketSpec;
  let frame = buildPacket(spec).frame;
  // Ethernet padding after the IP packet now and then.
  if (chance(0.1)) frame = Buffer.concat([frame, Buffer.alloc(int(1, 20), 0xee)]);
  return { spec, frame };
}

describe('emulation actions: kernel and reference model', () => {
  let bae: PolicyBae;
  let ring: RingBuffer;
  const records: CaptureRecord[] = [];
  before(() => {
    bae = new PolicyBae();
    ring = new RingBuffer(bae.collection.map(CAPTURE_MAPS.ring), (buf) => records.push(decodeCaptureRecord(buf)));
  });
  after(() => {
    ring?.close();
    bae?.close();
  });

  it(`agree on the verdict and every output byte of ${PACKETS} generated frames, and on the random sequences and buckets (seed ${SEED})`, async () => {
    const ref = new ReferenceModel({ seed: SET_SEED });
    let set = randomSet();
    const useSet = async (s: Policy[]) => {
      set = s;
      await bae.apply(s, { seed: SET_SEED });
      ref.setPolicies(s);
    };
    await useSet(set);
    let t = 5_000_000_000n;
    const seen = { drop: 0, lossDrops: 0, rateDrops: 0, changed: 0, truncated: 0, captured: 0, capturedDrops: 0 };
    const checkpoint = (at: number) => {
      const got = new Map(readActStates(bae.maps).map(({ key, state }) => [`${key.id}|${key.scope}|${key.family}|${key.addrA.toString('hex')}|${key.addrB.toString('hex')}`, state] as const));
      const want = ref.emulStates();
      const norm = (m: Map<string, { prng: bigint; credit: bigint; lastNs: bigint; lossLast: number; geBad: number }>) =>
        new Map([...m].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, { prng: v.prng, credit: v.credit, lastNs: v.lastNs, lossLast: v.lossLast, geBad: v.geBad }] as const));
      assert.deepEqual(norm(got), norm(want), `emulation states after packet ${at}`);
      const counters = readCounters(bae.maps);
      assert.deepEqual(new Map([...counters].sort((a, b) => a[0] - b[0])), new Map([...ref.counters].sort((a, b) => a[0] - b[0])), `counters after packet ${at}`);
    };
    for (let i = 1; i <= PACKETS; i++) {
      t += BigInt(chance(0.05) ? int(1, 50_000_000) : int(1, 400_000));
      const { spec, frame } = randomFrame();
      bae.setClock(t);
      const res = bae.program.test(frame);
      const pkt = refPacket(spec, frame, t);
      const want = ref.process(pkt);
      const wantVerdict = want.verdict === 'drop' ? XDP.drop : XDP.pass;
      const describeIt = () => `packet ${i} at ${t}: ${frame.toString('hex')}\npolicies: ${JSON.stringify(set.map((p) => p.spec))}`;
      assert.equal(res.verdict, wantVerdict, `verdict of ${describeIt()} (reference: ${JSON.stringify({ ...want, frame: undefined })})`);
      if (res.verdict === XDP.pass) {
        const wantFrame = Buffer.from(want.frame ?? frame);
        if (!res.data.equals(wantFrame)) assert.fail(`bytes of ${describeIt()}\nkernel:    ${res.data.toString('hex')}\nreference: ${wantFrame.toString('hex')}`);
        if (!res.data.equals(frame)) seen.changed++;
        if (res.data.length < frame.length) seen.truncated++;
      } else seen.drop++;
      // Capture: a record exactly when the reference keeps the frame, naming the same policy and
      // action, with the frame's first bytes as it arrived.
      records.length = 0;
      ring.consume();
      const cap = want.captured;
      assert.equal(records.length, cap ? 1 : 0, `capture records of ${describeIt()} (reference: ${JSON.stringify(cap)})`);
      if (cap) {
        const r = records[0]!;
        const p = set.find((q) => q.name === cap.policy)!;
        assert.equal(r.policyId, p.id, `capturing policy of ${describeIt()}`);
        assert.equal(r.action, ACTION_BY_KIND.get(cap.action)!.bit, `capture action of ${describeIt()}`);
        assert.deepEqual(r.data, frame.subarray(0, r.data.length), `captured bytes of ${describeIt()}`);
        assert.equal(r.origLen, frame.length);
        seen.captured++;
        if (cap.action !== 'capture') seen.capturedDrops++;
      }
      if (want.emulated === 'loss') seen.lossDrops++;
      if (want.emulated === 'rate') seen.rateDrops++;
      if (i % CHECK_EVERY === 0) checkpoint(i);
      if (i % CHURN_EVERY === 0) {
        if (chance(0.5)) await useSet(set.filter(() => chance(0.7)).concat(policies(randomPolicy(50 + i))).filter((p, k, all) => all.findIndex((q) => q.name === p.name) === k));
        else await useSet(randomSet());
      }
    }
    checkpoint(PACKETS);
    process.stderr.write(`actions differential: ${PACKETS} frames, ${JSON.stringify(seen)}\n`);
    // The generator must have exercised what it claims to.
    assert.ok(seen.lossDrops > 100 && seen.rateDrops > 20, `loss and rate dropped packets (${seen.lossDrops}, ${seen.rateDrops})`);
    assert.ok(seen.changed > 1000 && seen.truncated > 100, `frames were changed (${seen.changed}) and truncated (${seen.truncated})`);
    assert.ok(seen.captured > 1000 && seen.capturedDrops > 100, `frames were captured (${seen.captured}), dropped ones among them (${seen.capturedDrops})`);
  });
});
