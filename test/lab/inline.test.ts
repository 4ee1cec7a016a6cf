// bae inline in a lab of its own: `bae load` through `bae lab exec`, pings in both families and a
// checksummed 10 MiB TCP transfer through it, then the conversation profiles compared with what
// an independent capture on the end hosts counted, packet for packet and byte for byte.
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Lab, ping, run, tcpTransfer } from '../../src/lab';
import { BAE_BIN, assertNothingLeft, bae } from '../lib/bae-cli';
import { createBaeLab, type BaeLab } from '../lib/bae-lab';
import { testPinDir } from '../lib/fixtures';
import { settled } from '../lib/wait';

const pinDir = testPinDir('lab');
const pcapDir = fs.mkdtempSync(`/tmp/bae-test-${process.pid}-`);
const TRANSFER_BYTES = 10 * 1024 * 1024;

/** `bae lab exec --prefix P NODE -- node bin/bae ARGS`, as a user would type it. */
function baeOnNode(lab: Lab, node: 'bae', args: string[]) {
  return bae(['lab', 'exec', '--prefix', lab.prefix, node, '--', process.execPath, BAE_BIN, ...args, '--pin-dir', pinDir]);
}

function macOf(ns: string, iface: string): string {
  const [link] = JSON.parse(run(['ip', '-n', ns, '-j', 'link', 'show', 'dev', iface])) as { address: string }[];
  return link!.address;
}

/** Permanent neighbour entries both ways: no ARP or ND between the hosts while we count. */
function pinNeighbours(lab: Lab): void {
  const cmac = macOf(lab.client.ns, lab.client.iface);
  const smac = macOf(lab.server.ns, lab.server.iface);
  for (const [ns, iface, mac, addrs] of [
    [lab.client.ns, lab.client.iface, smac, [lab.server.ipv4, lab.server.ipv6]],
    [lab.server.ns, lab.server.iface, cmac, [lab.client.ipv4, lab.client.ipv6]],
  ] as const) {
    for (const a of addrs) run(['ip', '-n', ns, 'neigh', 'replace', a, 'lladdr', mac, 'dev', iface, 'nud', 'permanent']);
  }
}

interface Capture {
  child: ChildProcess;
  file: string;
  stderr: () => string;
  exited: Promise<void>;
}

/** dumpcap on an end host's interface, only frames between the two hosts' addresses. */
async function startCapture(lab: Lab, node: 'client' | 'server'): Promise<Capture> {
  const ep = lab[node];
  const file = `${pcapDir}/${node}.pcapng`;
  // The two hosts' conversations, and the second client address's for the readiness probes.
  const filter =
    `(host ${lab.server.ipv4} and (host ${lab.client.ipv4} or host ${lab.client.ipv4Second})) or ` +
    `(host ${lab.client.ipv6} and host ${lab.server.ipv6})`;
  const child = spawn('nsenter', [`--net=/run/netns/${ep.ns}`, '--', 'dumpcap', '-i', ep.iface, '-f', filter, '-s', '128', '-B', '64', '-w', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const deadline = Date.now() + 15_000;
  while (!err.includes('Capturing on') && Date.now() < deadline && child.exitCode === null) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(err, /Capturing on/, `dumpcap on ${node} did not start: ${err}`);
  return { child, file, stderr: () => err, exited };
}

/**
 * Waits until every capture has seen a probe. libpcap installs its filter after dumpcap says
 * "Capturing on", draining the socket on the way, so frames sent right then are lost to the
 * capture. The probes are pings from the client's second address: a conversation the comparison
 * leaves out.
 */
async function capturesReady(lab: Lab, captures: Capture[]): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (captures.every((c) => /Packets: [1-9]/.test(c.stderr()))) return;
    await ping(lab, 'client', lab.server.ipv4, { count: 1, waitS: 0.2, source: lab.client.ipv4Second });
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`captures never saw a probe: ${captures.map((c) => c.stderr()).join(' | ')}`);
}

async function stopCapture(c: Capture): Promise<void> {
  c.child.kill('SIGINT');
  const timer = setTimeout(() => c.child.kill('SIGKILL'), 10_000);
  await c.exited;
  clearTimeout(timer);
  const dropped = /received\/dropped on interface '[^']+': \d+\/(\d+)/.exec(c.stderr());
  assert.ok(dropped, `dumpcap printed no statistics: ${c.stderr()}`);
  assert.equal(dropped[1], '0', `dumpcap dropped frames: ${c.stderr()}`);
}

interface Tally {
  packets: number;
  bytes: number;
}

type Addresses = { ipv4: string; ipv6: string };

