// Traffic between the lab's end hosts, for the lab tests, the demo checks and the benchmarks.
// Every generator is bounded in count and in time; nothing here ever leaves the lab namespaces.
import { ChildProcess, spawn } from 'node:child_process';
import { LabError } from '../errors';
import { Lab, LabNode, labExecArgv } from './topology';

export interface ProcessResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts `cmd` on a lab node; `result` settles when it exits, killed after `timeoutMs`. */
export function startOnNode(
  lab: Lab,
  node: LabNode,
  cmd: readonly string[],
  timeoutMs: number,
): { child: ChildProcess; result: Promise<ProcessResult> } {
  const argv = labExecArgv(lab, node, cmd);
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const result = new Promise<ProcessResult>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
  return { child, result };
}

/** Runs `cmd` on a lab node to its end (at most `timeoutMs`). */
export function runOnNode(lab: Lab, node: LabNode, cmd: readonly string[], timeoutMs = 30_000): Promise<ProcessResult> {
  return startOnNode(lab, node, cmd, timeoutMs).result;
}

/** Resolves once `child` printed `marker` on stdout; rejects if it exits first or after `timeoutMs`. */
function waitForOutput(child: ChildProcess, marker: string, what: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => finish(new LabError(`${what} did not start within ${timeoutMs} ms`)), timeoutMs);
    const onData = (d: Buffer | string) => {
      seen += d.toString();
      if (seen.includes(marker)) finish();
    };
    const onExit = () => finish(new LabError(`${what} exited before it was ready`));
    function finish(err?: Error) {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    }
    child.stdout!.on('data', onData);
    child.on('exit', onExit);
  });
}

export interface PingResult {
  transmitted: number;
  received: number;
}

/** `ping` from a node, `count` echo requests `intervalS` apart, each waiting at most `waitS`. */
export async function ping(
  lab: Lab,
  from: LabNode,
  to: string,
  opts: { count?: number; intervalS?: number; waitS?: number; source?: string } = {},
): Promise<PingResult> {
  const count = opts.count ?? 3;
  const cmd = ['ping', '-n', '-c', String(count), '-i', String(opts.intervalS ?? 0.2), '-W', String(opts.waitS ?? 1)];
  if (opts.source) cmd.push('-I', opts.source);
  cmd.push(to);
  const res = await runOnNode(lab, from, cmd, (count * ((opts.intervalS ?? 0.2) + (opts.waitS ?? 1)) + 5) * 1000);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(res.stdout);
  if (!m) throw new LabError(`ping ${to} from ${from} printed no summary: ${res.stderr.trim() || res.stdout.trim()}`);
  return { transmitted: Number(m[1]), received: Number(m[2]) };
}

export interface TransferResult {
  bytes: number;
  sentSha256: string;
  receivedBytes: number;
  receivedSha256: string;
  /** Source port the client used, to find the transfer's packets in a capture. */
  clientPort: number;
  seconds: number;
}

// The receiver: one connection, hashes everything it reads, prints one JSON line and exits.
const RECEIVER = `
const net = require('net'), crypto = require('crypto');
const [host, port] = [process.argv[1], Number(process.argv[2])];
const srv = net.createServer((s) => {
  const h = crypto.createHash('sha256'); let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => { console.log(JSON.stringify({ bytes: n, sha256: h.digest('hex') })); s.end(); srv.close(); });
});
srv.listen(port, host, () => console.log('listening'));
`;

// The sender: pseudo-random bytes in 64 KiB chunks, hashed as they are written.
const SENDER = `
const net = require('net'), crypto = require('crypto');
const [host, port, total] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const h = crypto.createHash('sha256'); let sent = 0, clientPort = 0; const t0 = process.hrtime.bigint();
const s = net.connect({ host, port }, () => {
  clientPort = s.localPort;
  const pump = () => {
    while (sent < total) {
      const chunk = crypto.randomBytes(Math.min(65536, total - sent));
      h.update(chunk); sent += chunk.length;
      if (!s.write(chunk)) { s.once('drain', pump); return; }
    }
    s.end();
  };
  pump();
});
s.on('data', () => {});
s.on('close', () => console.log(JSON.stringify({ bytes: sent, sha256: h.digest('hex'), clientPort,
  seconds: Number(process.hrtime.bigint() - t0) / 1e9 })));
`;

