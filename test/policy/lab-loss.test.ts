// A loss policy in the lab: bae inline between client and server, 3% loss (seeded) on the
// client's TCP segments to one server port. A 4 MB transfer still completes with the same
// SHA-256 on both ends, the client's TCP stack retransmits, and bae's profile of the
// conversation counts retransmissions where the same transfer without the policy had at most
// the few the stack itself made (none on a calm machine).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { run, type Lab } from '../../src/lab';
import { createBaeLab, type BaeLab } from '../lib/bae-lab';

const PORT = 5001;
const BYTES = 4 << 20;
const Z = 3.2905; // two-sided alpha 0.001

const SERVER_PY = `
import hashlib, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", ${PORT})); s.listen(1); s.settimeout(30)
c, _ = s.accept(); c.settimeout(30); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest())
`;

const CLIENT_PY = (server: string, seed: number) => `
import hashlib, random, socket
data = random.Random(${seed}).randbytes(${BYTES})
s = socket.create_connection(("${server}", ${PORT}), timeout=30)
s.sendall(data); s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
print(len(data), hashlib.sha256(data).hexdigest())
`;

/** One transfer client -> server; both ends' byte counts and digests. */
async function transfer(lab: Lab, seed: number): Promise<{ client: string; server: string }> {
  const server = spawn('ip', ['netns', 'exec', lab.server.ns, 'timeout', '60', 'python3', '-c', SERVER_PY], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  server.stdout.on('data', (d: Buffer) => (out += d.toString()));
  server.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<number | null>((resolve) => server.on('close', resolve));
  try {
    // Until the server listens: a bounded number of attempts.
    let client: SpawnSyncReturns<string> = spawnSync('true', { encoding: 'utf8' });
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      client = spawnSync('ip', ['netns', 'exec', lab.client.ns, 'timeout', '60', 'python3', '-c', CLIENT_PY(lab.server.ipv4, seed)], { encoding: 'utf8' });
      if (client.status === 0 || !/refused/i.test(String(client.stderr))) break;
    }
    assert.equal(client.status, 0, `client: ${String(client.stderr)}`);
    assert.equal(await done, 0, `server: ${err}`);
    return { client: String(client.stdout).trim(), server: out.trim() };
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }
}

/** TCP counters of a namespace's stack (/proc/net/snmp). */
function tcpStat(ns: string, name: string): number {
  const rows = run(['ip', 'netns', 'exec', ns, 'cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Tcp:'));
  return Number(rows[1]!.split(/\s+/)[rows[0]!.split(/\s+/).indexOf(name)]);
}

interface Profile {
  a: string;
  aToB: { packets: string; retransmits: string };
  bToA: { packets: string; retransmits: string };
}

function clientToServer({ lab, cli }: BaeLab): { packets: number; retransmits: number } {
  const res = cli(['profiles', '--json']);
  assert.equal(res.status, 0, res.stderr);
  const parsed = JSON.parse(res.stdout) as Profile[] | { conversations: Profile[] };
  const list = Array.isArray(parsed) ? parsed : parsed.conversations;
  const conv = list.find((c) => (c as unknown as { a: string; b: string }).a === lab.client.ipv4 || (c as unknown as { b: string }).b === lab.client.ipv4);
  assert.ok(conv, 'the client-server conversation has a profile');
  const d = conv.a === lab.client.ipv4 ? conv.aToB : conv.bToA;
  return { packets: Number(d.packets), retransmits: Number(d.retransmits) };
}

describe('a loss policy in the lab', () => {
  let bl: BaeLab;
  before(() => {
    bl = createBaeLab('loss');
  });
  after(() => bl?.teardown());

  it('makes TCP retransmit while a 4 MB transfer still completes with a matching SHA-256', async () => {
    const { lab, cli } = bl;
    const loaded = cli(['load', '--iface', lab.bae.clientPort, '--peer', lab.bae.serverPort]);
    assert.equal(loaded.status, 0, `bae load: ${loaded.stderr}`);
    run(['ip', 'netns', 'exec', lab.client.ns, 'ping', '-c', '1', '-W', '2', lab.server.ipv4]);

    // Without the policy: the reference.
    const stackBefore = tcpStat(lab.client.ns, 'RetransSegs');
    const plain = await transfer(lab, 1);
    assert.equal(plain.server, plain.client, 'the transfer without loss arrives whole');
    const before = clientToServer(bl);
    const retransBefore = tcpStat(lab.client.ns, 'RetransSegs');

    const policy = bl.write(
      'loss.yaml',
      `apiVersion: bae/v1
kind: Policy
metadata: { name: lossy-upload }
spec:
  match: { proto: tcp, dst: ${lab.server.ipv4}/32, dport: ${PORT} }
  seed: 3
  actions:
    - loss: { probability: 3 }
`,
    );
    const applied = cli(['policy', 'apply', policy]);
    assert.equal(applied.status, 0, `policy apply: ${applied.stderr}`);

    const lossy = await transfer(lab, 2);
    assert.equal(lossy.server, lossy.client, 'the transfer with loss arrives whole (same length and SHA-256)');
    const afterLoss = clientToServer(bl);
    const stackRetrans = tcpStat(lab.client.ns, 'RetransSegs') - retransBefore;
    const segments = afterLoss.packets - before.packets;
    const retrans = afterLoss.retransmits - before.retransmits;
    // Each lost segment is sent again; the policy loses at least n p - z sqrt(n p (1-p)) of the
    // n segments bae saw, and bae sees every resend that is not itself lost.
    const minLost = segments * 0.03 - Z * Math.sqrt(segments * 0.03 * 0.97);
    process.stderr.write(`lab loss: ${segments} segments, ${retrans} retransmissions in the profile, ${stackRetrans} by the client's stack (${before.retransmits} and ${retransBefore - stackBefore} without the policy), at least ${minLost.toFixed(0)} lost\n`);
    // Without the policy nothing is lost, but a loaded machine can still make the stack resend
    // (a tail-loss probe fires when an ACK is a few ms late). bae counts what it sees resent, so
    // it may count those and nothing more (the stack counts in segments, bae in frames).
    const stackPlain = retransBefore - stackBefore;
    assert.ok(before.retransmits <= stackPlain, `without the policy the profile counts ${before.retransmits} retransmissions, the client's stack made ${stackPlain}`);
    assert.ok(stackRetrans > 0, 'the client stack retransmitted');
    assert.ok(retrans >= minLost, `the profile counts the resends (${retrans}, at least ${minLost.toFixed(0)} lost)`);

    const show = cli(['policy', 'show', 'lossy-upload', '--json']);
    assert.equal(show.status, 0, show.stderr);
    const counters = JSON.parse(show.stdout).counters as Record<string, string>;
    assert.equal(Number(counters.applied), Number(counters.matched), 'every matched segment met the loss action');
  });
});
