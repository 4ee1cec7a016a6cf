// pcapng export read back by a real tshark (every packet, its comment, its bytes and time), and
// import of captures that others wrote: scapy's pcap, and the same converted by editcap to
// nanosecond pcap and to pcapng. Through the CLI (bae export / bae import / bae store info) on
// a real SQLite file.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Store, type PacketRecord } from '../../src/store';
import { assertFails, bae } from '../lib/bae-cli';
import { rng } from '../lib/rng';
import { packet } from './frames';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const tools = ['tshark', 'editcap'].filter((t) => !have(t));
const scapy = spawnSync('/usr/bin/python3', ['-c', 'import scapy']).status === 0;
if ((tools.length || !scapy) && process.env.CI === 'true') assert.fail(`missing: ${[...tools, ...(scapy ? [] : ['python3-scapy'])].join(', ')} (scripts/install-deps.sh)`);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bae-test-${process.pid}-pcap-`));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface TsharkFrame {
  number: number;
  epochNs: bigint;
  len: number;
  capLen: number;
  comment: string;
  iface: string;
  raw: string;
}

/** What tshark reads in `file`: per frame its time, lengths, comment, interface and bytes (two passes). */
function tsharkRead(file: string): TsharkFrame[] {
  const run = (args: string[]) => execFileSync('tshark', ['-r', file, ...args], { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] });
  const fields = ['frame.number', 'frame.time_epoch', 'frame.len', 'frame.cap_len', 'frame.comment', 'frame.interface_name'];
  const rows = run(['-T', 'fields', '-E', 'separator=/t', ...fields.flatMap((f) => ['-e', f])]).split('\n').filter((l) => l !== '');
  const raw = (JSON.parse(run(['-T', 'json', '-x', '-j', 'frame'])) as { _source: { layers: { frame_raw: [string] } } }[]).map((f) => f._source.layers.frame_raw[0]);
  assert.equal(raw.length, rows.length);
  return rows.map((line, i) => {
    const [number, epoch, len, capLen, comment, iface] = line.split('\t');
    const [sec, frac = ''] = epoch!.split('.');
    return {
      number: Number(number),
      epochNs: BigInt(sec!) * 1_000_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9)),
      len: Number(len),
      capLen: Number(capLen),
      comment: comment ?? '',
      iface: iface ?? '',
      raw: raw[i]!,
    };
  });
}

describe('pcapng export and pcap import', { skip: (tools.length > 0 || !scapy) && `missing: ${tools.join(', ')}${scapy ? '' : ' python3-scapy'}` }, () => {
  const db = path.join(dir, 'x.db');
  const sent: PacketRecord[] = [];
  before(() => {
    const r = rng(15);
    const kinds = ['captured', 'dropped', 'injected', 'reconstructed'] as const;
    for (let i = 0; i < 300; i++) {
      const size = r.int(60, 1514);
      const p = packet(i, { size, kind: r.pick(kinds), policy: r.pick(['lossy', 'slow', null]), src: r.chance(0.5) ? '10.0.0.1' : '10.0.0.3', dst: '10.0.0.2' });
      p.tsNs = 1_765_000_000_000_000_000n + BigInt(i) * 1_234_567n + BigInt(r.int(0, 999));
      p.ifindex = r.pick([2, 7]);
      p.action = r.pick(['loss', 'capture', 'inject']);
      p.reason = r.chance(0.3) ? null : r.pick(['seeded loss', 'tcp-bad-checksum', 'gilbert-elliott bad state']);
      if (r.chance(0.2)) {
        p.origLen = size;
        p.data = p.data.subarray(0, Math.min(size, 96)); // snaplen 96
      }
      sent.push(p);
    }
    const s = Store.open(db);
    s.insertPackets(sent);
    s.close();
  });

  test('tshark reads every exported packet byte-exact, at its nanosecond, with its comment and interface', () => {
    const out = path.join(dir, 'all.pcapng');
    const res = bae(['export', '--pcap', out, '--db', db, '--json']);
    assert.equal(res.status, 0, res.stderr);
    const summary = JSON.parse(res.stdout) as { packets: number; interfaces: number };
    assert.deepEqual(summary, { file: out, packets: 300, interfaces: 2 });
    const frames = tsharkRead(out);
    assert.equal(frames.length, sent.length);
    const order = [...sent].sort((a, b) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0));
    frames.forEach((f, i) => {
      const p = order[i]!;
      assert.equal(f.raw, p.data.toString('hex'), `frame ${f.number} bytes`);
      assert.equal(f.epochNs, p.tsNs, `frame ${f.number} time`);
      assert.equal(f.capLen, p.data.length);
      assert.equal(f.len, p.origLen);
      const want = [`bae: ${p.kind}`, p.policy && `policy=${p.policy}`, `action=${p.action}`, p.reason && `reason=${p.reason}`].filter(Boolean).join(' ');
      assert.equal(f.comment, want, `frame ${f.number} comment`);
      assert.ok(f.iface !== '', `frame ${f.number} names its interface`);
    });
  });

  test('export filters by kind, policy, time and conversation', () => {
    const count = (args: string[]) => {
      const out = path.join(dir, 'f.pcapng');
      const res = bae(['export', '--pcap', out, '--db', db, ...args]);
      assert.equal(res.status, 0, res.stderr);
      assert.match(res.stdout, /^\d+ packets written to /);
      return tsharkRead(out);
    };
    const dropped = count(['--kind', 'dropped']);
    assert.equal(dropped.length, sent.filter((p) => p.kind === 'dropped').length);
    assert.ok(dropped.every((f) => f.comment.startsWith('bae: dropped')));
    assert.equal(count(['--policy', 'lossy']).length, sent.filter((p) => p.policy === 'lossy').length);
    const mid = sent[150]!.tsNs;
    const since = new Date(Number(mid / 1_000_000n)).toISOString();
    const sinceMs = (mid / 1_000_000n) * 1_000_000n;
    assert.equal(count(['--since', since]).length, sent.filter((p) => p.tsNs >= sinceMs).length);
    // Either direction of the conversation; truncated frames still carry the IP header.
    assert.equal(count(['--conversation', '10.0.0.2,10.0.0.3']).length, sent.filter((p) => p.data.readUInt8(29) === 3).length);
    assert.equal(count(['--conversation', '10.0.0.9,10.0.0.2']).length, 0);
  });

  test('a pcap that scapy wrote, as nanosecond pcap and as pcapng (editcap), imports byte-exact as a scenario', () => {
    const pcap = path.join(dir, 'scapy.pcap');
    const hex = execFileSync(
      '/usr/bin/python3',
      [
        '-c',
        `
