// The lab of the injection tests: bae inline between client and server, a TCP and UDP listener
// on the server and TCP clients on the client that report what their sockets see (JSON lines),
// dumpcap on the server's interface, and tshark reading what it caught. Every process here is
// bounded in time and killed by stopAll(), also when a test failed.
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { ping, run, type Lab } from '../../src/lab';
import { settled } from '../lib/wait';

/** How long any helper process lives at most (s): longer than the test file's budget. */
const CHILD_LIFETIME_S = 240;

export const TCP_PORT = 7000;
export const UDP_PORT = 7001;

export interface SocketEvent {
  ev: 'listening' | 'accepted' | 'data' | 'udp' | 'error' | 'close' | 'connected';
  /** The client's port of the connection (server side), or the client's own (client side). */
  peerPort?: number;
  localPort?: number;
  hex?: string;
  code?: string;
  atMs?: number;
}

/** A node script in a namespace that prints one JSON object a line, and what it printed so far. */
export interface JsonLines<T> {
  events: T[];
  child: ChildProcess;
  waitFor(pred: (e: T) => boolean, what: string, timeoutMs?: number): Promise<T>;
}

export type Reporter = JsonLines<SocketEvent>;

const live = new Set<ChildProcess>();

/** Starts `script` with node in namespace `ns`; stopAll() kills it (also when a test failed). */
export function jsonLines<T>(ns: string, script: string): JsonLines<T> {
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, '--', process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.on('close', () => live.delete(child));
  const events: T[] = [];
  let buf = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) events.push(JSON.parse(line) as T);
    }
  });
  return {
    events,
    child,
    async waitFor(pred, what, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const e = events.find(pred);
        if (e) return e;
        if (Date.now() > deadline || child.exitCode !== null) assert.fail(`no ${what} within ${timeoutMs} ms; events ${JSON.stringify(events)}; stderr ${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

const reporter = (ns: string, script: string): Reporter => jsonLines<SocketEvent>(ns, script);

/** A TCP server on TCP_PORT of both server addresses, a UDP socket on UDP_PORT of its IPv4 one. */
export function startServer(lab: Lab): Reporter {
  return reporter(
    lab.server.ns,
    `const net = require('net'), dgram = require('dgram');
     const out = (e) => process.stdout.write(JSON.stringify({ ...e, atMs: Date.now() }) + '\\n');
     let n = 0;
     const srv = net.createServer((s) => {
       const peerPort = s.remotePort;
       out({ ev: 'accepted', peerPort });
       s.on('data', (d) => out({ ev: 'data', peerPort, hex: d.toString('hex') }));
       s.on('error', (e) => out({ ev: 'error', peerPort, code: e.code }));
       s.on('close', () => out({ ev: 'close', peerPort }));
     });
     const u = dgram.createSocket('udp4');
     u.on('message', (m, r) => out({ ev: 'udp', peerPort: r.port, hex: m.toString('hex') }));
     const srv6 = net.createServer((s) => srv.emit('connection', s));
     u.bind(${UDP_PORT}, ${JSON.stringify(lab.server.ipv4)}, () =>
       srv.listen(${TCP_PORT}, ${JSON.stringify(lab.server.ipv4)}, () =>
         srv6.listen(${TCP_PORT}, ${JSON.stringify(lab.server.ipv6)}, () => out({ ev: 'listening' }))));
     setTimeout(() => process.exit(0), ${CHILD_LIFETIME_S * 1000}).unref();
     setInterval(() => {}, 1 << 30);`,
  );
}

/** A TCP connection from the client (to the server's IPv4 address, or `to`) that sends `hello`
 *  and then stays open, idle. */
export function startClient(lab: Lab, to: string = lab.server.ipv4): Reporter {
  return reporter(
    lab.client.ns,
    `const net = require('net');
     const out = (e) => process.stdout.write(JSON.stringify({ ...e, atMs: Date.now() }) + '\\n');
     const s = net.connect(${TCP_PORT}, ${JSON.stringify(to)}, () => { s.setNoDelay(true); s.write('hello'); out({ ev: 'connected', localPort: s.localPort }); });
     s.on('data', (d) => out({ ev: 'data', hex: d.toString('hex') }));
     s.on('error', (e) => out({ ev: 'error', code: e.code }));
     setTimeout(() => process.exit(0), ${CHILD_LIFETIME_S * 1000});`,
  );
}

export function stopAll(): void {
  for (const c of live) c.kill('SIGKILL');
}

export function macOf(ns: string, iface: string): string {
  const [link] = JSON.parse(run(['ip', '-n', ns, '-j', 'link', 'show', 'dev', iface])) as { address: string }[];
  return link!.address;
}

export interface Capture {
  file: string;
  stop(): Promise<void>;
}

/**
 * dumpcap on the server's interface, everything. Ready once it counted a probe (a ping from
 * the client): libpcap drains the socket after "Capturing on", and a frame sent then is lost.
 */
export async function startCapture(lab: Lab, file: string): Promise<Capture> {
  const child = spawn('nsenter', [`--net=/run/netns/${lab.server.ns}`, '--', 'dumpcap', '-i', lab.server.iface, '-B', '64', '-w', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  live.add(child);
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const stop = async () => {
    // libpcap hands frames over in blocks, retired by a timeout: give the last one time to fill
    // in before SIGINT, or the frames of the last moment are missing from the file. dumpcap's
    // count must stand still for 1 s (not a fixed 1 s: frames may still come in on a loaded machine).
    const packets = () => Number(/.*Packets: (\d+)/s.exec(err)?.[1] ?? 0);
    await settled('dumpcap\'s packet count', packets, { quietMs: 1000, ms: 15_000 }).catch(() => undefined);
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    live.delete(child);
    const dropped = /received\/dropped on interface '[^']+': \d+\/(\d+)/.exec(err);
    assert.ok(dropped, `dumpcap printed no statistics: ${err}`);
    assert.equal(dropped[1], '0', `dumpcap dropped frames: ${err}`);
  };
  for (let i = 0; i < 100 && !/Packets: [1-9]/.test(err); i++) {
    if (child.exitCode !== null) break;
    if (err.includes('Capturing on')) await ping(lab, 'client', lab.server.ipv4, { count: 1, waitS: 0.2 });
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!/Packets: [1-9]/.test(err)) {
    await stop().catch(() => undefined);
    assert.fail(`dumpcap on the server never saw a probe: ${err}`);
  }
  return { file, stop };
}

/** tshark's fields of the frames a capture holds from `srcMac`, checksums validated, in order. */
export function readFrames(file: string, srcMac: string, fields: readonly string[]): Record<string, string>[] {
  const args = [
    '-r', file,
    '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
    '-Y', `eth.src == ${srcMac}`,
    '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=|',
    ...fields.flatMap((f) => ['-e', f]),
  ];
  const res = spawnSync('tshark', args, { encoding: 'utf8', timeout: 60_000 });
  assert.equal(res.status, 0, `tshark: ${res.stderr}`);
  return res.stdout.split('\n').filter((l) => l.length > 0).map((l) => {
    const cols = l.split('\t');
    return Object.fromEntries(fields.map((f, i) => [f, cols[i] ?? '']));
  });
}

/** The raw bytes (hex) of the frames a capture holds from `srcMac`, in order. */
export function readRawFrames(file: string, srcMac: string): string[] {
  const res = spawnSync('tshark', ['-r', file, '-Y', `eth.src == ${srcMac}`, '-T', 'json', '-x', '-j', 'frame'], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
  assert.equal(res.status, 0, `tshark: ${res.stderr}`);
  const packets = JSON.parse(res.stdout) as { _source: { layers: { frame_raw: [string, ...unknown[]] } } }[];
  return packets.map((p) => p._source.layers.frame_raw[0]);
}

export function makeTempDir(): string {
  return fs.mkdtempSync(`/tmp/bae-test-${process.pid}-inject-`);
}
