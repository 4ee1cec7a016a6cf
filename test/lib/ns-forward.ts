// A TCP port on 127.0.0.1 inside a lab namespace that leads to a port on this process's own
// loopback: how a `bae agent` in the bae namespace reaches the test's nats-server. A listener in
// the namespace runs, per connection, a pipe process that enters this process's network
// namespace (nsenter) and connects there. Stopped (both sides killed) by stop(), safe twice.
import { spawn } from 'node:child_process';

const PIPE = `
const s = require('net').createConnection({ host: '127.0.0.1', port: Number(process.argv[1]) });
process.stdin.pipe(s); s.pipe(process.stdout);
s.on('error', () => process.exit(1)); s.on('close', () => process.exit(0)); process.stdin.on('end', () => s.end());`;

const LISTEN = `
const net = require('net'); const { spawn } = require('child_process');
const [hostNs, target, pipe] = process.argv.slice(1);
const kids = new Set();
const srv = net.createServer((c) => {
  const k = spawn('nsenter', ['--net=' + hostNs, '--', process.execPath, '-e', pipe, target], { stdio: ['pipe', 'pipe', 'ignore'] });
  kids.add(k);
  c.pipe(k.stdin); k.stdout.pipe(c);
  c.on('error', () => k.kill()); c.on('close', () => k.kill());
  k.on('exit', () => { kids.delete(k); c.destroy(); });
  k.stdin.on('error', () => {});
});
srv.listen(0, '127.0.0.1', () => console.log('port ' + srv.address().port));
process.on('SIGTERM', () => { for (const k of kids) k.kill('SIGKILL'); process.exit(0); });`;

export interface NsForward {
  /** The port on 127.0.0.1 in the namespace. */
  port: number;
  stop(): Promise<void>;
}

export function forwardIntoNamespace(ns: string, targetPort: number): Promise<NsForward> {
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, '--', process.execPath, '-e', LISTEN, `/proc/${process.pid}/ns/net`, String(targetPort), PIPE], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => {
      void stop();
      reject(new Error(`the forwarder in ${ns} did not start within 10 s: ${err}`));
    }, 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /port (\d+)/.exec(out);
      if (m) {
        clearTimeout(deadline);
        resolve({ port: Number(m[1]), stop });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(deadline);
      reject(new Error(`the forwarder in ${ns} exited (${code}): ${err}`));
    });
  });
}
