// The applied policy set, kept beside the pinned maps so that `policy list/show/delete` and
// `bae events` work from a new process. One JSON file per pin directory under /run/bae (a tmpfs,
// gone at reboot like the maps). It records the id of the pinned policy_ctl map: when bae was
// reloaded meanwhile, the maps are new and empty and the stored set no longer describes them.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Policy, SourcePosition } from './model';
import { BaeError } from '../errors';
import { API_VERSION, parsePolicyValues } from './parse';

export const DEFAULT_RUN_DIR = '/run/bae';

export interface StoredPolicy {
  name: string;
  id: number;
  /** Where it was written when applied. */
  source: SourcePosition;
  /** The normalized policy (spec.ts policySpec). */
  spec: Record<string, unknown>;
}

export interface StoredSet {
  version: 1;
  pinDir: string;
  /** Id of the policy_ctl map the set was written to. */
  ctlMapId: number;
  appliedAt: string;
  policies: StoredPolicy[];
}

export function runDir(): string {
  return process.env.BAE_RUN_DIR ?? DEFAULT_RUN_DIR;
}

export function stateFile(pinDir: string): string {
  const tag = crypto.createHash('sha256').update(path.resolve(pinDir)).digest('hex').slice(0, 12);
  return path.join(runDir(), `policies-${tag}.json`);
}

/** The stored set of the maps whose policy_ctl has `ctlMapId`; empty when none or stale. */
export function loadStoredSet(pinDir: string, ctlMapId: number): StoredPolicy[] {
  let raw: string;
  try {
    raw = fs.readFileSync(stateFile(pinDir), 'utf8');
  } catch {
    return [];
  }
  const set = JSON.parse(raw) as StoredSet;
  return set.version === 1 && set.ctlMapId === ctlMapId ? set.policies : [];
}

export function saveStoredSet(pinDir: string, ctlMapId: number, policies: readonly Policy[]): void {
  const file = stateFile(pinDir);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const set: StoredSet = {
    version: 1,
    pinDir: path.resolve(pinDir),
    ctlMapId,
    appliedAt: new Date().toISOString(),
    policies: policies.map((p) => ({ name: p.name, id: p.id, source: p.source, spec: p.spec as Record<string, unknown> })),
  };
  // Write and rename: a reader sees the old file or the new one.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(set, null, 2) + '\n', { mode: 0o644 });
  fs.renameSync(tmp, file);
}

export function removeStoredSet(pinDir: string): void {
  fs.rmSync(stateFile(pinDir), { force: true });
}

/** Stored policies back as Policy objects, validated like a file (a damaged state file is an error, not a surprise). */
export function policiesFromStored(stored: readonly StoredPolicy[], pinDir: string): Policy[] {
  const values = stored.map((s) => {
    const { name, ...spec } = s.spec;
    return { apiVersion: API_VERSION, kind: 'Policy', metadata: { name }, spec };
  });
  const policies = parsePolicyValues(values, stateFile(pinDir));
  policies.forEach((p, i) => (p.source = stored[i]!.source));
  return policies;
}

/**
 * Runs `fn` holding the apply lock of a pin directory: two applies at once would both write the
 * same idle generation. The lock is a directory (mkdir is atomic) holding the owner's pid; a lock
 * whose owner is gone is taken over.
 */
export async function withApplyLock<T>(pinDir: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const lock = `${stateFile(pinDir)}.lock`;
  fs.mkdirSync(path.dirname(lock), { recursive: true, mode: 0o755 });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner = NaN;
      try {
        owner = Number(fs.readFileSync(path.join(lock, 'pid'), 'utf8'));
      } catch {
        // The owner has not written its pid yet: wait.
      }
      if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
        fs.rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new BaeError('BAE_BUSY', `another policy apply on ${pinDir} is running (pid ${Number.isNaN(owner) ? '?' : owner}); try again`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

