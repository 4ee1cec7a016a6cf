// Scenarios in the store: a name, the policies as YAML, each policy's seed, the frames (packets
// of the scenario) and the baseline decision log the first run through the offline replay gave
// (docs/scenarios.md). `bae record` writes all of it; `bae import` writes the frames only, and the
// first `bae replay` of an imported scenario, given policies, writes the rest.
import { toJson } from '../json';
import type { PacketRecord, Store } from '../store';
import { StoreError } from '../store';
import type { Decision, ReplayFrame } from './replay';

export interface ScenarioData {
  name: string;
  createdNs: bigint;
  policies: string | null;
  seeds: Record<string, string>;
  durationMs: number | null;
  /** The decision log of the first replay; null until one ran. */
  baseline: Decision[] | null;
  packets: number;
}

type Row = { id: number; name: string; created_ns: bigint; policies: string | null; seeds: string | null; baseline: string | null; duration_ms: bigint | null };

function rowOf(store: Store, name: string): Row {
  const row = store.db.prepare('SELECT id, name, created_ns, policies, seeds, baseline, duration_ms FROM scenarios WHERE name = ?').safeIntegers(true).get(name) as (Omit<Row, 'id'> & { id: bigint }) | undefined;
  if (!row) throw new StoreError(`store ${store.file}: no scenario named '${name}' (see \`bae scenarios\`)`);
  return { ...row, id: Number(row.id) };
}

export function decisionsToJson(decisions: readonly Decision[]): string {
  return toJson(decisions);
}

export function decisionsFromJson(text: string): Decision[] {
  const raw = JSON.parse(text) as (Omit<Decision, 'timeNs'> & { timeNs: string })[];
  return raw.map((d) => ({ ...d, timeNs: BigInt(d.timeNs) }));
}

export function loadScenario(store: Store, name: string): ScenarioData {
  const r = rowOf(store, name);
  const packets = store.db.prepare('SELECT COUNT(*) AS n FROM packets WHERE scenario_id = ?').get(r.id) as { n: number };
  return {
    name: r.name,
    createdNs: r.created_ns,
    policies: r.policies,
    seeds: r.seeds ? (JSON.parse(r.seeds) as Record<string, string>) : {},
    durationMs: r.duration_ms === null ? null : Number(r.duration_ms),
    baseline: r.baseline ? decisionsFromJson(r.baseline) : null,
    packets: packets.n,
  };
}

/** The scenario's frames, in time order. */
export function scenarioFrames(store: Store, name: string): ReplayFrame[] {
  const out: ReplayFrame[] = [];
  for (const p of store.packets({ scenario: name })) out.push({ timeNs: p.tsNs, ifindex: p.ifindex, data: p.data });
  return out;
}

/** Writes the policies, seeds and baseline of a scenario (the first replay of an imported one). */
export function saveBaseline(store: Store, name: string, policies: string, seeds: Record<string, string>, baseline: readonly Decision[]): void {
  const r = rowOf(store, name);
  store.db.prepare('UPDATE scenarios SET policies = ?, seeds = ?, baseline = ? WHERE id = ?').run(policies, JSON.stringify(seeds), decisionsToJson(baseline), r.id);
}

/** A recorded scenario, whole, in one transaction. */
export function saveRecording(
  store: Store,
  s: { name: string; createdNs: bigint; durationMs: number; policies: string; seeds: Record<string, string>; frames: readonly PacketRecord[]; baseline: readonly Decision[] },
): number {
  return store.db.transaction(() => {
    const id = store.insertScenario({ name: s.name, createdNs: s.createdNs, seed: null, policies: s.policies, durationMs: s.durationMs });
    store.insertPackets(s.frames, id);
    store.db.prepare('UPDATE scenarios SET seeds = ?, baseline = ? WHERE id = ?').run(JSON.stringify(s.seeds), decisionsToJson(s.baseline), id);
    return id;
  })();
}
