// What the CLI (and later the agent) does with policies against a loaded bae: validate and
// compile everything first, then touch the maps; keep the applied set beside the pins.
import { ifindexOf, openLoadedMap, type BpfMap } from '../datapath';
import { UsageError } from '../errors';
import { applyCompiled, type ApplyResult } from './apply';
import { compilePolicies } from './compile';
import type { CompiledSet } from './compiled-set';
import { PolicyError } from './errors';
import { policyMapsOf, type PolicyMaps } from './maps';
import type { Policy } from './model';
import { checkUniqueNames, parsePolicyFiles } from './parse';
import { readCounters, readTriggers } from './state';
import { loadStoredSet, policiesFromStored, saveStoredSet, withApplyLock, type StoredPolicy } from './store';

/**
 * The delay line's step of writing a set, supplied by the caller: the policy area does not know
 * who holds the delay line (the agent does: src/agent/ supplies agentDelayLineStep, the CLI hands
 * it in). Apply and delete call it after the set compiled and before any map is written; when it
 * rejects, nothing is written.
 */
export interface DelayLineStep {
  /** Makes the delay classes of `set` ready for its rules, or refuses the set. */
  prepare(pinDir: string, set: Pick<CompiledSet, 'rules' | 'delayClasses'>): Promise<void>;
}

/** Where apply and delete write, and who prepares the delay line for the set. */
export interface WriteOptions {
  pinDir: string;
  delayLine: DelayLineStep;
  /** Write the set monitor-only: every policy counts and sends events, none enforces (this write only). */
  monitor?: boolean;
}

export interface LoadedPolicyMaps {
  maps: PolicyMaps;
  ctlMapId: number;
  close(): void;
}

export function openPolicyMaps(pinDir: string): LoadedPolicyMaps {
  const opened: BpfMap[] = [];
  try {
    const maps = policyMapsOf((name) => {
      const m = openLoadedMap(name, pinDir);
      opened.push(m);
      return m;
    });
    return { maps, ctlMapId: maps.ctl.id, close: () => opened.forEach((m) => m.close()) };
  } catch (err) {
    opened.forEach((m) => m.close());
    throw err;
  }
}

/** Resolves match.iface in this network namespace; an unknown interface is the policy's error. */
function resolveIface(name: string, p: Policy): number {
  try {
    return ifindexOf(name);
  } catch {
    throw new PolicyError({ ...p.source, policy: p.name }, `match.iface: no interface named '${name}' here`);
  }
}

/** Compiles a set the way apply will write it (kernel actions only, interfaces resolved). */
export function compileForApply(policies: readonly Policy[], monitor = false): CompiledSet {
  return compilePolicies(policies, { requireKernelActions: true, ifindexOf: resolveIface, monitor });
}

export interface ApplyOutcome {
  policies: Policy[];
  added: string[];
  changed: string[];
  unchanged: string[];
  removed: string[];
  result: ApplyResult;
}

function diff(before: readonly StoredPolicy[], after: readonly Policy[]): Pick<ApplyOutcome, 'added' | 'changed' | 'unchanged' | 'removed'> {
  const old = new Map(before.map((p) => [p.name, p.id]));
  const names = new Set(after.map((p) => p.name));
  return {
    added: after.filter((p) => !old.has(p.name)).map((p) => p.name),
    changed: after.filter((p) => old.has(p.name) && old.get(p.name) !== p.id).map((p) => p.name),
    unchanged: after.filter((p) => old.get(p.name) === p.id).map((p) => p.name),
    removed: before.filter((p) => !names.has(p.name)).map((p) => p.name),
  };
}

