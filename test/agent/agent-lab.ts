// The agent in the inline lab of the test (test/lib/bae-lab.ts): `bae agent` as a child process in
// the bae namespace (entered with nsenter, so that pins stay on the host's /sys/fs/bpf), CLI calls
// from other processes, RTT probes from the client, and a teardown that stops every agent first
// and then removes everything, also when a test failed.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { agentSocketPath } from '../../src/agent/client';
import { run, type Lab } from '../../src/lab';
import { BAE_BIN } from '../lib/bae-cli';
import { createBaeLab, type BaeLab, type BaeLabOptions } from '../lib/bae-lab';

export interface AgentLab extends BaeLab {
  socket: string;
  startAgent(extra?: readonly string[]): Promise<AgentProcess>;
  /** Starts `argv` (an agent command line) in the bae namespace, with the test's environment. */
  startCommand(argv: readonly string[], env?: Record<string, string>): Promise<AgentProcess>;
}

export interface AgentProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Sends `signal` and resolves with the exit code (SIGKILL after 10 s). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `options.env` adds to (or overrides) the environment of every bae it runs: BAE_RUN_DIR, to share one. */
export function createAgentLab(tag: string, options: BaeLabOptions = {}): AgentLab {
  const base = createBaeLab(tag, { env: { BAE_LOG_LEVEL: 'info', ...options.env } });
  const { lab, pinDir, env } = base;
  const agents: AgentProcess[] = [];
  const nsenter = ['nsenter', `--net=/run/netns/${lab.ns.bae}`, '--'];

  const startAgent = (extra: readonly string[] = []): Promise<AgentProcess> =>
    startCommand([process.execPath, BAE_BIN, 'agent', '--iface', lab.bae.clientPort, '--peer', lab.bae.serverPort, '--pin-dir', pinDir, ...extra]);

  const startCommand = (command: readonly string[], extraEnv: Record<string, string> = {}): Promise<AgentProcess> => {
    const argv = [...nsenter, ...command];
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const proc: AgentProcess = {
      child,
      stdout: () => out,
      stderr: () => err,
      stop: async (signal = 'SIGTERM') => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      },
    };
    agents.push(proc);
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`bae agent did not start within 20 s: ${err}`)), 20_000);
      const check = () => {
        if (out.includes('bae agent running')) {
          clearTimeout(deadline);
          resolve(proc);
        }
      };
      child.stdout!.on('data', check);
      child.on('exit', (code) => {
        clearTimeout(deadline);
        reject(new Error(`bae agent exited (${code}) before it was ready: ${err}`));
      });
    });
  };

  return {
    ...base,
    socket: path.join(base.runDir, path.basename(agentSocketPath(pinDir))),
    startAgent,
    startCommand,
    teardown: () => {
      try {
        for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
      } finally {
        base.teardown();
      }
    },
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** RTTs (ms) of `count` pings from the client (from `source`, default its first address). */
export function pingRtts(lab: Lab, count: number, source?: string): number[] {
  const argv = ['ip', 'netns', 'exec', lab.client.ns, 'ping', '-n', '-c', String(count), '-i', '0.02', '-W', '2', ...(source ? ['-I', source] : []), lab.server.ipv4];
  const res = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000 });
  const rtts = [...res.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  assert.equal(rtts.length, count, `every ping came back: ${res.stdout}${res.stderr}`);
  return rtts;
}

// TCP round trips from one source address: connect() to a closed port of the server is one SYN
// out and one RST back; the time until connect_ex returns is that round trip (µs resolution).
const TCP_RTT = `
import socket, sys, time
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    s.bind((src, 0))
    t = time.perf_counter()
    r = s.connect_ex((dst, 9))
    out.append((time.perf_counter() - t) * 1000.0)
    s.close()
    if r not in (111,):
        print('connect_ex', r, file=sys.stderr); sys.exit(1)
    time.sleep(0.02)
print(' '.join('%.4f' % x for x in out))
`;

/** RTTs (ms) of `count` TCP SYN -> RST round trips from `source` on the client to the server. */
export function tcpRtts(lab: Lab, source: string, count: number): number[] {
  const res = spawnSync('ip', ['netns', 'exec', lab.client.ns, 'python3', '-c', TCP_RTT, source, lab.server.ipv4, String(count)], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(res.status, 0, `tcp rtt probe: ${res.stderr}`);
  return res.stdout.trim().split(/\s+/).map(Number);
}

/** Echo requests the server's stack has received (its namespace's Icmp InEchos). */
export function serverInEchos(al: AgentLab): number {
  const lines = run(['ip', 'netns', 'exec', al.lab.server.ns, 'cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Icmp:'));
  const names = lines[0]!.split(/\s+/);
  return Number(lines[1]!.split(/\s+/)[names.indexOf('InEchos')]);
}

const SINK = `
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(15)
print('listening', flush=True)
c, _ = s.accept(); c.settimeout(10); n = 0
try:
    while True:
        d = c.recv(65536)
        if not d: break
        n += len(d)
except OSError:
    pass
print(n, flush=True)
`;

// Sends as fast as TCP lets it for `seconds`, then resets the connection (SO_LINGER 0), so the
// flow ends on time however many segments are lost; prints the bytes handed to the socket.
const UPLOAD = `
import socket, struct, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
c.setblocking(False); chunk = b'x' * 65536; sent = 0; end = time.time() + float(sys.argv[3])
while time.time() < end:
    try:
        sent += c.send(chunk)
    except BlockingIOError:
        time.sleep(0.001)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); c.close()
print(sent, flush=True)
`;

/** A TCP upload from the client's first address to `port` on the server for `seconds`, then a reset. */
export async function uploadFor(lab: Lab, port: number, seconds: number): Promise<number> {
  const sink = spawn('ip', ['netns', 'exec', lab.server.ns, 'timeout', '30', 'python3', '-c', SINK, lab.server.ipv4, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the TCP sink did not start within 10 s')), 10_000);
      sink.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
      sink.on('exit', () => reject(new Error('the TCP sink exited before it listened')));
    });
    const res = spawnSync('ip', ['netns', 'exec', lab.client.ns, 'timeout', String(seconds + 10), 'python3', '-c', UPLOAD, lab.server.ipv4, String(port), String(seconds)], {
      encoding: 'utf8',
      timeout: (seconds + 15) * 1000,
    });
    assert.equal(res.status, 0, `upload: ${res.stderr}`);
    return Number(res.stdout.trim());
  } finally {
    if (sink.exitCode === null) sink.kill('SIGKILL');
  }
}
