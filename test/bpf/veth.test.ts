// The program on a real port: attached in native mode to a veth in a test namespace, it counts
// the echo requests a bounded ping sends from a second namespace, exactly, at their wire size.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../lib/fixtures';
import { createNetns, createNetnsWithVeth } from '../lib/netns';
import { BAE_OBJECT } from './harness';

const LAYOUT = path.join(repoRoot, 'dist/src/datapath/layout.js');
const PINGS = 5;

interface Seen {
  dir: number;
  toA: Record<string, string | string[] | number>;
  fromA: Record<string, string | string[] | number>;
  stats: { verdicts: Record<string, string>; parse: Record<string, string> };
}

test('on a veth in native mode, a ping from another namespace is counted frame by frame at its wire size', async () => {
  const ns = createNetnsWithVeth('dpv');
  const peer = createNetns('dpw');
  try {
    const [a, b] = ns.veth;
    execFileSync('ip', ['-n', ns.name, 'link', 'set', b, 'netns', peer.name]);
    execFileSync('ip', ['-n', ns.name, 'addr', 'add', '10.77.0.1/24', 'dev', a]);
    execFileSync('ip', ['-n', peer.name, 'addr', 'add', '10.77.0.2/24', 'dev', b]);
    execFileSync('ip', ['-n', peer.name, 'link', 'set', b, 'up']);
    // Inside the namespace: load, attach, ping from the peer (bounded), read back, detach.
    const seen = await ns.runNode<Seen>(
      `
      const L = require(${JSON.stringify(LAYOUT)});
      const { execFileSync } = require('node:child_process');
      const coll = dp.loadCollection(${JSON.stringify(BAE_OBJECT)}, { constants: { bae_mode: 0, bae_clock: 0 } });
      const link = dp.attachXdp({ program: coll.program('bae_xdp'), iface: ${JSON.stringify(a)}, mode: 'native' });
      try {
        execFileSync('nsenter', ['--net=${peer.path}', 'ping', '-n', '-q', '-c', '${PINGS}', '-i', '0.2', '-W', '2', '10.77.0.1'], { stdio: 'ignore', timeout: 10000 });
        const { key, dir } = L.convKeyFor('10.77.0.2', '10.77.0.1');
        const conv = L.mergeConvPerCpu(coll.map('bae_convs').lookupPerCpu(L.encodeConvKey(key)));
        const stats = L.sumStatsPerCpu(coll.map('bae_stats').lookupPerCpu(Buffer.alloc(4)));
        const plain = (o) => JSON.parse(JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
        return { dir, toA: plain(conv.dir[dir]), fromA: plain(conv.dir[1 - dir]), stats: plain(stats) };
      } finally {
        link.close();
        coll.close();
      }`,
      30_000,
    );
    // 10.77.0.2 -> 10.77.0.1: the higher address sends, so the requests are b->a of the key.
    assert.equal(seen.dir, 1);
    // An echo request of ping's default 56 data bytes: 14 + 20 + 8 + 56 = 98 bytes on the wire.
    assert.equal(seen.toA.packets, String(PINGS));
    assert.equal(seen.toA.bytes, String(98 * PINGS));
    assert.deepEqual([seen.toA.sizeMin, seen.toA.sizeMax, seen.toA.ttlMin, seen.toA.ttlMax], [98, 98, 64, 64]);
    assert.deepEqual(seen.toA.sizeHist, ['0', String(PINGS), '0', '0', '0', '0', '0', '0']);
    // ping -i 0.2: four gaps of about 200 ms (the kernel clock, loosely: the machine is shared).
    // The span first..last is exact whatever CPUs the pings landed on; the inter-arrival sum
    // covers only gaps between packets of one CPU copy (docs/profiles.md): each copy's gaps add
    // up to at most the span, so the sum is at most the span times the copies that saw pings
    // (CI saw 1.22 s over a 0.81 s span from two CPUs), and it is the whole span exactly when
    // one CPU saw every packet.
    const span = Number(BigInt(seen.toA.lastSeenNs as string) - BigInt(seen.toA.firstSeenNs as string));
    assert.ok(span > 0.7e9 && span < 3e9, `first-to-last span ${span} ns for ${PINGS - 1} gaps of 200 ms`);
    const iat = BigInt(seen.toA.iatSumNs as string);
    const copies = BigInt(PINGS) - BigInt(seen.toA.iatCount as string);
    assert.ok(copies >= 1n, `${copies} CPU copies saw the pings`);
    assert.ok(iat <= copies * BigInt(span), `inter-arrival sum ${iat} ns exceeds ${copies} x the span ${span} ns`);
    if (seen.toA.iatCount === String(PINGS - 1)) assert.equal(iat, BigInt(span), 'one CPU saw every ping');
    // XDP sees what arrives at the port: the replies leave through it and are not counted.
    assert.equal(seen.fromA.packets, '0');
    assert.ok(Number(seen.stats.parse.icmp) >= PINGS);
    assert.ok(Number(seen.stats.parse.non_ip) >= 1, 'the ARP request before the first ping');
    const frames = Object.values(seen.stats.parse).reduce((n, v) => n + Number(v), 0);
    assert.equal(Number(seen.stats.verdicts.pass), frames, 'every frame passed');
  } finally {
    ns.remove();
    peer.remove();
  }
});
