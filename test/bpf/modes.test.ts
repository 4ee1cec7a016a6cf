// Ingress and inline mode: what the forwarding stage answers, parsed or not. Under
// BPF_PROG_TEST_RUN a redirect is only a verdict, so the port map may name the loopback device
// (ifindex 1, the only device the test may count on); lab tests check real delivery.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { XDP } from '../../src/datapath/layout';
import { ETH_P_ARP, buildEthFrame, buildPacket } from '../lib/packets';
import { Bae, Golden, u32 } from './harness';

const LO = 1;
const udp = (src: string, dst: string) => buildPacket({ ip: { version: 4, src, dst }, l4: { proto: 'udp', sport: 1, dport: 2 } }).frame;

describe('inline mode', () => {
  let bae: Bae;
  let golden: Golden;
  before(() => {
    bae = new Bae({ mode: 'inline' });
    golden = new Golden(bae);
  });
  after(() => bae?.close());

  test('without a port entry for the ingress port, frames pass and are counted as such', () => {
    golden.send(
      udp('10.12.0.1', '10.12.0.2'),
      { outcome: 'udp', ip: { src: '10.12.0.1', dst: '10.12.0.2', ttl: 64 }, ingressIfindex: LO, extra: { inlineNoPort: 1 } },
      'no port entry',
    );
  });

  test('with a port entry, every frame is redirected: parsed, unknown or truncated', () => {
    bae.ports.update(u32(LO), u32(LO));
    const ip = { src: '10.12.0.1', dst: '10.12.0.2', ttl: 64 };
    golden.send(udp(ip.src, ip.dst), { outcome: 'udp', ip, ingressIfindex: LO, verdict: XDP.redirect }, 'UDP');
    golden.send(buildEthFrame(ETH_P_ARP, Buffer.alloc(28)), { outcome: 'non_ip', ingressIfindex: LO, verdict: XDP.redirect }, 'ARP');
    golden.send(udp(ip.src, ip.dst).subarray(0, 30), { outcome: 'trunc_l3', ingressIfindex: LO, verdict: XDP.redirect }, 'cut IPv4 header');
    golden.send(udp(ip.src, ip.dst).subarray(0, 40), { outcome: 'trunc_l4', ip, ingressIfindex: LO, verdict: XDP.redirect }, 'cut UDP header');
    assert.equal(bae.ports.delete(u32(LO)), true);
    golden.send(udp(ip.src, ip.dst), { outcome: 'udp', ip, ingressIfindex: LO, extra: { inlineNoPort: 1 } }, 'entry removed');
  });
});

describe('ingress mode', () => {
  test('passes every frame even when the port map has an entry', () => {
    const bae = new Bae({ mode: 'ingress' });
    try {
      const golden = new Golden(bae);
      bae.ports.update(u32(LO), u32(LO));
      golden.send(udp('10.12.1.1', '10.12.1.2'), { outcome: 'udp', ip: { src: '10.12.1.1', dst: '10.12.1.2', ttl: 64 }, ingressIfindex: LO }, 'UDP');
      golden.send(buildEthFrame(ETH_P_ARP, Buffer.alloc(28)), { outcome: 'non_ip', ingressIfindex: LO }, 'ARP');
    } finally {
      bae.close();
    }
  });
});
