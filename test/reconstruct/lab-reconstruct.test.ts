// Reconstruction in the lab (issue 15's must-show): bae inline under its agent, which stores what
// policies capture; a seeded loss policy with `capture: { drops: true }` drops datagrams of a
// bounded UDP stream; `bae reconstruct --after 1s` sends the stored frames again, and every one
// arrives at the server byte-exact (tshark on the server's interface, counted), no earlier than
// the delay asked for.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run } from '../../src/lab';
import { createAgentLab, type AgentLab } from '../agent/agent-lab';
import { pcapFrames } from '../lib/pcap-file';
import { settled, until } from '../lib/wait';

const PORT = 9200;
const COUNT = 300;
const PAYLOAD_AT = 42;

const SERVER_PY = `
import json, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("0.0.0.0", ${PORT})); s.settimeout(30.0); got = []
print("ready", flush=True)
while len(set(got)) < ${COUNT}:
    try: b, _ = s.recvfrom(65536)
    except socket.timeout: break
    got.append(int.from_bytes(b[:4], "big"))
print(json.dumps(got), flush=True)
`;

const CLIENT_PY = (server: string) => `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(${COUNT}):
    n = 64 + (i * 97) % 1397
    s.sendto(i.to_bytes(4, "big") + bytes((i * 31 + k) & 0xff for k in range(n - 4)), ("${server}", ${PORT}))
    time.sleep(0.001)
`;