/** Frames and frame bytes in a capture sent from `src` to `dst`, per address family. */
function tallyFrom(file: string, src: Addresses, dst: Addresses): { ipv4: Tally; ipv6: Tally } {
  const fields = ['frame.len', 'ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst'].flatMap((f) => ['-e', f]);
  const res = spawnSync('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=,', ...fields], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(res.status, 0, `tshark -r ${file}: ${res.stderr}`);
  const out = { ipv4: { packets: 0, bytes: 0 }, ipv6: { packets: 0, bytes: 0 } };
  for (const line of res.stdout.split('\n')) {
    const [len, s4, d4, s6, d6] = line.split(',');
    if (!len) continue;
    // Only frames this host sent: what it received may have been merged by GRO on the way in.
    const t = s4 === src.ipv4 && d4 === dst.ipv4 ? out.ipv4 : s6 === src.ipv6 && d6 === dst.ipv6 ? out.ipv6 : undefined;
    if (!t) continue;
    t.packets++;
    t.bytes += Number(len);
  }
  return out;
}

/** 64-bit counters are decimal strings in every --json (src/json.ts). */
interface JsonDir {
  packets: string;
  bytes: string;
}
interface JsonConv {
  family: string;
  a: string;
  b: string;
  aToB: JsonDir;
  bToA: JsonDir;
}

describe('bae inline in the lab', () => {
  let bl: BaeLab;
  let lab: Lab;
  before(() => {
    // The lab and its teardown; bae itself runs through `bae lab exec` here (baeOnNode).
    bl = createBaeLab('lab');
    lab = bl.lab;
  });
  after(() => {
    try {
      bl?.teardown();
    } finally {
      fs.rmSync(pcapDir, { recursive: true, force: true });
    }
  });

  test('forwards pings in both families and 10 MiB of TCP intact, and profiles count exactly what the hosts sent', async () => {
    pinNeighbours(lab);
    const loaded = baeOnNode(lab, 'bae', ['load', '--iface', lab.bae.clientPort, '--peer', lab.bae.serverPort, '--json']);
    assert.equal(loaded.status, 0, `bae load: ${loaded.stderr}`);
    assert.equal(JSON.parse(loaded.stdout).mode, 'inline');

    const captures: Capture[] = [];
    try {
      captures.push(await startCapture(lab, 'client'), await startCapture(lab, 'server'));
      await capturesReady(lab, captures);

      assert.deepEqual(await ping(lab, 'client', lab.server.ipv4, { count: 3 }), { transmitted: 3, received: 3 });
      assert.deepEqual(await ping(lab, 'client', lab.server.ipv6, { count: 3 }), { transmitted: 3, received: 3 });
      const t = await tcpTransfer(lab, { bytes: TRANSFER_BYTES });
      assert.equal(t.receivedBytes, TRANSFER_BYTES);
      assert.equal(t.receivedSha256, t.sentSha256, 'the bytes arrived unchanged');

      // The last ACKs of the connection close follow the transfer, and on a loaded machine a
      // resend may follow later than a fixed wait: read the profiles once their counts have stood
      // still for 1 s (which also lets libpcap hand over its last block before the captures stop).
      let profilesJson = '';
      const counts = () => {
        const profiles = baeOnNode(lab, 'bae', ['profiles', '--json']);
        assert.equal(profiles.status, 0, profiles.stderr);
        profilesJson = profiles.stdout;
        return (JSON.parse(profiles.stdout) as { conversations: JsonConv[] }).conversations.map((c) => [c.a, c.b, c.aToB.packets, c.aToB.bytes, c.bToA.packets, c.bToA.bytes]);
      };
      await settled('the profiles after the traffic', counts, { quietMs: 1000, ms: 30_000, everyMs: 0 });
      for (const c of captures) await stopCapture(c);

      const convs = (JSON.parse(profilesJson) as { conversations: JsonConv[] }).conversations;
      const fromClient = tallyFrom(captures[0]!.file, lab.client, lab.server);
      const fromServer = tallyFrom(captures[1]!.file, lab.server, lab.client);
      for (const family of ['ipv4', 'ipv6'] as const) {
        const c = convs.find((p) => p.family === family && [p.a, p.b].sort().join() === [lab.client[family], lab.server[family]].sort().join());
        assert.ok(c, `no ${family} conversation between client and server in ${profilesJson}`);
        // a is the lower address: the client's in both families of this lab.
        assert.equal(c.a, lab.client[family]);
        assert.deepEqual(
          { aToB: { packets: Number(c.aToB.packets), bytes: Number(c.aToB.bytes) }, bToA: { packets: Number(c.bToA.packets), bytes: Number(c.bToA.bytes) } },
          { aToB: fromClient[family], bToA: fromServer[family] },
          `${family} profile vs capture`,
        );
      }
      // The transfer alone is more than 7000 full-sized segments one way.
      assert.ok(fromClient.ipv4.packets > TRANSFER_BYTES / 1500, `only ${fromClient.ipv4.packets} packets client->server`);
    } finally {
      for (const c of captures) if (c.child.exitCode === null) c.child.kill('SIGKILL');
    }

    const st = JSON.parse(baeOnNode(lab, 'bae', ['status', '--json']).stdout);
    assert.equal(st.counters.verdicts.drop, '0');
    assert.equal(st.counters.inlineNoPort, '0');
    const un = baeOnNode(lab, 'bae', ['unload']);
    assert.equal(un.status, 0, un.stderr);
    assertNothingLeft(lab, pinDir);
  });
});
