// The delay line's lab: client and server in namespaces this test made, each with one veth whose
// other end (a bae port) stays in the test process's namespace, where the AF_XDP sockets of the
// delay line are opened. The bae ports carry no addresses and no IPv6, so the host stack never
// sees the traffic; the fixture XDP program on both ports sends every frame into the XSKMAP.
//
//   client ns: eth0 10.201.0.1/24  <-veth->  portA  [delay line]  portB  <-veth->  server ns: eth0 10.201.0.2/24
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { attachXdp, loadCollection, resolveIfindex, type BpfMap, type Collection, type Link } from '../../src/datapath';
import { DELAY_CLASSES_MAX } from '../../src/emulation';
import { bpfFixture } from './fixtures';
import { createNetns, type Netns } from './netns';
import { until } from './wait';

export interface DelayLab {
  client: Netns;
  server: Netns;
  /** bae port facing the client / the server (in the test process's namespace). */
  portA: string;
  portB: string;
  clientIp: string;
  serverIp: string;
  collection: Collection;
  xskMap: BpfMap;
  /** Removes links, objects, namespaces and the veths with them; safe twice. */
  remove(): void;
}

/**
 * XSKMAP slots for ports keyed ingress ifindex * 8 + class: ifindexes only grow on a long-lived
 * host, so the map is sized for the ports at hand rather than fixed.
 */
