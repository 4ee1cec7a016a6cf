// Golden packets through the bae program (BPF_PROG_TEST_RUN): every header it parses, every way
// parsing stops, with the verdict, the exact counters and the exact profile after each frame.
import { after, before, describe, test } from 'node:test';
import { XDP } from '../../src/datapath/layout';
import {
  ETH_P_8021AD,
  ETH_P_8021Q,
  ETH_P_ARP,
  IPPROTO_GRE,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  TCP_ACK,
  TCP_PSH,
  TCP_SYN,
  buildEthFrame,
  buildPacket,
  type Ipv6Ext,
  type PacketSpec,
} from '../lib/packets';
import { Bae, Golden } from './harness';

const mss = Buffer.from([2, 4, 0x05, 0xb4]); // TCP option: MSS 1460
const payload = (n: number) => Buffer.alloc(n, 0x61);

describe('the bae program parses', () => {
  let bae: Bae;
  let golden: Golden;
  before(() => {
    bae = new Bae();
    golden = new Golden(bae);
  });
  after(() => bae?.close());

  // One frame per address pair, so each profile holds exactly what the test sent.
  const send = (spec: PacketSpec, expect: Parameters<Golden['send']>[1], what: string) => {
    const frame = buildPacket(spec).frame;
    golden.send(frame, expect, what);
  };

  test('IPv4 TCP, UDP and ICMP, in both directions of a conversation', () => {
    const a = '10.1.0.1';
    const b = '10.1.0.2';
    send(
      { ip: { version: 4, src: b, dst: a, ttl: 61 }, l4: { proto: 'tcp', sport: 40000, dport: 80, flags: TCP_SYN, options: mss } },
      { outcome: 'tcp', ip: { src: b, dst: a, ttl: 61 }, tcp: { flags: TCP_SYN } },
      'IPv4 TCP SYN b->a',
    );
    send(
      { ip: { version: 4, src: a, dst: b, ttl: 64 }, l4: { proto: 'udp', sport: 53, dport: 40000, payload: payload(30) } },
      { outcome: 'udp', ip: { src: a, dst: b, ttl: 64 } },
      'IPv4 UDP a->b',
    );
    send(
      { ip: { version: 4, src: a, dst: b, ttl: 7 }, l4: { proto: 'icmp', payload: payload(56) } },
      { outcome: 'icmp', ip: { src: a, dst: b, ttl: 7 } },
      'IPv4 ICMP echo a->b',
    );
  });

  test('IPv6 TCP, UDP and ICMPv6', () => {
    const a = '2001:db8::1';
    const b = '2001:db8::1:0';
    send(
      { ip: { version: 6, src: a, dst: b, hopLimit: 255 }, l4: { proto: 'tcp', sport: 1, dport: 2, flags: TCP_PSH | TCP_ACK, seq: 100, payload: payload(10) } },
      { outcome: 'tcp', ip: { src: a, dst: b, ttl: 255 }, tcp: { flags: TCP_PSH | TCP_ACK } },
      'IPv6 TCP a->b',
    );
    send(
      { ip: { version: 6, src: b, dst: a, hopLimit: 1 }, l4: { proto: 'udp', sport: 2, dport: 1, payload: payload(3) } },
      { outcome: 'udp', ip: { src: b, dst: a, ttl: 1 } },
      'IPv6 UDP b->a',
    );
    send(
      { ip: { version: 6, src: b, dst: a, hopLimit: 64 }, l4: { proto: 'icmpv6', payload: payload(8) } },
      { outcome: 'icmpv6', ip: { src: b, dst: a, ttl: 64 } },
      'IPv6 ICMPv6 echo b->a',
    );
  });

  test('one and two VLAN tags, 802.1Q and 802.1ad, and stops at a third', () => {
    send(
      { eth: { vlans: [{ vid: 10 }] }, ip: { version: 4, src: '10.2.0.1', dst: '10.2.0.2' }, l4: { proto: 'udp', sport: 1, dport: 2 } },
      { outcome: 'udp', ip: { src: '10.2.0.1', dst: '10.2.0.2', ttl: 64 } },
      'one 802.1Q tag',
    );
    send(
      {
        eth: { vlans: [{ vid: 100, tpid: ETH_P_8021AD }, { vid: 10, tpid: ETH_P_8021Q }] },
        ip: { version: 6, src: 'fd00::2', dst: 'fd00::1' },
        l4: { proto: 'tcp', sport: 5, dport: 6, flags: TCP_ACK },
      },
      { outcome: 'tcp', ip: { src: 'fd00::2', dst: 'fd00::1', ttl: 64 }, tcp: { flags: TCP_ACK } },
      'Q-in-Q: 802.1ad outer, 802.1Q inner',
    );
    send(
      { eth: { vlans: [{ vid: 1 }, { vid: 2 }, { vid: 3 }] }, ip: { version: 4, src: '10.2.1.1', dst: '10.2.1.2' }, l4: { proto: 'udp', sport: 1, dport: 2 } },
      { outcome: 'vlan_depth' },
      'three tags',
    );
    golden.send(buildEthFrame(ETH_P_ARP, payload(28), { vlans: [{ vid: 7 }] }), { outcome: 'non_ip' }, 'ARP in a VLAN');
  });

  test('IPv4 options up to the largest header (IHL 15)', () => {
    const routerAlert = Buffer.from([0x94, 0x04, 0x00, 0x00]);
    send(
      { ip: { version: 4, src: '10.3.0.1', dst: '10.3.0.2', options: routerAlert }, l4: { proto: 'udp', sport: 1, dport: 2 } },
      { outcome: 'udp', ip: { src: '10.3.0.1', dst: '10.3.0.2', ttl: 64 } },
      'IHL 6 (router alert)',
    );
    send(
      { ip: { version: 4, src: '10.3.0.1', dst: '10.3.0.2', ttl: 9, options: Buffer.alloc(40, 1) }, l4: { proto: 'tcp', sport: 1, dport: 2, flags: TCP_ACK } },
      { outcome: 'tcp', ip: { src: '10.3.0.1', dst: '10.3.0.2', ttl: 9 }, tcp: { flags: TCP_ACK } },
      'IHL 15 (40 bytes of NOP options)',
    );
    send(
      { ip: { version: 4, src: '10.3.0.3', dst: '10.3.0.4', ihl: 4 }, l4: { proto: 'udp', sport: 1, dport: 2 } },
      { outcome: 'bad_ihl' },
      'IHL 4',
    );
    send(
      { ip: { version: 4, src: '10.3.0.3', dst: '10.3.0.4', versionField: 6 }, l4: { proto: 'udp', sport: 1, dport: 2 } },
      { outcome: 'bad_version' },
      'version 6 under ethertype IPv4',
    );
    send(
      { ip: { version: 6, src: 'fd00::3', dst: 'fd00::4', versionField: 4 }, l4: { proto: 'udp', sport: 1, dport: 2 } },
      { outcome: 'bad_version' },
      'version 4 under ethertype IPv6',
    );
  });

  test('IPv6 extension headers of every kind, chains up to the bound, and one past it', () => {
    const kinds: Ipv6Ext[] = [
      { type: 'hop-by-hop' },
      { type: 'routing', length: 24 },
      { type: 'fragment', offset: 0, more: true },
      { type: 'destination', length: 16 },
      { type: 'ah', length: 24 },
    ];
    kinds.forEach((ext, i) => {
      const src = `fd01::${i + 1}:1`;
      const dst = `fd01::${i + 1}:2`;
      send(
        { ip: { version: 6, src, dst, extensions: [ext] }, l4: { proto: 'udp', sport: 1, dport: 2 } },
        { outcome: 'udp', ip: { src, dst, ttl: 64 } },
        `one ${ext.type} header`,
      );
    });
    const six: Ipv6Ext[] = [
      { type: 'hop-by-hop' },
      { type: 'destination' },
      { type: 'routing' },
      { type: 'fragment' },
      { type: 'ah' },
      { type: 'destination', length: 32 },
    ];
    send(
      { ip: { version: 6, src: 'fd02::1', dst: 'fd02::2', extensions: six }, l4: { proto: 'tcp', sport: 1, dport: 2, flags: TCP_ACK } },
      { outcome: 'tcp', ip: { src: 'fd02::1', dst: 'fd02::2', ttl: 64 }, tcp: { flags: TCP_ACK } },
      'a chain of six (the bound)',
    );
    send(
      { ip: { version: 6, src: 'fd02::3', dst: 'fd02::4', extensions: [...six, { type: 'destination' }] }, l4: { proto: 'tcp', sport: 1, dport: 2 } },
      { outcome: 'ext_depth', ip: { src: 'fd02::3', dst: 'fd02::4', ttl: 64 } },
      'a chain of seven (one past the bound) still counts in its conversation',
    );
  });

  test('fragments: first fragments parse on, later ones stop with their conversation counted', () => {
    send(
      { ip: { version: 4, src: '10.4.0.1', dst: '10.4.0.2', moreFragments: true }, l4: { proto: 'udp', sport: 1, dport: 2, payload: payload(16) } },
      { outcome: 'udp', ip: { src: '10.4.0.1', dst: '10.4.0.2', ttl: 64 } },
      'IPv4 first fragment',
    );
    send(
      { ip: { version: 4, src: '10.4.0.1', dst: '10.4.0.2', fragOffset: 3 }, l4: { proto: 'udp', sport: 1, dport: 2 } },
      { outcome: 'fragment', ip: { src: '10.4.0.1', dst: '10.4.0.2', ttl: 64 } },
      'IPv4 last fragment',
    );
    send(
      { ip: { version: 6, src: 'fd03::1', dst: 'fd03::2', extensions: [{ type: 'fragment', offset: 185 }] }, l4: { proto: 'udp', sport: 1, dport: 2 } },
      { outcome: 'fragment', ip: { src: 'fd03::1', dst: 'fd03::2', ttl: 64 } },
      'IPv6 later fragment',
    );
  });

  test('what it does not know: other ethertypes and other upper layers, passed and counted', () => {
    golden.send(buildEthFrame(ETH_P_ARP, payload(28)), { outcome: 'non_ip' }, 'ARP');
    send(
      { ip: { version: 4, src: '10.5.0.1', dst: '10.5.0.2' }, l4: { proto: IPPROTO_GRE, payload: payload(24) } },
      { outcome: 'unknown_l4', ip: { src: '10.5.0.1', dst: '10.5.0.2', ttl: 64 } },
      'GRE',
    );
    send(
      { ip: { version: 4, src: '10.5.0.1', dst: '10.5.0.2' }, l4: { proto: IPPROTO_ICMPV6, payload: payload(8) } },
      { outcome: 'unknown_l4', ip: { src: '10.5.0.1', dst: '10.5.0.2', ttl: 64 } },
      'ICMPv6 inside IPv4',
    );
    send(
      { ip: { version: 6, src: 'fd04::1', dst: 'fd04::2' }, l4: { proto: IPPROTO_ICMP, payload: payload(8) } },
      { outcome: 'unknown_l4', ip: { src: 'fd04::1', dst: 'fd04::2', ttl: 64 } },
      'ICMP inside IPv6',
    );
    send(
      { ip: { version: 4, src: '10.5.1.1', dst: '10.5.1.2' }, l4: { proto: 'tcp', sport: 1, dport: 2, flags: TCP_SYN, dataOffset: 4 } },
      { outcome: 'bad_l4', ip: { src: '10.5.1.1', dst: '10.5.1.2', ttl: 64 } },
      'TCP data offset 4: counted in the conversation, its flags are not',
    );
  });

  test('bytes are the frame as on the wire, Ethernet padding included', () => {
    const frame = buildPacket({ ip: { version: 4, src: '10.6.0.1', dst: '10.6.0.2' }, l4: { proto: 'udp', sport: 1, dport: 2, payload: payload(2) } }).frame;
    const padded = Buffer.concat([frame, Buffer.alloc(60 - frame.length)]);
    golden.send(padded, { outcome: 'udp', ip: { src: '10.6.0.1', dst: '10.6.0.2', ttl: 64 } }, 'a 44-byte frame padded to 60');
  });

  test('a host talking to itself counts in a->b', () => {
    for (let i = 0; i < 2; i++) {
      send(
        { ip: { version: 4, src: '10.7.0.1', dst: '10.7.0.1' }, l4: { proto: 'udp', sport: 1 + i, dport: 2 - i } },
        { outcome: 'udp', ip: { src: '10.7.0.1', dst: '10.7.0.1', ttl: 64 } },
        `to itself #${i}`,
      );
    }
  });

  test('every frame got XDP_PASS in ingress mode', () => {
    const s = bae.stats();
    const total = Object.values(s.parse).reduce((a, b) => a + b, 0n);
    if (s.verdicts.pass !== total) throw new Error(`pass ${s.verdicts.pass} != frames ${total}`);
    if (XDP.pass !== 2) throw new Error('XDP_PASS is 2');
  });
});
