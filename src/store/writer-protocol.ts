// The messages between a StoreWriter (writer.ts) and its thread (writer-worker.ts).
import type { PackedPackets } from './batch';
import type { EventRow, PolicyVersionRow, SnapshotRow } from './store';

export interface WriterData {
  file: string;
  retainDays: number;
  retainMb: number;
  retainEveryMs: number;
}

export type WriterTable = 'packets' | 'events' | 'snapshots' | 'policyVersions';

export type ToWriter =
  | { op: 'write'; table: 'packets'; packed: PackedPackets }
  | { op: 'write'; table: 'events'; rows: EventRow[] }
  | { op: 'write'; table: 'snapshots'; rows: SnapshotRow[] }
  | { op: 'write'; table: 'policyVersions'; rows: PolicyVersionRow[] }
  | { op: 'flush'; id: number }
  | { op: 'retain'; id: number }
  | { op: 'close' };

export type RetainReply = { deleted: number; usedBytes: number } | { error: string };

export type FromWriter =
  | { op: 'ready'; schemaVersion: number }
  | { op: 'openFailed'; message: string; sqliteCode: string | null }
  | { op: 'committed'; table: WriterTable; rows: number }
  | { op: 'failed'; table: WriterTable; rows: number; message: string; sqliteCode: string | null }
  | { op: 'flushed'; id: number }
  | { op: 'retained'; id: number; result: RetainReply }
  | { op: 'closed' };
