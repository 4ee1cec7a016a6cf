// The kernel's policy stage against the reference model: 100k generated packets — random and
// adversarial (bucket edges, nested prefixes, IPv4/IPv6 mixes, blocklist expiry, rule churn by
// re-applying sets mid-stream) — through BPF_PROG_TEST_RUN with the test clock and through
// ReferenceModel. Verdicts must agree on every packet; counters, trigger windows, blocklist and
// events at every checkpoint.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RingBuffer } from '../../src/datapath';
import { AF_INET, XDP } from '../../src/datapath/layout';
import { decodePolicyEvent, type PolicyEventRecord } from '../../src/datapath/policy-layout';
import { compilePolicies } from '../../src/policy/compile';
import { PolicyError } from '../../src/policy/errors';
import type { Policy } from '../../src/policy/model';
import { parseAddress } from '../../src/datapath/address';
import { parsePrefix, type Prefix } from '../../src/policy/net';
import { setProtectedPrefixes } from '../../src/policy/prefix-blocks';
import { ReferenceModel, type RefEvent, type RefPacket } from '../../src/policy/reference';
import { readBlocklist, readCounters, readOffences, readPolicyStats, readTriggers } from '../../src/policy/state';
import { buildPacket, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type PacketSpec } from '../lib/packets';
import { rng } from '../lib/rng';
import { PolicyBae, policies, policyYaml } from './helpers';

const PACKETS = Number(process.env.BAE_DIFF_PACKETS ?? 100_000);
const CHECK_EVERY = 2000;
const CHURN_EVERY = 7000;

const SEED = Number(process.env.BAE_DIFF_SEED ?? 20261121);
const rand = rng(SEED);
const { pick, chance, int } = rand;

