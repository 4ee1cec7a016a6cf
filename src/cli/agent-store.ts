// The store options of `bae agent` (kept apart from agent.ts, which several areas edit):
// --db FILE (default on; --no-db: nothing stored), --retain-days, --retain-mb,
// --snapshot-interval, and the start of the agent's StoreBridge from them.
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_SNAPSHOT_MS, StoreBridge } from '../agent';
import { parseDuration } from '../policy';
import { dbOption, numberIn } from './options';

export interface AgentStoreOpts {
  /** The file, or false with --no-db. */
  db: string | false;
  retainDays?: number;
  retainMb?: number;
  snapshotInterval?: number;
}

function durationMs(value: string): number {
  const ns = parseDuration(value);
  if (typeof ns === 'string') throw new InvalidArgumentError(ns);
  const ms = Number(ns / 1_000_000n);
  if (ms < 1000 || ms > 86_400_000) throw new InvalidArgumentError('expected a duration from 1s to 1d');
  return ms;
}

export function addAgentStoreOptions(cmd: Command): Command {
  return cmd
    .addOption(dbOption('the SQLite store of events, profile snapshots and policy versions (BAE_DB)'))
    .option('--no-db', 'store nothing')
    .option('--retain-days <days>', 'remove stored rows older than this (default: keep)', numberIn(0.001, 36_500))
    .option('--retain-mb <mb>', 'remove the oldest stored rows while the store holds more than this (default: no limit)', numberIn(1, 16 * 1024 * 1024))
    .option('--snapshot-interval <duration>', `time between two stored profile snapshots (default ${DEFAULT_SNAPSHOT_MS / 1000}s)`, durationMs);
}

/** Starts storing when --db is on (undefined with --no-db); a store that cannot open is a StoreError. */
export function startAgentStore(opts: AgentStoreOpts, pinDir: string): Promise<StoreBridge> | undefined {
  if (opts.db === false) return undefined;
  return StoreBridge.start({
    db: opts.db,
    pinDir,
    ...(opts.retainDays !== undefined ? { retainDays: opts.retainDays } : {}),
    ...(opts.retainMb !== undefined ? { retainMb: opts.retainMb } : {}),
    ...(opts.snapshotInterval !== undefined ? { snapshotMs: opts.snapshotInterval } : {}),
  });
}

/** The line of `bae agent status` about the store, none when the agent stores nothing. */
export function storeStatusLines(extras: unknown): string[] {
  const st = (extras as { store?: { file: string; committed: Record<string, number>; failedRows: number; droppedRows: number; lastError: { message: string } | null } } | undefined)?.store;
  if (!st) return [];
  const c = st.committed;
  const trouble = st.failedRows || st.droppedRows ? `; ${st.failedRows} rows failed, ${st.droppedRows} dropped${st.lastError ? ` (last: ${st.lastError.message})` : ''}` : '';
  return [`  store: ${st.file}: ${c.events ?? 0} events, ${c.snapshots ?? 0} profile snapshots, ${c.policyVersions ?? 0} policy versions, ${c.packets ?? 0} packets stored${trouble}`];
}