/** `compiled`: `set` compiled already as compileForApply() would (a 10k-policy compile is not free). */
async function writeSet(loaded: LoadedPolicyMaps, opts: WriteOptions, before: StoredPolicy[], set: Policy[], compiled = compileForApply(set, opts.monitor)): Promise<ApplyOutcome> {
  // Delay-class actions (the agent's, through opts.delayLine): inline mode and a running agent,
  // or nothing is written.
  await opts.delayLine.prepare(opts.pinDir, compiled);
  const result = await applyCompiled(loaded.maps, compiled);
  saveStoredSet(opts.pinDir, loaded.ctlMapId, set);
  return { policies: set, ...diff(before, set), result };
}

/**
 * Applies policy files: each named policy is added or replaced, the others stay (with
 * `replace`, the files become the whole set). Nothing is written unless every file parses,
 * validates and the whole set compiles into the maps.
 */
export async function applyPolicyFiles(paths: readonly string[], opts: WriteOptions & { replace?: boolean }): Promise<ApplyOutcome> {
  const incoming = parsePolicyFiles(paths);
  // Refuse what the datapath cannot do before opening anything: the error names the file.
  const early = compilePolicies(incoming, { requireKernelActions: true, monitor: opts.monitor ?? false });
  const loaded = openPolicyMaps(opts.pinDir);
  try {
    return await withApplyLock(opts.pinDir, async () => {
      const stored = loadStoredSet(opts.pinDir, loaded.ctlMapId);
      const names = new Set(incoming.map((p) => p.name));
      const kept = opts.replace ? [] : policiesFromStored(stored.filter((s) => !names.has(s.name)), opts.pinDir);
      const set = [...kept, ...incoming];
      checkUniqueNames(set);
      // When the files are the whole set and name no interface, that compile is the one to write.
      const whole = kept.length === 0 && !incoming.some((p) => p.match.iface);
      return writeSet(loaded, opts, stored, set, whole ? early : compileForApply(set, opts.monitor));
    });
  } finally {
    loaded.close();
  }
}

export async function deletePolicies(names: readonly string[], opts: WriteOptions): Promise<ApplyOutcome> {
  const loaded = openPolicyMaps(opts.pinDir);
  try {
    return await withApplyLock(opts.pinDir, async () => {
      const stored = loadStoredSet(opts.pinDir, loaded.ctlMapId);
      for (const name of names) {
        if (!stored.some((s) => s.name === name)) throw new UsageError(`no applied policy named '${name}' (see \`bae policy list\`)`);
      }
      const set = policiesFromStored(stored.filter((s) => !names.includes(s.name)), opts.pinDir);
      return writeSet(loaded, opts, stored, set);
    });
  } finally {
    loaded.close();
  }
}

export interface PolicyStatus {
  name: string;
  id: number;
  source: string;
  spec: Record<string, unknown>;
  counters: { matched: bigint; applied: bigint; fired: bigint; blocks: bigint };
  /** Trigger windows held in the kernel, and how many of them are on now. */
  windows: number;
  activeWindows: number;
}

export function policyStatuses(pinDir: string, nowNs?: bigint): PolicyStatus[] {
  const loaded = openPolicyMaps(pinDir);
  try {
    const stored = loadStoredSet(pinDir, loaded.ctlMapId);
    const counters = readCounters(loaded.maps);
    const triggers = readTriggers(loaded.maps);
    const now = nowNs ?? process.hrtime.bigint();
    return stored.map((s) => {
      const mine = triggers.filter((t) => t.key.id === s.id);
      return {
        name: s.name,
        id: s.id,
        source: `${s.source.file}:${s.source.line}:${s.source.column}`,
        spec: s.spec,
        counters: counters.get(s.id) ?? { matched: 0n, applied: 0n, fired: 0n, blocks: 0n },
        windows: mine.length,
        activeWindows: mine.filter((t) => now < t.state.firedUntil).length,
      };
    });
  } finally {
    loaded.close();
  }
}

export function storedNames(pinDir: string): Map<number, string> {
  const loaded = openPolicyMaps(pinDir);
  try {
    return new Map(loadStoredSet(pinDir, loaded.ctlMapId).map((s) => [s.id, s.name]));
  } finally {
    loaded.close();
  }
}

