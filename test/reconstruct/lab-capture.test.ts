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

const PORT = 9100;
const COUNT = 400;
/** Ethernet 14 + IPv4 20 + UDP 8: where the payload's sequence number starts. */
const PAYLOAD_AT = 42;

// The server: every datagram's sequence number, until 2 s without one (bounded by timeout).
const SERVER_PY = `
import json, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("0.0.0.0", ${PORT})); s.settimeout(2.0); got = []
print("ready", flush=True)
while True:
    try: b, _ = s.recvfrom(65536)
    except socket.timeout: break
    got.append(int.from_bytes(b[:4], "big"))
print(json.dumps(got), flush=True)
`;

// The client: COUNT datagrams of 64-1460 bytes, each starting with its sequence number, paced.
const CLIENT_PY = (server: string) => `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(${COUNT}):
    n = 64 + (i * 97) % 1397
    s.sendto(i.to_bytes(4, "big") + bytes((i * 31 + k) & 0xff for k in range(n - 4)), ("${server}", ${PORT}))
    time.sleep(0.001)
`;

/** The frames of a classic pcap file (either byte order of the magic, µs or ns). */
function pcapFrames(file: string): Buffer[] {
  const buf = fs.readFileSync(file);
  const magic = buf.readUInt32LE(0);
  assert.ok(magic === 0xa1b2c3d4 || magic === 0xa1b23c4d, `a little-endian pcap file (magic ${magic.toString(16)})`);
  const frames: Buffer[] = [];
  for (let at = 24; at + 16 <= buf.length; ) {
    const incl = buf.readUInt32LE(at + 8);
    frames.push(buf.subarray(at + 16, at + 16 + incl));
    at += 16 + incl;
  }
  return frames;
}

const until = async (what: string, ok: () => boolean, ms = 10_000) => {
  for (const end = Date.now() + ms; !ok(); ) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

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

    // What leaves the client: tshark on its interface, until stopped (at most 60 s).
    const pcap = path.join(dir, 'client.pcap');
    const tshark = spawn('ip', ['netns', 'exec', lab.client.ns, 'timeout', '60', 'tshark', '-i', lab.client.iface, '-w', pcap, '-F', 'pcap', '-f', `udp dst port ${PORT}`], { stdio: ['ignore', 'ignore', 'pipe'] });
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
      const client = spawnSync('ip', ['netns', 'exec', lab.client.ns, 'timeout', '60', 'python3', '-c', CLIENT_PY(lab.server.ipv4)], { encoding: 'utf8' });
      assert.equal(client.status, 0, `client: ${client.stderr}`);
      assert.equal(await serverDone, 0, `server: ${serverErr}`);
    } finally {
      if (server.exitCode === null) server.kill('SIGKILL');
      tshark.kill('SIGINT');
      await tsharkDone;
    }
    const received = JSON.parse(serverOut.split('\n')[1]!) as number[];
    const sent = new Map<number, Buffer>();
    for (const f of pcapFrames(pcap)) sent.set(f.readUInt32BE(PAYLOAD_AT), f);
    assert.equal(sent.size, COUNT, `tshark saw every datagram leave the client (${sent.size})`);
    const receivedSet = new Set(received);
    const lost = [...sent.keys()].filter((s) => !receivedSet.has(s)).sort((a, b) => a - b);

    const res = cli(['capture', '--json']);
    assert.equal(res.status, 0, `bae capture: ${res.stderr}`);
    const records = res.stdout
      .trim()
      .split('\n')
      .filter((l) => l)
      .map((l) => JSON.parse(l) as { kind: string; policy: string; action: string; reason: string; origLen: number; data: string; tsNs: string; ifindex: number });
    process.stderr.write(`lab capture: ${COUNT} datagrams sent, ${received.length} received, ${lost.length} lost, ${records.length} captured\n`);
    assert.ok(lost.length > 10, `the policy lost datagrams (${lost.length})`);
    const capturedSeqs = records.map((r) => Buffer.from(r.data, 'hex').readUInt32BE(PAYLOAD_AT));
    assert.deepEqual(capturedSeqs, lost, 'the capture holds exactly the datagrams the server never received, in order');
    for (const r of records) {
      const data = Buffer.from(r.data, 'hex');
      const seq = data.readUInt32BE(PAYLOAD_AT);
      assert.ok(data.equals(sent.get(seq)!), `datagram ${seq}: the captured frame is the frame the client sent, byte for byte`);
      assert.equal(r.origLen, data.length);
      assert.equal(r.kind, 'dropped');
      assert.equal(r.policy, 'lossy-capture');
      assert.equal(r.action, 'loss');
      assert.equal(r.reason, 'seeded loss');
      assert.ok(Math.abs(Number(BigInt(r.tsNs) / 1_000_000n) - Date.now()) < 120_000, 'the time is wall-clock time of this run');
    }

    const status = cli(['status', '--json']);
    assert.equal(status.status, 0, status.stderr);
    const policyStats = (JSON.parse(status.stdout) as { policy: { captured: string; captureLost: string } }).policy;
    assert.equal(policyStats.captured, String(records.length), 'bae status counts the captured frames');
    assert.equal(policyStats.captureLost, '0');
  });
});
