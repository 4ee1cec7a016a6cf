// Scenarios in the lab: `bae record` while a seeded loss policy and a SYN-flood trigger act on
// bounded traffic; the baseline's drops are exactly the datagrams the server never received
// (the replay draws what the kernel drew); `bae replay` twice gives no difference; the exported
// scenario imported again and replayed with the same policies gives the same decisions twice.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run } from '../../src/lab';
import { createBaeLab, type BaeLab } from '../lib/bae-lab';

const PORT = 9300;
const COUNT = 200;

const SERVER_PY = `
import json, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", ${PORT})); s.settimeout(30.0); got = []
print("ready", flush=True)
while True:
    try: b, _ = s.recvfrom(65536)
    except socket.timeout: break
    got.append(int.from_bytes(b[:4], "big")); s.settimeout(2.0)
print(json.dumps(got), flush=True)
`;
const CLIENT_PY = (server: string) => `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(${COUNT}):
    s.sendto(i.to_bytes(4, "big") + bytes(60), ("${server}", ${PORT}))
    time.sleep(0.002)
`;

const POLICIES = (server: string) => `apiVersion: bae/v1
kind: Policy
metadata: { name: lossy }
spec:
  match: { proto: udp, dst: ${server}/32, dport: ${PORT} }
  seed: 77
  actions:
    - loss: { probability: 20 }
---
apiVersion: bae/v1
kind: Policy
metadata: { name: pings }
spec:
  match: { proto: icmp }
  trigger: { when: packets > 5, within: 10s, scope: source }
  actions: [event, count]
`;

interface ReplayOut {
  frames: number;
  baseline: string;
  totals: Record<string, number>;
  differences: unknown[];
}

