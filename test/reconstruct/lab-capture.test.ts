// Capture in the lab: bae inline between client and server, a seeded loss policy with
// `capture: { drops: true }` on a bounded UDP stream. The frames the server never received are
// exactly the frames `bae capture` holds, each byte for byte as the client sent it (tshark on the
// client's interface records what left it).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run } from '../../src/lab';
import { createBaeLab, type BaeLab } from '../lib/bae-lab';
import { pcapFrames as pcapFileFrames } from '../lib/pcap-file';
import { until } from '../lib/wait';

const pcapFrames = (file: string): Buffer[] => pcapFileFrames(file).map((f) => f.data);

const PORT = 9100;
const COUNT = 400;
/** Ethernet 14 + IPv4 20 + UDP 8: where the payload's sequence number starts. */
const PAYLOAD_AT = 42;

// The server: every datagram's sequence number, from the first (waited for up to 30 s) until
// 2 s without one (bounded by timeout).
const SERVER_PY = `
import json, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("0.0.0.0", ${PORT})); s.settimeout(30.0); got = []
print("ready", flush=True)
while True:
    try: b, _ = s.recvfrom(65536)
    except socket.timeout: break
    got.append(int.from_bytes(b[:4], "big")); s.settimeout(2.0)
print(json.dumps(got), flush=True)
`;

// The client: datagrams of 64-1460 bytes, each starting with its sequence number, paced.
const CLIENT_PY = (server: string, first: number, count: number) => `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(${first}, ${first + count}):
    n = 64 + (i * 97) % 1397
    s.sendto(i.to_bytes(4, "big") + bytes((i * 31 + k) & 0xff for k in range(n - 4)), ("${server}", ${PORT}))
    time.sleep(0.001)
`;

