// Shared by the bus benchmarks: a nats-server of their own (free loopback port, temp store), a
// veth pair of their own in the host's namespace (no traffic crosses it: the agent needs a port
// to load bae on, the benchmarks feed the program with BPF_PROG_TEST_RUN), a `bae agent` in
// ingress mode on it with its own pin and run directories, and one teardown that removes all of
// it, also when the benchmark fails.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startNatsServer, type NatsServer } from '../../test/lib/nats-server';
import { note, REPO } from './lab';

const BAE_BIN = path.join(REPO, 'bin/bae');

export interface BusBench {
  server: NatsServer;
  /** The port bae is loaded on (ingress mode). */
  iface: string;
  pinDir: string;
  runDir: string;
  node: string;
  agent: ChildProcess;
  /** `bae ...args --pin-dir pinDir` (BAE_RUN_DIR set); throws with its stderr on failure. */
  bae(args: string[]): string;
  teardown(): Promise<void>;
}

export async function startBusBench(tag: string, agentArgs: string[] = []): Promise<BusBench> {
  const iface = `bb${process.pid}${tag}`.slice(-13);
  const pinDir = `/sys/fs/bpf/bae-bench-${process.pid}-${tag}`;
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-bench-run-'));
  const node = `bench-${tag}`;
  const env = { ...process.env, BAE_RUN_DIR: runDir, BAE_LOG_LEVEL: 'warn' };
  let server: NatsServer | undefined;
  let agent: ChildProcess | undefined;
  const teardown = async () => {
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      const gone = new Promise((r) => agent!.once('exit', r));
      agent.kill('SIGTERM');
      const t = setTimeout(() => agent!.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
    }
    try {
      execFileSync(process.execPath, [BAE_BIN, 'unload', '--pin-dir', pinDir], { env, stdio: 'ignore' });
    } catch {
      /* not loaded */
    }
    fs.rmSync(pinDir, { recursive: true, force: true });
    try {
      execFileSync('ip', ['link', 'del', `${iface}a`], { stdio: 'ignore' });
    } catch {
      /* gone */
    }
    fs.rmSync(runDir, { recursive: true, force: true });
    await server?.stop();
  };
  try {
    execFileSync('ip', ['link', 'add', `${iface}a`, 'type', 'veth', 'peer', 'name', `${iface}b`]);
    execFileSync('ip', ['link', 'set', `${iface}a`, 'up']);
    execFileSync('ip', ['link', 'set', `${iface}b`, 'up']);
    server = await startNatsServer();
    const child = spawn(process.execPath, [BAE_BIN, 'agent', '--iface', `${iface}a`, '--pin-dir', pinDir, '--nats', server.url, '--node', node, ...agentArgs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    agent = child;
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`bae agent did not start within 20 s: ${err}`)), 20_000);
      child.stdout!.on('data', () => {
        if (out.includes('bae agent running')) {
          clearTimeout(deadline);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(deadline);
        reject(new Error(`bae agent exited (${code}): ${err}`));
      });
    });
    note(`agent ${node} on ${iface}a, NATS ${server.url}`);
    const bae = (args: string[]) => execFileSync(process.execPath, [BAE_BIN, ...args, '--pin-dir', pinDir], { env, encoding: 'utf8' });
    return { server, iface: `${iface}a`, pinDir, runDir, node, agent: child, bae, teardown };
  } catch (err) {
    await teardown();
    throw err;
  }
}

/** Percentile `p` (0..100) of `xs` (nearest rank). */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