/**
 * Sends `bytes` pseudo-random bytes over one TCP connection from the client to the server's
 * `serverAddress` and returns the SHA-256 seen at both ends.
 */
export async function tcpTransfer(
  lab: Lab,
  opts: { bytes: number; serverAddress?: string; port?: number; timeoutMs?: number },
): Promise<TransferResult> {
  const host = opts.serverAddress ?? lab.server.ipv4;
  const port = opts.port ?? 5400;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const receiver = startOnNode(lab, 'server', [process.execPath, '-e', RECEIVER, host, String(port)], timeoutMs);
  try {
    await waitForOutput(receiver.child, 'listening', 'the TCP receiver');
    const sender = await runOnNode(
      lab,
      'client',
      [process.execPath, '-e', SENDER, host, String(port), String(opts.bytes)],
      timeoutMs,
    );
    const got = await receiver.result;
    const sentLine = sender.stdout.trim().split('\n').pop() ?? '';
    const gotLine = got.stdout.trim().split('\n').pop() ?? '';
    if (sender.status !== 0 || !sentLine.startsWith('{')) {
      throw new LabError(`TCP sender failed (status ${sender.status}): ${sender.stderr.trim().split('\n')[0] ?? ''}`);
    }
    if (!gotLine.startsWith('{')) throw new LabError(`TCP receiver printed no result: ${got.stderr.trim()}`);
    const s = JSON.parse(sentLine) as { bytes: number; sha256: string; clientPort: number; seconds: number };
    const r = JSON.parse(gotLine) as { bytes: number; sha256: string };
    return {
      bytes: s.bytes,
      sentSha256: s.sha256,
      receivedBytes: r.bytes,
      receivedSha256: r.sha256,
      clientPort: s.clientPort,
      seconds: s.seconds,
    };
  } finally {
    receiver.child.kill('SIGKILL');
  }
}

export interface Iperf3Result {
  /** Goodput the receiver measured, bits/s. */
  bitsPerSecond: number;
  retransmits: number;
  seconds: number;
}

/** One iperf3 TCP run from the client to the server, `seconds` long. */
export async function iperf3(
  lab: Lab,
  opts: { seconds: number; serverAddress?: string; port?: number },
): Promise<Iperf3Result> {
  const host = opts.serverAddress ?? lab.server.ipv4;
  const port = String(opts.port ?? 5201);
  const limitMs = (opts.seconds + 20) * 1000;
  const server = startOnNode(lab, 'server', ['iperf3', '-s', '-1', '--forceflush', '-B', host, '-p', port], limitMs);
  try {
    await waitForOutput(server.child, 'Server listening', 'iperf3 -s');
    const res = await runOnNode(
      lab,
      'client',
      ['iperf3', '-c', host, '-p', port, '-t', String(opts.seconds), '-J', '--connect-timeout', '3000'],
      limitMs,
    );
    let report: { error?: string; end?: { sum_received?: { bits_per_second: number; seconds: number }; sum_sent?: { retransmits?: number } } };
    try {
      report = JSON.parse(res.stdout);
    } catch {
      throw new LabError(`iperf3 printed no JSON (status ${res.status}): ${res.stderr.trim()}`);
    }
    if (report.error || !report.end?.sum_received) throw new LabError(`iperf3 failed: ${report.error ?? 'no result'}`);
    return {
      bitsPerSecond: report.end.sum_received.bits_per_second,
      retransmits: report.end.sum_sent?.retransmits ?? 0,
      seconds: report.end.sum_received.seconds,
    };
  } finally {
    server.child.kill('SIGKILL');
  }
}
