// Every header cut at every byte: each prefix of several frames goes through the program on its
// own address pair, and the verdict, the parse-outcome counters and the profile are predicted
// from where the cut falls.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { IPV6_EXT_MAX, VLAN_MAX, type ParseOutcome } from '../../src/datapath/layout';
import { ETH_P_8021AD, TCP_ACK, TCP_PSH, TCP_SYN, buildPacket, type Packet, type PacketSpec } from '../lib/packets';
import { Bae, Golden, statsDelta } from './harness';

const ETH_HLEN = 14;

/** The outcome the program must report for the first `n` bytes of `packet`. */
function outcomeOfPrefix(packet: Packet, n: number): ParseOutcome {
  let vlans = 0;
  let exts = 0;
  for (const layer of packet.layers) {
    const cut = n < layer.offset + layer.length;
    switch (layer.name) {
      case 'eth':
        if (cut) return 'trunc_eth';
        break;
      case 'vlan':
        if (++vlans > VLAN_MAX) return 'vlan_depth';
        if (cut) return 'trunc_vlan';
        break;
      case 'ipv4':
      case 'ipv6':
        if (cut) return 'trunc_l3';
        break;
      case 'ext':
        if (++exts > IPV6_EXT_MAX) return 'ext_depth';
        if (cut) return 'trunc_ext';
        break;
      case 'tcp':
      case 'udp':
      case 'icmp':
      case 'icmpv6':
        return cut ? 'trunc_l4' : layer.name;
      default:
        throw new Error(`test error: unexpected layer ${layer.name}`);
    }
  }
  throw new Error('test error: the frame has no upper-layer header');
}

interface Case {
  name: string;
  /** The frame from source address number `i` (one address pair per prefix). */
  spec: (i: number) => PacketSpec;
  ttl: number;
  tcpFlags?: number;
  /** Every outcome the walk over all prefixes must meet. */
  outcomes: ParseOutcome[];
}

const v4 = (k: number, i: number) => ({ src: `10.${100 + k}.${i >> 8}.${i & 255}`, dst: `10.${100 + k}.255.255` });
const v6 = (k: number, i: number) => ({ src: `fd10:${k}::${i.toString(16)}`, dst: `fd10:${k}::ffff` });