export function xskSlotsFor(ports: string[]): number {
  const top = Math.max(...ports.map((p) => resolveIfindex(p)));
  return Math.max(1024, (top + 1) * DELAY_CLASSES_MAX);
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Builds the lab; `tag` is one or two characters that keep names unique within the process. */
export function createDelayLab(tag: string): DelayLab {
  if (!/^[a-z0-9]{1,2}$/.test(tag)) throw new Error(`delay lab tag must be 1-2 lowercase letters or digits, got '${tag}'`);
  const undo: (() => void)[] = [];
  const remove = () => {
    while (undo.length) {
      try {
        undo.pop()!();
      } catch {
        // keep removing the rest
      }
    }
  };
  try {
    const client = createNetns(`${tag}c`);
    undo.push(() => client.remove()); // takes the client veth pair with it
    const server = createNetns(`${tag}s`);
    undo.push(() => server.remove());
    const portA = `bt${process.pid}${tag}a`;
    const portB = `bt${process.pid}${tag}b`;
    const ends: [string, Netns, string][] = [
      [portA, client, '10.201.0.1/24'],
      [portB, server, '10.201.0.2/24'],
    ];
    for (const [port, ns, addr] of ends) {
      sh('ip', ['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
      undo.push(() => sh('ip', ['link', 'del', port]));
      sh('sysctl', ['-qw', `net.ipv6.conf.${port}.disable_ipv6=1`]);
      sh('ip', ['link', 'set', port, 'up']);
      ns.exec('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
      ns.exec('ip', ['addr', 'add', addr, 'dev', 'eth0']);
      ns.exec('ip', ['link', 'set', 'lo', 'up']);
      ns.exec('ip', ['link', 'set', 'eth0', 'up']);
      // DESIGN.md: end hosts need tx checksum offload off for TCP through an XDP path.
      ns.exec('ethtool', ['-K', 'eth0', 'tx', 'off', 'gro', 'on']);
    }
    const collection = loadCollection(bpfFixture('delay_line'), { maxEntries: { dl_xsks: xskSlotsFor([portA, portB]) } });
    undo.push(() => collection.close());
    const links: Link[] = [];
    for (const port of [portA, portB]) {
      links.push(attachXdp({ program: collection.program('dl_redirect'), iface: port, mode: 'native' }));
      undo.push(() => links.pop()?.close());
    }
    let removed = false;
    return {
      client,
      server,
      portA,
      portB,
      clientIp: '10.201.0.1',
      serverIp: '10.201.0.2',
      collection,
      xskMap: collection.map('dl_xsks'),
      remove() {
        if (removed) return;
        removed = true;
        remove();
      },
    };
  } catch (err) {
    remove();
    throw err;
  }
}

export interface PingStats {
  transmitted: number;
  received: number;
  minMs: number;
  avgMs: number;
  maxMs: number;
  /** every reply's RTT in order */
  rttsMs: number[];
}

/** ping from the client to the server, bounded by count and time. */
export function pingThrough(lab: DelayLab, count: number, intervalS: number, opts: { tos?: number } = {}): Promise<PingStats> {
  const args = [`--net=${lab.client.path}`, 'ping', '-n', '-c', String(count), '-i', String(intervalS), '-W', '2'];
  if (opts.tos !== undefined) args.push('-Q', String(opts.tos));
  args.push(lab.serverIp);
  const limitMs = (count * intervalS + 5) * 1000;
  return new Promise((resolve, reject) => {
    execFile('nsenter', args, { encoding: 'utf8', timeout: limitMs, killSignal: 'SIGKILL' }, (err, stdout) => {
      const summary = /(\d+) packets transmitted, (\d+) received/.exec(stdout);
      const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\//.exec(stdout);
      if (!summary) return reject(new Error(`ping printed no summary (${err?.message ?? ''}): ${stdout}`));
      const rttsMs = [...stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
      resolve({
        transmitted: Number(summary[1]),
        received: Number(summary[2]),
        minMs: rtt ? Number(rtt[1]) : NaN,
        avgMs: rtt ? Number(rtt[2]) : NaN,
        maxMs: rtt ? Number(rtt[3]) : NaN,
        rttsMs,
      });
    });
  });
}

// UDP in the lab: a receiver on the server counts datagrams; a sender on the client sends a
// bounded number, paced. Both are Node children entered with nsenter.
// A bigger receive buffer than the default: a frame that crossed as an XDP frame becomes an skb
// of a whole page, so a burst of them fills the default buffer (~200 KB) after about 50.
// It reports its count as it goes (at most every 10 ms), so that a test waits for datagrams to
// arrive instead of sleeping a fixed time that a loaded machine outlasts.
const UDP_RECEIVER = `
const s = require('dgram').createSocket({ type: 'udp4', recvBufferSize: 4 << 20 }); let n = 0; let told = false;
s.on('message', () => {
  n++;
  if (!told) { told = true; setTimeout(() => { told = false; console.log(JSON.stringify({ progress: n })); }, 10); }
});
s.bind(Number(process.argv[2]), process.argv[1], () => console.log('ready'));
const stop = () => { console.log(JSON.stringify({ received: n })); process.exit(0); };
process.on('SIGTERM', stop); setTimeout(stop, Number(process.argv[3]));
`;

const UDP_SENDER = `
const s = require('dgram').createSocket('udp4');
const [host, port, count, perMs, size] = [process.argv[1], +process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5]];
let sent = 0; const payload = Buffer.alloc(size);
const tick = () => {
  for (let i = 0; i < perMs && sent < count; i++) { payload.writeUInt32BE(sent, 0); s.send(payload, port, host); sent++; }
  if (sent < count) setTimeout(tick, 1); else setTimeout(() => { console.log(JSON.stringify({ sent })); s.close(); }, 50);
};
tick();
`;

export interface UdpReceiver {
  /** How many datagrams it has reported so far (up to 10 ms behind). */
  count(): number;
  /** Stops the receiver and returns how many datagrams it counted. */
  stop(): Promise<number>;
}

export function startUdpReceiver(lab: DelayLab, port: number, limitMs = 30_000): Promise<UdpReceiver> {
  return new Promise((resolve, reject) => {
    const child = execFile('nsenter', [`--net=${lab.server.path}`, process.execPath, '-e', UDP_RECEIVER, lab.serverIp, String(port), String(limitMs)], {
      encoding: 'utf8',
      timeout: limitMs + 5000,
      killSignal: 'SIGKILL',
    });
    let out = '';
    const done = new Promise<number>((res, rej) => {
      child.on('close', () => {
        const line = out.split('\n').find((l) => l.startsWith('{"received"'));
        if (line) res((JSON.parse(line) as { received: number }).received);
        else rej(new Error(`UDP receiver printed no count: ${out}`));
      });
    });
    done.catch(() => undefined);
    child.stdout!.on('data', (d: string) => {
      const wasReady = out.includes('ready');
      out += d;
      if (!wasReady && out.includes('ready')) {
        resolve({
          count() {
            const progress = out.match(/\{"progress":\d+\}/g);
            return progress ? (JSON.parse(progress[progress.length - 1]!) as { progress: number }).progress : 0;
          },
          stop() {
            child.kill('SIGTERM');
            return done;
          },
        });
      }
    });
    child.on('error', reject);
    child.on('close', () => {
      if (!out.includes('ready')) reject(new Error(`UDP receiver did not start: ${out}`));
    });
  });
}

/** Sends `count` datagrams of `size` bytes, `perMs` each millisecond, from the client. */
export function sendUdp(lab: DelayLab, port: number, count: number, perMs: number, size = 64): Promise<number> {
  const limitMs = Math.ceil(count / perMs) * 5 + 10_000;
  return new Promise((resolve, reject) => {
    execFile(
      'nsenter',
      [`--net=${lab.client.path}`, process.execPath, '-e', UDP_SENDER, lab.serverIp, String(port), String(count), String(perMs), String(size)],
      { encoding: 'utf8', timeout: limitMs, killSignal: 'SIGKILL' },
      (err, stdout) => {
        const line = stdout.split('\n').find((l) => l.startsWith('{'));
        if (!line) return reject(new Error(`UDP sender failed: ${err?.message ?? stdout}`));
        resolve((JSON.parse(line) as { sent: number }).sent);
      },
    );
  });
}

/** Static neighbour entries both ways, so that counts and timings see no ARP. */
export function pinNeighbours(lab: DelayLab): void {
  // /sys under nsenter --net still shows the host's view: read the MAC with ip.
  const hw = (ns: Netns) => /link\/ether ([0-9a-f:]+)/.exec(ns.exec('ip', ['-o', 'link', 'show', 'eth0']))![1]!;
  lab.client.exec('ip', ['neigh', 'replace', lab.serverIp, 'lladdr', hw(lab.server), 'dev', 'eth0', 'nud', 'permanent']);
  lab.server.exec('ip', ['neigh', 'replace', lab.clientIp, 'lladdr', hw(lab.client), 'dev', 'eth0', 'nud', 'permanent']);
}

/**
 * Waits until `port` is up again after `ip link set up`: its operstate, which the kernel's link
 * watch sets some time after the carrier (IFF_RUNNING, what the delay line looks at once a
 * millisecond, follows it). A fixed sleep is too short on a loaded machine.
 */
export const carrierUp = (port: string) =>
  until(`${port} to be up`, () => ['up', 'unknown'].includes(fs.readFileSync(`/sys/class/net/${port}/operstate`, 'utf8').trim())); // netif_oper_up()

// Packet-socket receiver in the server namespace: checks each frame's bytes and order (frames of
// ethertype 0x88b5: a 4-byte sequence number, then bytes that follow from it and the position); it
// ends after `want` frames, or 1 s after the last one, or `limit` s without any.
const FRAME_RECEIVER = String.raw`
import json, socket, sys
want, limit, idle = int(sys.argv[1]), float(sys.argv[2]), 1.0
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
s.bind(("eth0", 0))
s.settimeout(limit)
got = bad = disorder = 0
last = -1
lengths = set()
expected = {}
print("ready", flush=True)
try:
    while got < want:
        f = s.recv(4096)
        s.settimeout(idle)  # after the first frame: done when the frames stop coming
        got += 1
        seq = int.from_bytes(f[14:18], "big")
        lengths.add(len(f))
        if seq < last:
            disorder += 1
        last = max(last, seq)
        key = (seq, len(f))
        if key not in expected:
            expected[key] = bytes((seq * 31 + i * 7) & 0xff for i in range(18, len(f)))
        if f[18:] != expected[key]:
            bad += 1
except socket.timeout:
    pass
print(json.dumps({"received": got, "bad": bad, "outOfOrder": disorder, "lengths": sorted(lengths)}), flush=True)
`;

export interface FrameReceipt {
  received: number;
  bad: number;
  outOfOrder: number;
  lengths: number[];
}

export function startFrameReceiver(lab: DelayLab, want: number, limitS = 20): Promise<{ result(): Promise<FrameReceipt> }> {
  return new Promise((resolve, reject) => {
    const child = execFile('nsenter', [`--net=${lab.server.path}`, 'python3', '-c', FRAME_RECEIVER, String(want), String(limitS)], {
      encoding: 'utf8',
      timeout: (limitS + 5) * 1000,
      killSignal: 'SIGKILL',
    });
    let out = '';
    const done = new Promise<FrameReceipt>((res, rej) => {
      child.on('close', () => {
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) res(JSON.parse(line) as FrameReceipt);
        else rej(new Error(`frame receiver printed no result: ${out}`));
      });
    });
    done.catch(() => undefined);
    child.stdout!.on('data', (d: string) => {
      const wasReady = out.includes('ready');
      out += d;
      if (!wasReady && out.includes('ready')) resolve({ result: () => done });
    });
    child.on('error', reject);
    child.on('close', () => {
      if (!out.includes('ready')) reject(new Error(`frame receiver did not start: ${out}`));
    });
  });
}
