// Network namespaces for tests: `bt<pid>-<tag>` with a veth pair inside, always removed (with
// everything in it) by remove(), which tests call from finally/after also when they fail.
// Code that must run inside runs in a child process entered with `nsenter --net=`, which keeps
// the host's mount namespace and therefore /sys/fs/bpf (see DESIGN.md on `ip netns exec`).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { runNodeChild } from './child';

export interface Netns {
  readonly name: string;
  /** /run/netns/<name>, for `nsenter --net=`. */
  readonly path: string;
  /** Runs a command inside the namespace and returns its stdout; throws with stderr on failure. */
  exec(cmd: string, args: string[]): string;
  /**
   * Runs `body` (JavaScript) in a Node child inside the namespace, with `dp` bound to the
   * datapath module; the body's `return` value comes back through JSON. Bounded by timeoutMs.
   */
  runNode<T = unknown>(body: string, timeoutMs?: number): Promise<T>;
  /** Deletes the namespace and every interface in it; safe twice. */
  remove(): void;
}

export interface NetnsWithVeth extends Netns {
  /** The two ends of the veth pair, both up, both inside the namespace. */
  readonly veth: [string, string];
}

const live = new Set<Netns>();
let exitHookInstalled = false;

/** Makes namespace `bt<pid>-<tag>`. Interface names derived from it stay within 15 characters. */
export function createNetns(tag: string): Netns {
  if (!/^[a-z0-9]{1,4}$/.test(tag)) throw new Error(`netns tag must be 1-4 lowercase letters or digits, got '${tag}'`);
  const name = `bt${process.pid}-${tag}`;
  const nsPath = `/run/netns/${name}`;
  if (fs.existsSync(nsPath)) execFileSync('ip', ['netns', 'del', name]); // left over by a killed run of this pid
  execFileSync('ip', ['netns', 'add', name]);
  let removed = false;
  const ns: Netns = {
    name,
    path: nsPath,
    exec(cmd, args) {
      return execFileSync('nsenter', [`--net=${nsPath}`, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    },
    runNode<T>(body: string, timeoutMs = 20_000): Promise<T> {
      return runNodeChild<T>(body, { prefix: ['nsenter', `--net=${nsPath}`], timeoutMs, label: `child in ${name}` });
    },
    remove() {
      if (removed) return;
      removed = true;
      live.delete(ns);
      try {
        execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    },
  };
  live.add(ns);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort for a test that forgot: a namespace never outlives the test process.
    process.on('exit', () => {
      for (const n of [...live]) n.remove();
    });
  }
  return ns;
}

/** A namespace with a veth pair `bt<pid><tag>a` / `...b`, both up. */
export function createNetnsWithVeth(tag: string): NetnsWithVeth {
  const ns = createNetns(tag);
  try {
    const a = `bt${process.pid}${tag}a`.slice(-15);
    const b = `bt${process.pid}${tag}b`.slice(-15);
    execFileSync('ip', ['-n', ns.name, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    execFileSync('ip', ['-n', ns.name, 'link', 'set', a, 'up']);
    execFileSync('ip', ['-n', ns.name, 'link', 'set', b, 'up']);
    return Object.assign(ns, { veth: [a, b] as [string, string] });
  } catch (err) {
    ns.remove();
    throw err;
  }
}