const cases: Case[] = [
  {
    name: 'IPv4 with options, TCP with options and data, behind two VLAN tags',
    spec: (i) => ({
      eth: { vlans: [{ vid: 100, tpid: ETH_P_8021AD }, { vid: 5 }] },
      ip: { version: 4, ...v4(0, i), ttl: 33, options: Buffer.from([0x94, 4, 0, 0, 1, 1, 1, 0]) },
      l4: { proto: 'tcp', sport: 4000, dport: 443, flags: TCP_PSH | TCP_ACK, seq: 7, options: Buffer.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]), payload: Buffer.alloc(12, 1) },
    }),
    ttl: 33,
    tcpFlags: TCP_PSH | TCP_ACK,
    outcomes: ['trunc_vlan', 'trunc_l3', 'trunc_l4', 'tcp'],
  },
  {
    name: 'IPv4 UDP behind one 802.1ad tag',
    spec: (i) => ({ eth: { vlans: [{ vid: 4000, tpid: ETH_P_8021AD }] }, ip: { version: 4, ...v4(7, i), ttl: 128 }, l4: { proto: 'udp', sport: 53, dport: 53, payload: Buffer.alloc(5) } }),
    ttl: 128,
    outcomes: ['trunc_vlan', 'trunc_l3', 'trunc_l4', 'udp'],
  },
  {
    name: 'IPv4 ICMP echo',
    spec: (i) => ({ ip: { version: 4, ...v4(1, i), ttl: 2 }, l4: { proto: 'icmp', payload: Buffer.alloc(8) } }),
    ttl: 2,
    outcomes: ['trunc_l3', 'trunc_l4', 'icmp'],
  },
  {
    name: 'IPv6 with hop-by-hop, first-fragment and destination headers, UDP',
    spec: (i) => ({
      ip: { version: 6, ...v6(2, i), hopLimit: 17, extensions: [{ type: 'hop-by-hop' }, { type: 'fragment', more: true }, { type: 'destination', length: 16 }] },
      l4: { proto: 'udp', sport: 5353, dport: 5353, payload: Buffer.alloc(4) },
    }),
    ttl: 17,
    outcomes: ['trunc_l3', 'trunc_ext', 'trunc_l4', 'udp'],
  },
  {
    name: 'IPv6 ICMPv6 behind one VLAN tag',
    spec: (i) => ({ eth: { vlans: [{ vid: 9 }] }, ip: { version: 6, ...v6(3, i), hopLimit: 255 }, l4: { proto: 'icmpv6', payload: Buffer.alloc(4) } }),
    ttl: 255,
    outcomes: ['trunc_vlan', 'trunc_l3', 'trunc_l4', 'icmpv6'],
  },
  {
    name: 'IPv6 with an AH and a routing header, TCP SYN',
    spec: (i) => ({
      ip: { version: 6, ...v6(4, i), hopLimit: 64, extensions: [{ type: 'ah' }, { type: 'routing', length: 24 }] },
      l4: { proto: 'tcp', sport: 1, dport: 2, flags: TCP_SYN, options: Buffer.from([2, 4, 5, 0xb4]) },
    }),
    ttl: 64,
    tcpFlags: TCP_SYN,
    outcomes: ['trunc_l3', 'trunc_ext', 'trunc_l4', 'tcp'],
  },
  {
    name: 'IPv6 with seven extension headers (one past the bound)',
    spec: (i) => ({
      ip: { version: 6, ...v6(5, i), hopLimit: 3, extensions: Array.from({ length: IPV6_EXT_MAX + 1 }, () => ({ type: 'destination' as const })) },
      l4: { proto: 'udp', sport: 1, dport: 2 },
    }),
    ttl: 3,
    outcomes: ['trunc_l3', 'trunc_ext', 'ext_depth'],
  },
  {
    name: 'IPv4 UDP behind three VLAN tags (one past the bound)',
    spec: (i) => ({ eth: { vlans: [{ vid: 1 }, { vid: 2 }, { vid: 3 }] }, ip: { version: 4, ...v4(6, i) }, l4: { proto: 'udp', sport: 1, dport: 2 } }),
    ttl: 64,
    outcomes: ['trunc_vlan', 'vlan_depth'],
  },
];

describe('frames cut at every byte', () => {
  let bae: Bae;
  let golden: Golden;
  before(() => {
    bae = new Bae();
    golden = new Golden(bae);
  });
  after(() => bae?.close());

  test('the kernel refuses to run XDP on less than an Ethernet header, and nothing is counted', () => {
    const frame = buildPacket(cases[0]!.spec(0)).frame; // any frame: the kernel looks at the length only
    for (let n = 1; n < ETH_HLEN; n++) {
      const before = bae.stats();
      assert.throws(() => bae.run(frame.subarray(0, n)), { code: 'EINVAL' }, `${n} bytes`);
      assert.deepEqual(statsDelta(before, bae.stats()), {}, `${n} bytes: no counter moved`);
    }
  });

  for (const [k, c] of cases.entries()) {
    test(`${c.name}: every prefix gives its parse outcome, XDP_PASS and an exact profile`, () => {
      const full = buildPacket(c.spec(0));
      const seen = new Set<ParseOutcome>();
      for (let n = ETH_HLEN; n <= full.frame.length; n++) {
        const packet = buildPacket(c.spec(n));
        const outcome = outcomeOfPrefix(packet, n);
        seen.add(outcome);
        const ipLayer = packet.layers.find((l) => l.name === 'ipv4' || l.name === 'ipv6');
        const hasL3 = ipLayer !== undefined && !['trunc_eth', 'trunc_vlan', 'vlan_depth', 'trunc_l3'].includes(outcome);
        const spec = c.spec(n);
        golden.send(
          packet.frame.subarray(0, n),
          {
            outcome,
            ...(hasL3 ? { ip: { src: spec.ip.src, dst: spec.ip.dst, ttl: c.ttl } } : {}),
            ...(c.tcpFlags !== undefined ? { tcp: { flags: c.tcpFlags } } : {}),
          },
          `case ${k} (${c.name}), ${n} of ${full.frame.length} bytes`,
        );
      }
      // The walk went through every header of the frame, the last prefix being the whole frame.
      assert.deepEqual([...seen], c.outcomes, `${c.name}: outcomes met, in order`);
    });
  }
});