import sys, json
from scapy.all import Ether, IP, IPv6, TCP, UDP, Raw, wrpcap
ps = []
for i in range(50):
    l3 = IP(src='192.168.1.%d' % (i % 5 + 1), dst='192.168.1.100') if i % 3 else IPv6(src='fd00::1', dst='fd00::2')
    l4 = TCP(sport=1000 + i, dport=80, flags='S', seq=i) if i % 2 else UDP(sport=2000 + i, dport=53)
    p = Ether(src='02:00:00:00:00:01', dst='02:00:00:00:00:02') / l3 / l4 / Raw(bytes([i]) * (i * 20))
    p.time = 1765000000 + i * 0.25 + 0.000001 * i
    ps.append(p)
wrpcap(sys.argv[1], ps)
print(json.dumps([[bytes(p).hex(), int(round(p.time * 1e6))] for p in ps]))`,
        pcap,
      ],
      { encoding: 'utf8' },
    );
    const want = JSON.parse(hex) as [string, number][];
    const nsPcap = path.join(dir, 'scapy-ns.pcap');
    const ng = path.join(dir, 'scapy.pcapng');
    execFileSync('editcap', ['-F', 'nsecpcap', pcap, nsPcap]);
    execFileSync('editcap', ['-F', 'pcapng', pcap, ng]);
    for (const [file, name, format] of [[pcap, 'from-scapy', 'pcap'], [nsPcap, 'from-scapy-ns', 'pcap'], [ng, 'from-editcap', 'pcapng']] as const) {
      const res = bae(['import', '--pcap', file, '--name', name, '--db', db, '--json']);
      assert.equal(res.status, 0, res.stderr);
      assert.deepEqual(JSON.parse(res.stdout), { name, scenarioId: JSON.parse(res.stdout).scenarioId, packets: 50, format });
      const s = Store.open(db, { readonly: true });
      try {
        const got = [...s.packets({ scenario: name })];
        assert.equal(got.length, want.length);
        got.forEach((g, i) => {
          assert.equal(g.data.toString('hex'), want[i]![0], `${name} packet ${i}`);
          assert.equal(g.tsNs, BigInt(want[i]![1]) * 1000n, `${name} packet ${i} time`);
          assert.equal(g.kind, 'imported');
          assert.equal(g.origLen, g.data.length);
        });
        const sc = s.scenarios().find((x) => x.name === name)!;
        assert.equal(sc.packets, 50);
        assert.equal(sc.durationMs, 12_250);
      } finally {
        s.close();
      }
    }
    // And out again: tshark reads the scenario as it came in.
    const back = path.join(dir, 'back.pcapng');
    assert.equal(bae(['export', '--pcap', back, '--db', db, '--scenario', 'from-scapy']).status, 0);
    assert.deepEqual(tsharkRead(back).map((f) => f.raw), want.map((w) => w[0]));

    const info = bae(['store', 'info', '--db', db, '--json']);
    assert.equal(info.status, 0, info.stderr);
    const i = JSON.parse(info.stdout) as { counts: { packets: number; scenarios: number }; schemaVersion: number; oldestNs: string };
    assert.equal(i.counts.packets, 300 + 150);
    assert.equal(i.counts.scenarios, 3);
    assert.equal(typeof i.oldestNs, 'string');
  });

  test('bad input is refused by name and changes nothing', () => {
    const junk = path.join(dir, 'junk.pcap');
    fs.writeFileSync(junk, 'GIF89a, not a capture');
    assertFails(bae(['import', '--pcap', junk, '--name', 'junk', '--db', db]), 2, new RegExp(`^bae: ${junk}: not a pcap or pcapng file \\(magic 0x`));
    const truncated = path.join(dir, 'cut.pcap');
    fs.writeFileSync(truncated, fs.readFileSync(path.join(dir, 'scapy.pcap')).subarray(0, 200));
    assertFails(bae(['import', '--pcap', truncated, '--name', 'cut', '--db', db]), 2, /^bae: .*cut\.pcap: truncated (packet|record header) at byte \d+/);
    assertFails(bae(['import', '--pcap', path.join(dir, 'scapy.pcap'), '--name', 'from-scapy', '--db', db]), 1, /^bae: store .*x\.db: a scenario named 'from-scapy' exists already/);
    const s = Store.open(db, { readonly: true });
    assert.deepEqual(s.scenarios().map((x) => x.name), ['from-scapy', 'from-scapy-ns', 'from-editcap']);
    s.close();
    assertFails(bae(['export', '--pcap', path.join(dir, 'n.pcapng'), '--db', path.join(dir, 'none.db')]), 1, /^bae: store .*none\.db: no such database file/);
    assert.equal(fs.existsSync(path.join(dir, 'none.db')), false, 'export creates no database');
    assertFails(bae(['export', '--pcap', path.join(dir, 'n.pcapng'), '--db', db, '--conversation', '10.0.0.1']), 2, /--conversation.*two IP addresses/);
    assertFails(bae(['export', '--pcap', path.join(dir, 'n.pcapng'), '--db', db, '--since', 'yesterday']), 2, /--since.*expected a time/);
    assertFails(bae(['export', '--db', db]), 2, /^bae: bae export needs --pcap FILE/);
    assertFails(bae(['import', '--pcap', path.join(dir, 'absent.pcap'), '--db', db]), 2, /^bae: cannot read .*absent\.pcap: ENOENT/);
    assertFails(bae(['export', '--pcap', path.join(dir, 'no/such/dir.pcapng'), '--db', db]), 2, /^bae: cannot write .*dir\.pcapng: ENOENT/);
  });
});