// Nested and overlapping prefixes of both families, and addresses inside and outside them.
const V4_PREFIXES = ['0.0.0.0/0', '10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '10.1.2.128/25', '10.1.2.3/32', '192.168.0.0/16', '192.168.1.1/32'];
const V6_PREFIXES = ['::/0', '2001:db8::/32', '2001:db8:1::/48', '2001:db8:1::5/128', 'fe80::/10'];
const V4_ADDRS = ['10.1.2.3', '10.1.2.200', '10.1.5.5', '10.200.0.1', '192.168.1.1', '192.168.9.9', '172.16.0.1'];
const V6_ADDRS = ['2001:db8:1::5', '2001:db8:1::6', '2001:db8:2::1', '2001:db9::1', 'fe80::1'];
const PORTS = [22, 53, 80, 443, 1000, 1500, 2000, 5555, 40000];
const PORT_MATCHES = ['22', '80', '443', '"1000-2000"', '"0-1023"', '[53, 443]', '[22, "1500-6000"]'];
const METRICS = ['packets', 'bytes', 'tcp.syn', 'tcp.rst', 'tcp.fin', 'tcp.retransmits', 'out_of_order', 'icmp.unreachable', 'new_conversations', 'http.requests', 'http.responses', 'http.errors', 'http.5xx'];
// Payloads of PSH segments: HTTP/1.x lines (read on the default HTTP ports 80 and 8080 only),
// near misses, and plain bytes.
const HTTP_LINES: [string, { httpRequest?: boolean; httpStatus?: number }][] = [
  ['GET /a HTTP/1.1\r\n\r\n', { httpRequest: true }],
  ['POST /form HTTP/1.1\r\n', { httpRequest: true }],
  ['OPTIONS * HTTP/1.1\r\n', { httpRequest: true }],
  ['HTTP/1.1 200 OK\r\n\r\n', { httpStatus: 200 }],
  ['HTTP/1.1 404 Not Found\r\n', { httpStatus: 404 }],
  ['HTTP/1.0 503 Busy\r\n\r\n', { httpStatus: 503 }],
  ['HTTP/1.1 302 Found\r\n\r\n', { httpStatus: 302 }],
  ['get / HTTP/1.1\r\n\r\n', {}],
  ['HTTP/2 200 OK\r\n\r\n\r\n', {}],
  ['GET /', {}],
];
const HTTP_PORTS = new Set([80, 8080]);
// Windows whose bucket width (within / 8) is and is not a whole divisor of a second.
const WITHINS = ['8ms', '10ms', '1000003ns', '80ms', '1s', '250ms'];
const DURATIONS = ['1ms', '5ms', '40ms', '300ms', '2s'];
const ACTIONS = ['[drop]', '[pass]', '[count]', '[count, drop]', '[event, pass]', '[{ block: { ttl: 20ms } }]', '[{ block: { ttl: 400ms } }, count]', '[event]',
  // Repeat offenders: ttl x 2^n (x3^n) up to maxTtl, history forgotten `forget` after a block ended.
  '[{ block: { ttl: 20ms, escalate: 2, maxTtl: 150ms, forget: 500ms } }]', '[{ block: { ttl: 5ms, escalate: 3, maxTtl: 1s, forget: 50ms } }, count]',
  '[{ block: { ttl: 2ms, escalate: 2, maxTtl: 40ms, forget: 2s } }]'];

function prefixList(): string {
  const pool = chance(0.5) ? V4_PREFIXES : V6_PREFIXES;
  const n = int(1, 2);
  const chosen = new Set<string>();
  for (let i = 0; i < n; i++) chosen.add(pick(chance(0.15) ? [...V4_PREFIXES, ...V6_PREFIXES] : pool));
  return `[${[...chosen].map((p) => `"${p}"`).join(', ')}]`;
}

function randomPolicy(i: number): string {
  const lines: string[] = [`priority: ${pick([0, 10, 10, 50, 100])}`];
  const match: string[] = [];
  if (chance(0.5)) match.push(`src: ${prefixList()}`);
  if (chance(0.4)) match.push(`dst: ${prefixList()}`);
  const proto = chance(0.5) ? pick(['tcp', 'udp', 'icmp', 'icmpv6', '[tcp, udp]']) : undefined;
  if (proto) match.push(`proto: ${proto}`);
  const portsOk = proto === undefined || proto === 'tcp' || proto === 'udp' || proto === '[tcp, udp]';
  if (portsOk && chance(0.3)) match.push(`dport: ${pick(PORT_MATCHES)}`);
  if (portsOk && chance(0.15)) match.push(`sport: ${pick(PORT_MATCHES)}`);
  if ((proto === undefined || proto === 'tcp') && chance(0.15)) match.push(`tcpFlags: "${pick(['SYN,!ACK', 'ACK', 'RST', '!SYN'])}"`);
  if (match.length) lines.push(`match: { ${match.join(', ')} }`);
  if (chance(0.6)) {
    const metric = pick(METRICS);
    const threshold = metric === 'bytes' ? int(0, 4000) : int(0, 12);
    lines.push(`trigger: { when: "${metric} ${pick(['>', '>='])} ${threshold}", within: ${pick(WITHINS)}, scope: ${pick(['source', 'destination', 'conversation', 'policy'])} }`);
    if (chance(0.6)) {
      lines.push(`for: ${pick(DURATIONS)}`);
      if (chance(0.4)) lines.push(`cooldown: ${pick(DURATIONS)}`);
    }
  }
  if (chance(0.2)) lines.push('monitor: true');
  lines.push(`actions: ${pick(ACTIONS)}`);
  return policyYaml(`p${i}`, lines.join('\n'));
}

function randomSet(): Policy[] {
  for (;;) {
    const n = int(3, 30);
    const set = policies(Array.from({ length: n }, (_, i) => randomPolicy(i)).join('---\n'));
    try {
      compilePolicies(set);
      return set;
    } catch (err) {
      if (!(err instanceof PolicyError) || !err.detail.startsWith('too many rules')) throw err;
    }
  }
}

/** The datapath's facts for a frame (bae.bpf.c profile_update, docs/profiles.md). */
class FactsModel {
  readonly #convs = new Set<string>();
  readonly #flows = new Map<string, { seen: boolean; seqHigh: number }>();

  facts(family: 4 | 6, src: Uint8Array, dst: Uint8Array, tcp?: { sport: number; dport: number; seq: number; flags: number; payload: number }) {
    const hs = Buffer.from(src).toString('hex');
    const hd = Buffer.from(dst).toString('hex');
    const srcLow = hs <= hd;
    const conv = `${family}|${srcLow ? hs : hd}|${srcLow ? hd : hs}`;
    const newConversation = !this.#convs.has(conv);
    this.#convs.add(conv);
    let retransmit = false;
    let outOfOrder = false;
    if (tcp && (tcp.payload > 0 || tcp.flags & (TCP_SYN | TCP_FIN))) {
      // Flow orientation: like the conversation; by ports when the addresses are equal.
      const dir = hs === hd ? (tcp.sport <= tcp.dport ? 0 : 1) : srcLow ? 0 : 1;
      const [pa, pb] = dir === 0 ? [tcp.sport, tcp.dport] : [tcp.dport, tcp.sport];
      const key = `${conv}|${pa}|${pb}|${dir}`;
      const half = this.#flows.get(key) ?? { seen: false, seqHigh: 0 };
      this.#flows.set(key, half);
      const len = tcp.payload + (tcp.flags & TCP_SYN ? 1 : 0) + (tcp.flags & TCP_FIN ? 1 : 0);
      const end = (tcp.seq + len) >>> 0;
      if (!half.seen || (tcp.flags & TCP_SYN && end !== half.seqHigh)) {
        half.seqHigh = end;
        half.seen = true;
      } else if ((end - half.seqHigh) | 0) {
        if (((end - half.seqHigh) | 0) < 0) retransmit = true;
        else {
          if (((tcp.seq - half.seqHigh) | 0) > 0) outOfOrder = true;
          half.seqHigh = end;
        }
      } else {
        retransmit = true;
      }
    }
    return { newConversation, retransmit, outOfOrder };
  }
}

interface Generated {
  spec: PacketSpec;
  frame: Buffer;
  ref: RefPacket;
}

class PacketGenerator {
  readonly facts = new FactsModel();
  readonly stats = { retransmit: 0, outOfOrder: 0, newConversation: 0, httpRequest: 0, httpResponse: 0 };
  readonly #seq = new Map<string, number>();

  next(timeNs: bigint): Generated {
    const v6 = chance(0.35);
    const src = pick(v6 ? V6_ADDRS : V4_ADDRS);
    const dst = pick(v6 ? V6_ADDRS : V4_ADDRS);
    const ip = v6 ? ({ version: 6, src, dst } as const) : ({ version: 4, src, dst } as const);
    const r = rand();
    let spec: PacketSpec;
    let tcpInfo: { sport: number; dport: number; seq: number; flags: number; payload: number } | undefined;
    let httpFacts: { httpRequest?: boolean; httpStatus?: number } = {};
    if (r < 0.6) {
      const sport = pick(PORTS);
      const dport = pick(PORTS);
      const flags = pick([TCP_SYN, TCP_SYN, TCP_SYN | TCP_ACK, TCP_ACK, TCP_ACK | TCP_PSH, TCP_RST, TCP_FIN | TCP_ACK, TCP_RST | TCP_ACK]);
      let payloadBytes: Buffer | undefined;
      if (flags & TCP_PSH && chance(0.4)) {
        const [line, facts] = pick(HTTP_LINES);
        payloadBytes = Buffer.from(line, 'latin1');
        if (HTTP_PORTS.has(sport) || HTTP_PORTS.has(dport)) httpFacts = facts;
      }
      const payload = payloadBytes ? payloadBytes.length : flags & TCP_PSH ? int(1, 40) : chance(0.2) ? int(1, 10) : 0;
      const key = `${src}|${sport}|${dst}|${dport}`;
      let seq = this.#seq.get(key) ?? int(0, 2 ** 32 - 1);
      // Adversarial sequence numbers: resend, jump ahead, wrap around.
      const s = rand();
      if (s < 0.1) seq = (seq - int(1, 20)) >>> 0;
      else if (s < 0.18) seq = (seq + int(1, 3000)) >>> 0;
      else if (s < 0.2) seq = 0xffffffff - int(0, 5);
      this.#seq.set(key, (seq + payload + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0)) >>> 0);
      tcpInfo = { sport, dport, seq, flags, payload };
      spec = { ip, l4: { proto: 'tcp', sport, dport, seq, flags, payload: payloadBytes ?? Buffer.alloc(payload, 0x61) } };
    } else if (r < 0.8) {
      spec = { ip, l4: { proto: 'udp', sport: pick(PORTS), dport: pick(PORTS), payload: Buffer.alloc(int(0, 60)) } };
    } else if (r < 0.95) {
      const unreachable = chance(0.4);
      spec = v6
        ? { ip, l4: { proto: 'icmpv6', type: unreachable ? 1 : 128, code: 0 } }
        : { ip, l4: { proto: 'icmp', type: unreachable ? 3 : 8, code: unreachable ? 1 : 0 } };
    } else {
      spec = { ip, l4: { proto: 47, payload: Buffer.alloc(int(4, 20)) } };
    }
    const frame = buildPacket(spec).frame;
    const s = parseAddress(src)!;
    const d = parseAddress(dst)!;
    const facts = this.facts.facts(s.family, s.addr, d.addr, tcpInfo);
    if (facts.retransmit) this.stats.retransmit++;
    if (facts.outOfOrder) this.stats.outOfOrder++;
    if (facts.newConversation) this.stats.newConversation++;
    const l4 = spec.l4;
    const proto = typeof l4.proto === 'number' ? l4.proto : { tcp: 6, udp: 17, icmp: 1, icmpv6: 58 }[l4.proto];
    const ref: RefPacket = {
      timeNs,
      family: s.family,
      src: s.addr,
      dst: d.addr,
      sport: 'sport' in l4 ? l4.sport : 0,
      dport: 'dport' in l4 ? l4.dport : 0,
      proto,
      tcpFlags: tcpInfo?.flags ?? 0,
      icmpType: l4.proto === 'icmp' || l4.proto === 'icmpv6' ? (l4.type ?? 0) : -1,
      length: frame.length,
      ifindex: 1,
      ip: true,
      ...facts,
      ...httpFacts,
    };
    if (httpFacts.httpRequest) this.stats.httpRequest++;
    if (httpFacts.httpStatus) this.stats.httpResponse++;
    return { spec, frame, ref };
  }
}

/** The next timestamp: mostly small steps, often exactly at or next to a bucket edge, sometimes a long gap. */
function nextTime(t: bigint, buckets: bigint[]): bigint {
  const r = rand();
  if (r < 0.55) return t + BigInt(int(1, 200_000));
  if (r < 0.8 && buckets.length) {
    const w = pick(buckets);
    const edge = (t / w + 1n) * w;
    return edge + BigInt(pick([-1, 0, 0, 1]));
  }
  if (r < 0.97) return t + BigInt(int(1, 50_000_000));
  return t + BigInt(int(1, 3_000_000_000));
}

const eventKinds: Record<number, RefEvent['kind']> = { 1: 'fire', 2: 'block', 3: 'match', 4: 'refused', 5: 'would-block' };

describe('kernel and reference model', () => {
  let bae: PolicyBae;
  let ring: RingBuffer;
  const kernelEvents: PolicyEventRecord[] = [];

  before(() => {
    bae = new PolicyBae();
    ring = new RingBuffer(bae.collection.map('policy_events'), (r) => kernelEvents.push(decodePolicyEvent(r)));
  });
  after(() => {
    ring?.close();
    bae?.close();
  });

  it(`agree on the verdict of each of ${PACKETS} generated packets, and on counters, windows, blocklist and events (seed ${SEED})`, async () => {
    const ref = new ReferenceModel();
    const gen = new PacketGenerator();
    let set = randomSet();
    let buckets: bigint[] = [];
    const useSet = async (s: Policy[]) => {
      set = s;
      buckets = s.flatMap((p) => (p.trigger ? [p.trigger.withinNs / 8n] : []));
      await bae.apply(s);
      ref.setPolicies(s);
      // Protected prefixes change with the set: none, or one or two of the generator's prefixes.
      const prot = chance(0.5) ? [] : Array.from({ length: int(1, 2) }, () => parsePrefix(pick([...V4_PREFIXES.slice(1), ...V6_PREFIXES.slice(1)])) as Prefix);
      setProtectedPrefixes(bae.maps, prot);
      ref.protectedPrefixes = prot;
    };
    await useSet(set);
    let t = 1_000_000_000n;
    let refEventsSeen = 0;
    let drops = 0;
    let churns = 0;

    const checkpoint = (at: number) => {
      const counters = readCounters(bae.maps);
      const want = new Map([...ref.counters].map(([id, c]) => [id, { ...c }]));
      assert.deepEqual(new Map([...counters].sort((a, b) => a[0] - b[0])), new Map([...want].sort((a, b) => a[0] - b[0])), `counters after packet ${at}`);
      const windows = new Map(
        readTriggers(bae.maps).map(({ key, state }) => [
          `${key.id}|${key.scope}|${key.family}|${key.addrA.toString('hex')}|${key.addrB.toString('hex')}`,
          state,
        ]),
      );
      assert.deepEqual(new Map([...windows].sort()), new Map([...ref.triggerStates()].sort()), `trigger windows after packet ${at}`);
      const blocklist = new Map(readBlocklist(bae.maps).map((b) => [`${b.family === AF_INET ? 4 : 6}/${b.addr.toString('hex')}`, b.expiryNs]));
      assert.deepEqual(new Map([...blocklist].sort()), new Map([...ref.blocklist].sort()), `blocklist after packet ${at}`);
      const offences = new Map(readOffences(bae.maps).map((o) => [`${o.family === AF_INET ? 4 : 6}/${o.addr.toString('hex')}`, { count: o.count, lastExpiryNs: o.lastExpiryNs }]));
      assert.deepEqual(new Map([...offences].sort()), new Map([...ref.offences].sort()), `offence histories after packet ${at}`);
      assert.equal(readPolicyStats(bae.maps).blocklistDrops, ref.blocklistDrops, `blocklist drops after packet ${at}`);
      assert.equal(readPolicyStats(bae.maps).blockRefused, ref.blockRefused, `refused blocks after packet ${at}`);
      ring.consume();
      const refEvents = ref.events.slice(refEventsSeen);
      refEventsSeen = ref.events.length;
      const got = kernelEvents.splice(0).map((e) => ({
        kind: eventKinds[e.kind],
        policyId: e.policyId,
        timeNs: e.timeNs,
        value: e.value,
        src: e.addrA.toString('hex'),
        dst: e.addrB.toString('hex'),
      }));
      const wantEvents = refEvents.map((e) => ({
        kind: e.kind,
        policyId: e.policyId,
        timeNs: e.timeNs,
        value: e.value,
        src: Buffer.from(e.src).toString('hex'),
        dst: Buffer.from(e.dst).toString('hex'),
      }));
      assert.deepEqual(got, wantEvents, `events up to packet ${at}`);
      assert.equal(readPolicyStats(bae.maps).eventsLost, 0n, 'no event was lost');
    };

    for (let i = 1; i <= PACKETS; i++) {
      t = nextTime(t, buckets);
      const p = gen.next(t);
      bae.setClock(t);
      const verdict = bae.run(p.frame);
      const want = ref.process(p.ref);
      if (verdict !== (want.verdict === 'drop' ? XDP.drop : XDP.pass)) {
        assert.fail(
          `packet ${i} at ${t} ns: kernel verdict ${verdict}, reference ${want.verdict} (${want.policy ?? 'no policy'}${want.blocked ? ', blocked' : ''})\n` +
            `packet: ${JSON.stringify(p.spec, (_k, v: unknown) => (Buffer.isBuffer(v) ? `${v.length} bytes` : v))}\n` +
            `policies: ${JSON.stringify(set.map((x) => x.spec))}`,
        );
      }
      if (verdict === XDP.drop) drops++;
      if (i % CHECK_EVERY === 0) checkpoint(i);
      if (i % CHURN_EVERY === 0) {
        checkpoint(i);
        churns++;
        const r = rand();
        if (r < 0.3) await useSet(set); // the same set again: trigger state must carry over
        else if (r < 0.6) {
          // One policy changed or dropped, the others unchanged.
          const keep = set.filter(() => chance(0.85));
          const next = [...keep, ...policies(randomPolicy(100 + churns))];
          let fits = true;
          try {
            compilePolicies(next);
          } catch (err) {
            if (!(err instanceof PolicyError)) throw err;
            fits = false; // refused before any map is touched: the current set stays, in both
          }
          if (fits) await useSet(next);
        } else await useSet(randomSet());
      }
    }
    checkpoint(PACKETS);
    const fires = ref.events.filter((e) => e.kind === 'fire').length;
    assert.ok(ref.blockRefused > 0n, 'some blocks met a protected prefix');
    const repeat = [...ref.offences.values()].filter((o) => o.count >= 2).length;
    assert.ok(repeat > 0, `addresses were blocked again, escalated (${repeat})`);
    assert.ok(ref.events.some((e) => e.kind === 'would-block'), 'some monitor-only policies would have blocked');
    const facts = gen.stats;
    process.stderr.write(`differential: ${PACKETS} packets, ${drops} dropped, ${ref.blocklistDrops} by the blocklist, ${repeat} repeat offenders, ${fires} fires, ${ref.events.length} events, ${churns} re-applies, facts ${JSON.stringify(facts)}\n`);
    // The generator must have exercised what it claims to.
    assert.ok(facts.retransmit > 0 && facts.outOfOrder > 0 && facts.newConversation > 0 && facts.httpRequest > 0 && facts.httpResponse > 0, 'the datapath facts occurred');
    assert.ok(drops > PACKETS / 50, `some packets were dropped (${drops})`);
    assert.ok(ref.blocklistDrops > 0n, 'some packets met the blocklist');
    assert.ok(churns >= 10, `the set was re-applied mid-stream (${churns} times)`);
    assert.ok(fires > 100, `triggers fired (${fires})`);
  });
});
