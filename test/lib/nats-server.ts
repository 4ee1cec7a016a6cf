// A real nats-server (the Debian package) for the tests of one file: on a free loopback port,
// JetStream on with a store directory of its own, killed and its store removed after, also when
// a test failed. kill() then start() restarts it on the same port and store (start(args) with other
// options: new credentials, say). Options (credentials, TLS, a cluster) come as nats-server flags.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  /** The server's log so far (for assertion messages). */
  log(): string;
  /** Kills the server (SIGKILL, as a crash); stop() then start() again keeps the port and store. */
  kill(): Promise<void>;
  /** Starts it again on its port and store, with `args` instead of the extra flags it had (when given). */
  start(args?: readonly string[]): Promise<void>;
  /** Kills it and removes its store; safe twice. */
  stop(): Promise<void>;
}

/** Whether a loopback TCP listener can bind `port` right now (0: any); the port it got, or undefined. */
function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => {
      const got = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(got));
    });
  });
}

/**
 * A loopback TCP port nobody listens on right now, below the kernel's ephemeral range
 * (net.ipv4.ip_local_port_range): a port from that range can be handed to any outgoing
 * connection while a server is down between kill() and start() (and a client reconnecting to
 * 127.0.0.1:P from port P connects to itself), and the restart then fails with EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // no procfs: the default range
  }
  const [from, to] = [Math.max(1024, low - 12_000), low - 1];
  for (let i = 0; to > from && i < 100; i++) {
    const port = await tryListen(randomInt(from, to + 1));
    if (port !== undefined) return port;
  }
  const any = await tryListen(0);
  if (any === undefined) throw new Error('no free loopback port');
  return any;
}

/** Whether nats-server is installed; under CI=true a missing one is a failure, not a skip. */
export function natsServerAvailable(): boolean {
  const ok = spawnSync('nats-server', ['--version'], { encoding: 'utf8' }).status === 0;
  if (!ok && process.env.CI === 'true') assert.fail('nats-server is not installed (apt-get install nats-server)');
  return ok;
}

async function waitListening(port: number, child: ChildProcess, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}`);
    const up = await new Promise<boolean>((resolve) => {
      const c = net.createConnection({ port, host: '127.0.0.1' });
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nats-server did not listen on ${port} within ${deadlineMs} ms`);
}

export interface NatsServerOptions {
  /** More nats-server flags: --user/--pass, --auth, --tls..., --cluster/--routes. */
  args?: readonly string[];
  /** The port (default: a free one). */
  port?: number;
  /** The server's name (default bae-test-<pid>); a cluster's servers need distinct ones. */
  name?: string;
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-test-nats-'));
  let extra = [...(opts.args ?? [])];
  const name = opts.name ?? `bae-test-${process.pid}`;
  const argv = (p: number) => ['-a', '127.0.0.1', '-p', String(p), '-js', '-sd', storeDir, '-n', name, ...extra];
  let child: ChildProcess | undefined;
  let out = '';
  let port = opts.port ?? 0;
  const start = async () => {
    // A port can be taken between freePort() and the server's bind: a few attempts.
    for (let attempt = 0; attempt < 5; attempt++) {
      if (port === 0 || (attempt > 0 && opts.port === undefined)) port = await freePort();
      const c = spawn('nats-server', argv(port), { stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      try {
        await waitListening(port, c, 10_000);
        return;
      } catch (err) {
        c.kill('SIGKILL');
        if (attempt === 4) throw new Error(`${(err as Error).message}\n${out}`, { cause: err });
      }
    }
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  };
  // A test process that ends without its after() (a timeout, an uncaught error) still kills it.
  const onExit = () => child?.kill('SIGKILL');
  process.once('exit', onExit);
  await start();
  let stopped = false;
  return {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    storeDir,
    log: () => out,
    kill,
    start: async (args?: readonly string[]) => {
      if (args) extra = [...args];
      const keep = port;
      const c = spawn('nats-server', argv(keep), { stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      await waitListening(keep, c, 10_000);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      process.off('exit', onExit);
      await kill();
      fs.rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