/** tshark on `iface` in `ns` for UDP to PORT, until `count` frames or 60 s; resolves when it stops. */
async function tsharkOn(ns: string, iface: string, count: number, file: string): Promise<() => Promise<void>> {
  const t = spawn('ip', ['netns', 'exec', ns, 'timeout', '60', 'tshark', '-i', iface, '-c', String(count), '-w', file, '-F', 'pcap', '-f', `udp dst port ${PORT}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  t.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<void>((resolve) => t.on('close', () => resolve()));
  await until('tshark to capture', () => /Capturing on/.test(err));
  return async () => {
    const stop = setTimeout(() => t.kill('SIGINT'), 10_000);
    await done;
    clearTimeout(stop);
  };
}

describe('bae reconstruct in the lab', () => {
  let al: AgentLab;
  before(() => {
    al = createAgentLab('rcn');
  });
  after(() => al?.teardown());

  it('re-sends every frame the seeded loss dropped, and each arrives at the server byte-exact, late', async () => {
    const { lab, cli, runDir } = al;
    const agent = await al.startAgent();
    run(['ip', 'netns', 'exec', lab.client.ns, 'ping', '-c', '1', '-W', '2', lab.server.ipv4]);
    const policy = al.write(
      'lossy.yaml',
      `apiVersion: bae/v1
kind: Policy
metadata: { name: lossy-capture }
spec:
  match: { proto: udp, dst: ${lab.server.ipv4}/32, dport: ${PORT} }
  seed: 5
  actions:
    - loss: { probability: 10 }
    - capture: { drops: true, snaplen: 1536 }
`,
    );
    const applied = cli(['policy', 'apply', policy]);
    assert.equal(applied.status, 0, `policy apply: ${applied.stderr}`);

    // The stream: what left the client (tshark), what the server got.
    const clientPcap = path.join(runDir, 'client.pcap');
    const stopClientCap = await tsharkOn(lab.client.ns, lab.client.iface, COUNT, clientPcap);
    const server = spawn('ip', ['netns', 'exec', lab.server.ns, 'timeout', '90', 'python3', '-c', SERVER_PY], { stdio: ['ignore', 'pipe', 'pipe'] });
    let serverOut = '';
    server.stdout.on('data', (d: Buffer) => (serverOut += d.toString()));
    const serverDone = new Promise<void>((resolve) => server.on('close', () => resolve()));
    let sent: Map<number, Buffer>;
    let lost: number[];
    try {
      await until('the server to listen', () => serverOut.startsWith('ready'));
      const client = spawnSync('ip', ['netns', 'exec', lab.client.ns, 'timeout', '60', 'python3', '-c', CLIENT_PY(lab.server.ipv4)], { encoding: 'utf8' });
      assert.equal(client.status, 0, `client: ${client.stderr}`);
      await stopClientCap();
      sent = new Map(pcapFrames(clientPcap).map((f) => [f.data.readUInt32BE(PAYLOAD_AT), f.data]));
      assert.equal(sent.size, COUNT, 'tshark saw every datagram leave the client');

      // The agent stores the captured drops: wait until they are all there.
      const storedDropped = () => {
        const r = cli(['store', 'info', '--json']);
        return r.status === 0 ? (JSON.parse(r.stdout) as { counts: { packets: number } }).counts.packets : -1;
      };
      // The server is still listening (until it has every datagram, or 30 s without one: the waits
      // below take longer on a loaded machine). Re-send, 1 s late, while the server listens; tshark on the server counts what arrives.
      const serverPcap = path.join(runDir, 'server.pcap');
      // Two reads in a row agree also while batches are still coming (the agent's writer posts one
      // every 100 ms, later under load), and tshark below stops after `dropped` frames: wait until
      // the count has stood still for ten batch intervals.
      const dropped = await settled('the dropped frames in the store', storedDropped, { ready: (n) => n > 0, quietMs: 1000, ms: 20_000, everyMs: 100 });
      const stopServerCap = await tsharkOn(lab.server.ns, lab.server.iface, dropped, serverPcap);
      const startedAt = Date.now() / 1000;
      const res = cli(['reconstruct', '--policy', 'lossy-capture', '--after', '1s', '--json']);
      assert.equal(res.status, 0, `bae reconstruct: ${res.stderr}`);
      const out = JSON.parse(res.stdout) as { found: number; sent: number; skipped: unknown[] };
      await stopServerCap();
      await serverDone;
      const got = JSON.parse(serverOut.split('\n')[1]!) as number[];
      // Before the re-send the server had all but the lost ones; after it, every one.
      const firstPass = got.slice(0, COUNT - out.sent);
      lost = [...sent.keys()].filter((k) => !firstPass.includes(k)).sort((a, b) => a - b);
      assert.ok(lost.length >= 10, `the policy lost datagrams (${lost.length})`);
      assert.equal(out.found, lost.length, 'the store holds one dropped frame per lost datagram');
      assert.equal(out.sent, lost.length, 'each is sent again');
      assert.deepEqual(out.skipped, []);
      assert.deepEqual([...new Set(got)].sort((a, b) => a - b), [...sent.keys()].sort((a, b) => a - b), 'in the end the server received every datagram');
      assert.deepEqual(got.slice(COUNT - out.sent), lost, 'the re-sent datagrams arrive in the order they were dropped');

      const arrived = pcapFrames(serverPcap);
      assert.equal(arrived.length, lost.length, 'tshark on the server counts exactly the re-sent frames');
      for (const f of arrived) {
        const seq = f.data.readUInt32BE(PAYLOAD_AT);
        assert.ok(f.data.equals(sent.get(seq)!), `datagram ${seq} arrives byte for byte as the client sent it`);
        assert.ok(f.t >= startedAt + 0.95, `datagram ${seq} arrives after the delay (${(f.t - startedAt).toFixed(3)} s)`);
      }
      const check = spawnSync('tshark', ['-r', serverPcap, '-o', 'udp.check_checksum:TRUE', '-T', 'fields', '-e', 'udp.checksum.status'], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(check.status, 0, check.stderr);
      assert.deepEqual(new Set(check.stdout.trim().split('\n')), new Set(['1']), 'tshark validates every UDP checksum (1: good)');

      // The store keeps what was sent again.
      const exp = path.join(runDir, 'reconstructed.pcapng');
      const ex = cli(['export', '--pcap', exp, '--kind', 'reconstructed']);
      assert.equal(ex.status, 0, ex.stderr);
      const comments = spawnSync('tshark', ['-r', exp, '-T', 'fields', '-e', 'frame.comment'], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(comments.stdout.trim().split('\n').length, lost.length);
      assert.match(comments.stdout, /reconstructed/);
    } finally {
      if (server.exitCode === null) server.kill('SIGKILL');
      await agent.stop();
    }
  });
});