describe('capture in the lab', () => {
  let bl: BaeLab;
  let dir: string;
  before(() => {
    bl = createBaeLab('cap');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-test-capture-'));
  });
  after(() => {
    bl?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Sends `count` datagrams numbered from `first` through the lab: each frame as tshark saw it
   * leave the client (by number), and the numbers the server never received, in order. */
  async function stream(first: number, count: number): Promise<{ sent: Map<number, Buffer>; lost: number[] }> {
    const { lab } = bl;
    // What leaves the client: tshark on its interface, until it has `count` frames (at most 60
    // s: it stops by itself and writes all it holds; a signal could cut off the last frames).
    const pcap = path.join(dir, `client-${first}.pcap`);
    const tshark = spawn('ip', ['netns', 'exec', lab.client.ns, 'timeout', '60', 'tshark', '-i', lab.client.iface, '-c', String(count), '-w', pcap, '-F', 'pcap', '-f', `udp dst port ${PORT}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let tsharkErr = '';
    tshark.stderr.on('data', (d: Buffer) => (tsharkErr += d.toString()));
    const tsharkDone = new Promise<void>((resolve) => tshark.on('close', () => resolve()));
    const server = spawn('ip', ['netns', 'exec', lab.server.ns, 'timeout', '60', 'python3', '-c', SERVER_PY], { stdio: ['ignore', 'pipe', 'pipe'] });
    let serverOut = '';
    let serverErr = '';
    server.stdout.on('data', (d: Buffer) => (serverOut += d.toString()));
    server.stderr.on('data', (d: Buffer) => (serverErr += d.toString()));
    const serverDone = new Promise<number | null>((resolve) => server.on('close', resolve));
    try {
      await until('tshark to capture', () => /Capturing on/.test(tsharkErr));
      await until('the server to listen', () => serverOut.startsWith('ready'));
      const client = spawnSync('ip', ['netns', 'exec', lab.client.ns, 'timeout', '60', 'python3', '-c', CLIENT_PY(lab.server.ipv4, first, count)], { encoding: 'utf8' });
      assert.equal(client.status, 0, `client: ${client.stderr}`);
      assert.equal(await serverDone, 0, `server: ${serverErr}`);
    } finally {
      if (server.exitCode === null) server.kill('SIGKILL');
      const stop = setTimeout(() => tshark.kill('SIGINT'), 10_000);
      await tsharkDone;
      clearTimeout(stop);
    }
    const received = new Set(JSON.parse(serverOut.split('\n')[1]!) as number[]);
    const sent = new Map<number, Buffer>();
    for (const f of pcapFrames(pcap)) sent.set(f.readUInt32BE(PAYLOAD_AT), f);
    const missing = Array.from({ length: count }, (_, k) => first + k).filter((k) => !sent.has(k));
    assert.equal(sent.size, count, `tshark saw every datagram leave the client (missing ${missing.join(' ')})`);
    const lost = [...sent.keys()].filter((k) => !received.has(k)).sort((a, b) => a - b);
    process.stderr.write(`lab capture: datagrams ${first}..${first + count - 1} sent, ${received.size} received, ${lost.length} lost\n`);
    assert.ok(lost.length > 5, `the policy lost datagrams (${lost.length})`);
    return { sent, lost };
  }

  it('keeps exactly the frames a seeded loss policy dropped, byte for byte as the client sent them', async () => {
    const { lab, cli } = bl;
    const loaded = cli(['load', '--iface', lab.bae.clientPort, '--peer', lab.bae.serverPort]);
    assert.equal(loaded.status, 0, `bae load: ${loaded.stderr}`);
    run(['ip', 'netns', 'exec', lab.client.ns, 'ping', '-c', '1', '-W', '2', lab.server.ipv4]);
    const policy = bl.write(
      'capture.yaml',
      `apiVersion: bae/v1
kind: Policy
metadata: { name: lossy-capture }
spec:
  match: { proto: udp, dst: ${lab.server.ipv4}/32, dport: ${PORT} }
  seed: 11
  actions:
    - loss: { probability: 10 }
    - capture: { drops: true, snaplen: 1536 }
`,
    );
    const applied = cli(['policy', 'apply', policy]);
    assert.equal(applied.status, 0, `policy apply: ${applied.stderr}`);

    // First stream: read as JSON lines.
    const one = await stream(0, COUNT);
    const res = cli(['capture', '--json']);
    assert.equal(res.status, 0, `bae capture: ${res.stderr}`);
    const records = res.stdout
      .trim()
      .split('\n')
      .filter((l) => l)
      .map((l) => JSON.parse(l) as { kind: string; policy: string; action: string; reason: string; origLen: number; data: string; tsNs: string; ifindex: number });
    const seqs = records.map((r) => Buffer.from(r.data, 'hex').readUInt32BE(PAYLOAD_AT));
    assert.deepEqual(seqs, one.lost, 'the capture holds exactly the datagrams the server never received, in order');
    for (const r of records) {
      const data = Buffer.from(r.data, 'hex');
      const seq = data.readUInt32BE(PAYLOAD_AT);
      assert.ok(data.equals(one.sent.get(seq)!), `datagram ${seq}: the captured frame is the frame the client sent, byte for byte`);
      assert.equal(r.origLen, data.length);
      assert.equal(r.kind, 'dropped');
      assert.equal(r.policy, 'lossy-capture');
      assert.equal(r.action, 'loss');
      assert.equal(r.reason, 'seeded loss');
      assert.ok(Math.abs(Number(BigInt(r.tsNs) / 1_000_000n) - Date.now()) < 120_000, 'the time is wall-clock time of this run');
    }

    // Second stream: into a pcap file, which tshark reads.
    const two = await stream(COUNT, COUNT / 2);
    const file = path.join(dir, 'captured.pcap');
    const saved = cli(['capture', '--pcap', file]);
    assert.equal(saved.status, 0, `bae capture --pcap: ${saved.stderr}`);
    assert.equal(saved.stdout, '', 'with --pcap nothing is printed');
    const frames = pcapFrames(file);
    assert.deepEqual(frames.map((f) => f.readUInt32BE(PAYLOAD_AT)), two.lost, 'the pcap file holds exactly the lost datagrams');
    for (const f of frames) assert.ok(f.equals(two.sent.get(f.readUInt32BE(PAYLOAD_AT))!), 'the pcap file holds the frames byte for byte');
    const read = spawnSync('tshark', ['-r', file, '-T', 'fields', '-e', 'udp.dstport'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(read.status, 0, `tshark reads the pcap file: ${read.stderr}`);
    assert.deepEqual(read.stdout.trim().split('\n'), frames.map(() => String(PORT)), 'tshark sees each frame of the file as the UDP datagram it was');

    const status = cli(['status', '--json']);
    assert.equal(status.status, 0, status.stderr);
    const policyStats = (JSON.parse(status.stdout) as { policy: { captured: string; captureLost: string } }).policy;
    assert.equal(policyStats.captured, String(one.lost.length + two.lost.length), 'bae status counts the captured frames');
    assert.equal(policyStats.captureLost, '0');
  });
});