describe('bae record and bae replay in the lab', () => {
  let bl: BaeLab;
  before(() => {
    bl = createBaeLab('scn');
  });
  after(() => bl?.teardown());

  it('records a scenario whose replays decide as the kernel did, the same each time', async () => {
    const { lab, cli, runDir } = bl;
    assert.equal(cli(['load', '--iface', lab.bae.clientPort, '--peer', lab.bae.serverPort]).status, 0);
    const file = bl.write('set.yaml', POLICIES(lab.server.ipv4));
    const applied = cli(['policy', 'apply', file]);
    assert.equal(applied.status, 0, applied.stderr);
    run(['ip', 'netns', 'exec', lab.client.ns, 'ping', '-c', '1', '-W', '2', lab.server.ipv4]);

    // Record for 6 s while the server listens, the client sends and pings.
    const rec = spawn('nsenter', [`--net=/run/netns/${lab.ns.bae}`, '--', process.execPath, path.resolve(__dirname, '../../../bin/bae'), 'record', 'first', '--duration', '6s', '--json', '--pin-dir', bl.pinDir], {
      env: { ...process.env, ...bl.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let recOut = '';
    let recErr = '';
    rec.stdout.on('data', (d: Buffer) => (recOut += d.toString()));
    rec.stderr.on('data', (d: Buffer) => (recErr += d.toString()));
    const recDone = new Promise<number | null>((resolve) => rec.on('close', resolve));
    for (const end = Date.now() + 20_000; !/recording 'first'/.test(recErr); ) {
      assert.ok(Date.now() < end && rec.exitCode === null, `bae record started: ${recErr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const server = spawn('ip', ['netns', 'exec', lab.server.ns, 'timeout', '40', 'python3', '-c', SERVER_PY], { stdio: ['ignore', 'pipe', 'pipe'] });
    let serverOut = '';
    server.stdout.on('data', (d: Buffer) => (serverOut += d.toString()));
    const serverDone = new Promise<void>((resolve) => server.on('close', () => resolve()));
    for (const end = Date.now() + 20_000; !serverOut.startsWith('ready'); ) {
      assert.ok(Date.now() < end, 'the server listens');
      await new Promise((r) => setTimeout(r, 50));
    }
    const client = spawnSync('ip', ['netns', 'exec', lab.client.ns, 'timeout', '30', 'python3', '-c', CLIENT_PY(lab.server.ipv4)], { encoding: 'utf8' });
    assert.equal(client.status, 0, client.stderr);
    run(['ip', 'netns', 'exec', lab.client.ns, 'ping', '-c', '8', '-i', '0.2', '-W', '1', lab.server.ipv4]);
    await serverDone;
    assert.equal(await recDone, 0, `bae record: ${recErr}`);
    const got = new Set(JSON.parse(serverOut.split('\n')[1]!) as number[]);
    const lostLive = Array.from({ length: COUNT }, (_, i) => i).filter((i) => !got.has(i));
    assert.ok(lostLive.length > 10, `the loss policy dropped datagrams live (${lostLive.length})`);

    const recorded = JSON.parse(recOut) as { frames: number; policies: string[]; totals: Record<string, number> };
    assert.deepEqual(recorded.policies.sort(), ['lossy', 'pings']);
    assert.ok(recorded.frames >= COUNT, `every datagram was recorded (${recorded.frames} frames)`);
    const list = cli(['policy', 'list', '--json']);
    assert.doesNotMatch(list.stdout, /bae-record/, 'the recording policy is gone afterwards');

    // The baseline's drops are the datagrams the server never got: the replay drew what the kernel drew.
    const one = cli(['replay', 'first', '--json']);
    assert.equal(one.status, 0, `bae replay: ${one.stderr}`);
    const r1 = JSON.parse(one.stdout) as ReplayOut;
    assert.equal(r1.baseline, 'compared');
    assert.deepEqual(r1.differences, [], 'the replay decides every frame as the baseline');
    assert.equal(r1.totals.drop, lostLive.length, `the replay drops as many datagrams as the kernel did (${lostLive.length})`);
    assert.ok((r1.totals.fired ?? 0) >= 1 && (r1.totals.events ?? 0) >= 1, `the ping trigger fired in the replay: ${JSON.stringify(r1.totals)}`);
    const two = cli(['replay', 'first', '--json']);
    assert.equal(two.status, 0, two.stderr);
    assert.deepEqual((JSON.parse(two.stdout) as ReplayOut).totals, r1.totals);

    const sc = cli(['scenarios', '--json']);
    assert.equal(sc.status, 0, sc.stderr);
    const scenarios = JSON.parse(sc.stdout) as { name: string; frames: number; baseline: boolean; policies: number }[];
    assert.deepEqual(scenarios.map((s) => [s.name, s.frames, s.baseline, s.policies]), [['first', recorded.frames, true, 2]]);

    // Out to pcapng, in again as another scenario, replayed with the same policies: twice the same.
    const pcap = path.join(runDir, 'first.pcapng');
    assert.equal(cli(['export', '--pcap', pcap, '--scenario', 'first']).status, 0);
    const imp = cli(['import', '--pcap', pcap, '--name', 'again']);
    assert.equal(imp.status, 0, imp.stderr);
    const a = cli(['replay', 'again', '--policy', file, '--json']);
    assert.equal(a.status, 0, a.stderr);
    const ra = JSON.parse(a.stdout) as ReplayOut;
    assert.equal(ra.baseline, 'recorded now');
    assert.equal(ra.frames, recorded.frames);
    const b = cli(['replay', 'again', '--json']);
    assert.equal(b.status, 0, b.stderr);
    assert.deepEqual((JSON.parse(b.stdout) as ReplayOut).differences, []);

    // Bad input: an unknown scenario, policies for one that has them.
    const unknown = cli(['replay', 'nope']);
    assert.notEqual(unknown.status, 0);
    assert.match(unknown.stderr, /no scenario named 'nope'/);
    const twice = cli(['replay', 'first', '--policy', file]);
    assert.equal(twice.status, 2);
    assert.match(twice.stderr, /has its policies and baseline already/);
  });
});
