// `bae record`: for a while, every frame the datapath sees is captured whole (a policy of its own,
// RECORD_POLICY, first in decision order, that only captures), then the scenario is stored: the
// applied policies as YAML, each one's kernel seed, the frames, and the baseline decision log of
// one offline replay (replay.ts). docs/scenarios.md says what a recording does not see.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from '../errors';
import { applyPolicyFiles, deletePolicies, loadStoredSet, openPolicyMaps, policiesFromStored, type DelayLineStep } from '../policy';
import { CaptureReader, type PacketRecord } from '../reconstruct';
import type { Store } from '../store';
import { replayFrames, type ReplayResult } from './replay';
import { saveRecording } from './scenario-store';
import { policiesToYaml, readKernelSeeds, seedsByName, withSeeds } from './seeds';

/** How long the store's newest packet must stay the newest before a recording reads it, and at most how long to wait for that. */
const STORE_QUIET_MS = 1000;
const STORE_WAIT_MS = 10_000;

async function storeStill(store: Store): Promise<void> {
  const end = Date.now() + STORE_WAIT_MS;
  let last = store.lastPacketId();
  for (let since = Date.now(); Date.now() - since < STORE_QUIET_MS && Date.now() < end; ) {
    await sleep(100);
    const now = store.lastPacketId();
    if (now !== last) [last, since] = [now, Date.now()];
  }
}

/** The recording's own policy: applied for the recording, removed after it. */
export const RECORD_POLICY = 'bae-record';
/** Bytes kept of each frame: the capture record's maximum (bpf/capture.h). */
export const RECORD_SNAPLEN = 1536;
export const MAX_RECORD_MS = 3_600_000;

export interface RecordOptions {
  pinDir: string;
  name: string;
  durationMs: number;
  store: Store;
  delayLine: DelayLineStep;
  /** The agent stores captured frames (it reads the capture ring): take them from the store. */
  agentStores: boolean;
  signal?: AbortSignal;
  /** Progress for a person (stderr). */
  say?: (line: string) => void;
}

export interface RecordResult {
  name: string;
  frames: number;
  /** Frames kept shorter than they were (larger than RECORD_SNAPLEN). */
  truncated: number;
  policies: string[];
  durationMs: number;
  totals: ReplayResult['totals'];
}

function recordPolicyFile(): { file: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-record-'));
  const file = path.join(dir, `${RECORD_POLICY}.yaml`);
  fs.writeFileSync(
    file,
    `apiVersion: bae/v1
kind: Policy
metadata: { name: ${RECORD_POLICY}, description: "bae record: every frame, whole (removed when the recording ends)" }
spec:
  priority: 65535
  actions:
    - capture: { snaplen: ${RECORD_SNAPLEN} }
`,
  );
  return { file, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export async function recordScenario(o: RecordOptions): Promise<RecordResult> {
  if (!Number.isInteger(o.durationMs) || o.durationMs < 1 || o.durationMs > MAX_RECORD_MS) throw new UsageError(`a recording lasts 1 ms to 1 h, got ${o.durationMs} ms`);
  if (o.store.scenarios().some((s) => s.name === o.name)) throw new UsageError(`a scenario named '${o.name}' exists already (see \`bae scenarios\`)`);
  const say = o.say ?? (() => undefined);
  const loaded = openPolicyMaps(o.pinDir);
  let policies;
  let seeds;
  try {
    const stored = loadStoredSet(o.pinDir, loaded.ctlMapId);
    if (stored.some((s) => s.name === RECORD_POLICY)) throw new UsageError(`a recording runs already (policy ${RECORD_POLICY} is applied; \`bae policy delete ${RECORD_POLICY}\` ends a stale one)`);
    policies = policiesFromStored(stored, o.pinDir);
    seeds = seedsByName(policies, readKernelSeeds(loaded.maps));
  } finally {
    loaded.close();
  }

  const frames: PacketRecord[] = [];
  const keep = (r: PacketRecord) => {
    if (r.policy === RECORD_POLICY) frames.push(r);
  };
  const reader = o.agentStores ? undefined : new CaptureReader({ pinDir: o.pinDir }, keep);
  const { file, cleanup } = recordPolicyFile();
  const startNs = BigInt(Date.now()) * 1_000_000n;
  const started = Date.now();
  let applied = false;
  try {
    reader?.consume(); // what an earlier capture left is not this recording's
    frames.length = 0;
    await applyPolicyFiles([file], { pinDir: o.pinDir, delayLine: o.delayLine });
    applied = true;
    say(`recording '${o.name}' for ${o.durationMs} ms (policies: ${policies.map((p) => p.name).join(', ') || 'none'})`);
    await sleep(o.durationMs, undefined, o.signal ? { signal: o.signal } : {}).catch(() => undefined);
  } finally {
    try {
      // Only what this call applied: an apply that failed (the set too large with one more
      // policy) changed nothing, and its error is the one to report.
      if (applied) await deletePolicies([RECORD_POLICY], { pinDir: o.pinDir, delayLine: o.delayLine });
    } finally {
      cleanup();
      reader?.consume();
      reader?.close();
    }
  }
  const durationMs = Date.now() - started;

  if (o.agentStores) {
    // The agent writes in batches (every 100 ms, later on a loaded machine): read once its store
    // has stood still for ten of them, rather than after a fixed time that a busy agent outlasts.
    await storeStill(o.store);
    for (const p of o.store.packets({ policy: RECORD_POLICY, sinceNs: startNs })) if (p.scenarioId === null) frames.push(p);
  }
  frames.sort((a, b) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0));
  say(`${frames.length} frames recorded; replaying them once for the baseline`);
  const seeded = withSeeds(policies, seeds);
  const baseline = await replayFrames(
    frames.map((f) => ({ timeNs: f.tsNs, ifindex: f.ifindex, data: f.data })),
    seeded,
  );
  saveRecording(o.store, {
    name: o.name,
    createdNs: startNs,
    durationMs,
    policies: policiesToYaml(policies),
    seeds,
    frames: frames.map((f) => ({ ...f, kind: 'captured' as const })),
    baseline: baseline.decisions,
  });
  return {
    name: o.name,
    frames: frames.length,
    truncated: frames.filter((f) => f.data.length < f.origLen).length,
    policies: policies.map((p) => p.name),
    durationMs,
    totals: baseline.totals,
  };
}
