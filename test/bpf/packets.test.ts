// test-unit: needs no root and no kernel (make test-unit).
// The golden-packet builder (test/lib/packets.ts) against an independent dissector: tshark reads
// the frames from a pcap, names every layer the builder meant and finds every checksum good.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { TCP_ACK, TCP_PSH, TCP_SYN, buildPacket, type PacketSpec } from '../lib/packets';

function writePcap(file: string, frames: Buffer[]): void {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  const records = frames.map((f, i) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(i, 0);
    r.writeUInt32LE(f.length, 8);
    r.writeUInt32LE(f.length, 12);
    return Buffer.concat([r, f]);
  });
  fs.writeFileSync(file, Buffer.concat([header, ...records]));
}

const cases: [PacketSpec, string][] = [
  [{ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, l4: { proto: 'tcp', sport: 1000, dport: 80, flags: TCP_SYN, options: Buffer.from([2, 4, 5, 0xb4]) } }, 'eth:ethertype:ip:tcp'],
  [{ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', options: Buffer.from([0x94, 4, 0, 0]) }, l4: { proto: 'udp', sport: 40001, dport: 40002, payload: Buffer.from('hello') } }, 'eth:ethertype:ip:udp'],
  [{ eth: { vlans: [{ vid: 10 }] }, ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, l4: { proto: 'icmp', payload: Buffer.alloc(11, 7) } }, 'eth:ethertype:vlan:ethertype:ip:icmp'],
  [{ eth: { vlans: [{ vid: 100, tpid: 0x88a8 }, { vid: 10 }] }, ip: { version: 6, src: 'fd00::1', dst: 'fd00::2' }, l4: { proto: 'tcp', sport: 1, dport: 2, flags: TCP_PSH | TCP_ACK, payload: Buffer.alloc(33, 1) } }, 'eth:ethertype:ieee8021ad:ethertype:vlan:ethertype:ipv6:tcp'],
  [{ ip: { version: 6, src: '2001:db8::1', dst: '2001:db8::2', extensions: [{ type: 'hop-by-hop' }, { type: 'destination', length: 16 }] }, l4: { proto: 'udp', sport: 1, dport: 2, payload: Buffer.alloc(3) } }, 'eth:ethertype:ipv6:ipv6.hopopts:ipv6.dstopts:udp'],
  [{ ip: { version: 6, src: '2001:db8::1', dst: '2001:db8::2' }, l4: { proto: 'icmpv6', payload: Buffer.alloc(9, 2) } }, 'eth:ethertype:ipv6:icmpv6'],
];

test('tshark decodes every layer the builder made and finds every checksum good', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bae-test-${process.pid}-`));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'frames.pcap');
  writePcap(file, cases.map(([spec]) => buildPacket(spec).frame));
  const fields = ['frame.protocols', 'ip.checksum.status', 'tcp.checksum.status', 'udp.checksum.status', 'icmp.checksum.status', 'icmpv6.checksum.status'];
  const out = execFileSync(
    'tshark',
    ['-r', file, '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const rows = out.trimEnd().split('\n').map((line) => line.split('|'));
  assert.equal(rows.length, cases.length);
  rows.forEach((row, i) => {
    const [protocols, ...statuses] = row;
    assert.equal(protocols!.replace(/:data$/, ''), cases[i]![1], `frame ${i + 1}: layers`);
    const checked = statuses.filter((s) => s !== '');
    assert.ok(checked.length >= 1, `frame ${i + 1}: some checksum was verified`);
    // Wireshark's checksum status: 0 bad, 1 good, 2 unverified.
    assert.deepEqual(checked, checked.map(() => '1'), `frame ${i + 1}: ${fields.slice(1).join(', ')} = ${statuses.join(', ')}`);
  });
});
