// StoreWriter: how the agent writes the store without waiting on it. Rows are taken at once
// (never awaited), packed into batches (by count, or every batchMs), and handed to a worker
// thread that owns the write connection and commits each batch in one transaction. A write
// that fails there (SQLITE_FULL: disk full, or any other) is a StoreError (BAE_STORE) that is
// counted, logged and handed to onError: the rows of that batch are lost, the ones committed
// before stay, and the writer goes on taking rows (a later batch is written when the disk has
// room again). When the thread lags more than maxPendingRows behind, new rows are dropped and
// counted rather than held: capture is never made to wait.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { moduleLogger } from '../log';
import { PacketBatchBuilder } from './batch';
import { StoreError } from './errors';
import type { PacketRecord } from './packet-record';
import type { EventRow, PolicyVersionRow, SnapshotRow } from './store';
import type { FromWriter, RetainReply, ToWriter, WriterData, WriterTable } from './writer-protocol';

const log = moduleLogger('store/writer');

export interface StoreWriterOptions {
  file: string;
  /** Rows per transaction, at most (default 16384: a commit per 4096 cost a tenth of the rate). */
  batchRows?: number;
  /** A batch that is not full goes after this many ms (default 100). */
  batchMs?: number;
  /** Rows handed to the thread and not yet committed, at most; past it rows are dropped (default 1,000,000). */
  maxPendingRows?: number;
  /** Retention (0: none) and how often it runs in the writer thread (default every 60 s). */
  retainDays?: number;
  retainMb?: number;
  retainEveryMs?: number;
  /** Called for each failed batch (after it is counted and logged). */
  onError?: (err: StoreError) => void;
  /** Called after each committed batch, with the totals committed so far. */
  onCommit?: (table: WriterTable, rows: number, totals: Readonly<Record<WriterTable, number>>) => void;
}

export interface StoreWriterState {
  file: string;
  committed: Record<WriterTable, number>;
  /** Rows in batches that failed to commit, and how many batches. */
  failedRows: number;
  failedBatches: number;
  /** Rows refused because the thread lagged too far (maxPendingRows). */
  droppedRows: number;
  pendingRows: number;
  lastError: { message: string; sqliteCode: string | null; at: string } | null;
}

const emptyCounts = (): Record<WriterTable, number> => ({ packets: 0, events: 0, snapshots: 0, policyVersions: 0 });
/** One error line a period at most while a failure repeats (a full disk fails every batch). */
const ERROR_LOG_PERIOD_MS = 10_000;

export class StoreWriter {
  readonly file: string;
  readonly #worker: Worker;
  readonly #batchRows: number;
  readonly #maxPending: number;
  readonly #timer: NodeJS.Timeout;
  readonly #o: StoreWriterOptions;
  #packets: PacketBatchBuilder;
  #events: EventRow[] = [];
  #snapshots: SnapshotRow[] = [];
  #versions: PolicyVersionRow[] = [];
  #pending = 0;
  #soonScheduled = false;
  #committed = emptyCounts();
  #failedRows = 0;
  #failedBatches = 0;
  #dropped = 0;
  #lastError: StoreWriterState['lastError'] = null;
  #lastLogAt = 0;
  #unlogged = 0;
  #nextId = 1;
  readonly #waiting = new Map<number, (v: RetainReply | undefined) => void>();
  #exited = false;
  #closing: Promise<void> | undefined;

  private constructor(worker: Worker, o: StoreWriterOptions) {
    this.file = o.file;
    this.#o = o;
    this.#worker = worker;
    this.#batchRows = o.batchRows ?? 16_384;
    this.#maxPending = o.maxPendingRows ?? 1_000_000;
    this.#packets = new PacketBatchBuilder(this.#batchRows);
    this.#timer = setInterval(() => this.#post(), o.batchMs ?? 100);
    this.#timer.unref();
    worker.on('message', (m: FromWriter) => this.#onMessage(m));
    worker.on('exit', (code) => {
      this.#exited = true;
      clearInterval(this.#timer);
      if (!this.#closing) this.#fail({ message: `store ${this.file}: the writer thread ended (exit ${code}); nothing more is written`, sqliteCode: null }, this.#pending);
      for (const resolve of this.#waiting.values()) resolve(undefined);
      this.#waiting.clear();
    });
    worker.on('error', (err) => this.#fail({ message: `store ${this.file}: the writer thread failed: ${err.message}`, sqliteCode: null }, 0));
  }

  /** Starts the writer thread, which opens (creates, migrates) the store; a failure is a StoreError. */
  static async open(o: StoreWriterOptions): Promise<StoreWriter> {
    const data: WriterData = { file: o.file, retainDays: o.retainDays ?? 0, retainMb: o.retainMb ?? 0, retainEveryMs: o.retainEveryMs ?? 60_000 };
    const worker = new Worker(path.join(__dirname, 'writer-worker.js'), { workerData: data });
    // Only our own listeners go after the first message: Worker keeps internal ones.
    let onMessage: (m: FromWriter) => void = () => undefined;
    let onError: (err: Error) => void = () => undefined;
    let onExit: (code: number) => void = () => undefined;
    const first = await new Promise<FromWriter>((resolve, reject) => {
      onMessage = resolve;
      onError = reject;
      onExit = (code) => reject(new StoreError(`store ${o.file}: the writer thread ended at start (exit ${code})`));
      worker.once('message', onMessage).once('error', onError).once('exit', onExit);
    }).catch((err: unknown) => {
      void worker.terminate();
      throw err instanceof StoreError ? err : new StoreError(`store ${o.file}: the writer thread failed at start: ${(err as Error).message}`, { cause: err });
    });
    worker.off('message', onMessage).off('error', onError).off('exit', onExit);
    if (first.op === 'openFailed') {
      await worker.terminate();
      throw new StoreError(first.message, first.sqliteCode ? { sqliteCode: first.sqliteCode } : {});
    }
    log.info({ file: o.file, schemaVersion: first.op === 'ready' ? first.schemaVersion : undefined }, 'store open');
    return new StoreWriter(worker, o);
  }

  #take(rows: number): boolean {
    if (this.#exited || this.#closing || this.#pending + rows > this.#maxPending) {
      this.#dropped += rows;
      return false;
    }
    this.#pending += rows;
    return true;
  }

  /** Takes a packet for the next batch; false when it was dropped (the thread lags, or closed). */
  writePacket(p: PacketRecord): boolean {
    if (!this.#take(1)) return false;
    this.#packets.add(p);
    if (this.#packets.full) this.#postPackets();
    return true;
  }

  /** Events, snapshots and policy versions are few: they go at the end of this turn of the event loop, not after batchMs. */
  #soon(): void {
    if (this.#soonScheduled) return;
    this.#soonScheduled = true;
    setImmediate(() => {
      this.#soonScheduled = false;
      this.#post();
    });
  }

  writeEvent(row: EventRow): boolean {
    if (!this.#take(1)) return false;
    this.#events.push(row);
    this.#soon();
    return true;
  }

  writeSnapshot(row: SnapshotRow): boolean {
    if (!this.#take(1)) return false;
    this.#snapshots.push(row);
    this.#soon();
    return true;
  }

  writePolicyVersion(row: PolicyVersionRow): boolean {
    if (!this.#take(1)) return false;
    this.#versions.push(row);
    this.#soon();
    return true;
  }

  #send(m: ToWriter, transfer: ArrayBuffer[] = []): void {
    this.#worker.postMessage(m, transfer);
  }

  #postPackets(): void {
    if (this.#packets.count === 0) return;
    const { packed, transfer } = this.#packets.take();
    this.#packets = new PacketBatchBuilder(this.#batchRows);
    this.#send({ op: 'write', table: 'packets', packed }, transfer);
  }

  /** Hands what waits to the thread. */
  #post(): void {
    if (this.#exited) return;
    this.#postPackets();
    if (this.#events.length) this.#send({ op: 'write', table: 'events', rows: this.#events.splice(0) });
    if (this.#snapshots.length) this.#send({ op: 'write', table: 'snapshots', rows: this.#snapshots.splice(0) });
    if (this.#versions.length) this.#send({ op: 'write', table: 'policyVersions', rows: this.#versions.splice(0) });
  }

  #onMessage(m: FromWriter): void {
    switch (m.op) {
      case 'committed':
        this.#pending -= m.rows;
        this.#committed[m.table] += m.rows;
        this.#o.onCommit?.(m.table, m.rows, this.#committed);
        break;
      case 'failed':
        this.#pending -= m.rows;
        this.#fail(m, m.rows);
        break;
      case 'flushed':
        this.#waiting.get(m.id)?.(undefined);
        this.#waiting.delete(m.id);
        break;
      case 'retained':
        if ('error' in m.result) log.warn({ file: this.file, err: m.result.error }, 'retention failed');
        else if (m.result.deleted > 0) log.info({ file: this.file, ...m.result }, 'retention removed the oldest rows');
        this.#waiting.get(m.id)?.(m.result);
        this.#waiting.delete(m.id);
        break;
      default:
        break;
    }
  }

  #fail(m: { message: string; sqliteCode: string | null }, rows: number): void {
    this.#failedRows += rows;
    this.#failedBatches++;
    this.#lastError = { message: m.message, sqliteCode: m.sqliteCode, at: new Date().toISOString() };
    const err = new StoreError(m.message, m.sqliteCode ? { sqliteCode: m.sqliteCode } : {});
    const now = Date.now();
    if (now - this.#lastLogAt >= ERROR_LOG_PERIOD_MS) {
      log.error({ file: this.file, sqliteCode: m.sqliteCode, rowsLost: rows, failedBefore: this.#unlogged, failedBatches: this.#failedBatches }, m.message);
      this.#lastLogAt = now;
      this.#unlogged = 0;
    } else {
      this.#unlogged++;
    }
    this.#o.onError?.(err);
  }

  #request(m: (id: number) => ToWriter): Promise<RetainReply | undefined> {
    if (this.#exited) return Promise.resolve(undefined);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#send(m(id));
    });
  }

  /** Resolves when every row taken so far is committed or has failed. */
  async flush(): Promise<void> {
    this.#post();
    await this.#request((id) => ({ op: 'flush', id }));
  }

  /** Runs retention now (after what waits is written). */
  async retain(): Promise<RetainReply | undefined> {
    this.#post();
    return this.#request((id) => ({ op: 'retain', id }));
  }

  state(): StoreWriterState {
    return {
      file: this.file,
      committed: { ...this.#committed },
      failedRows: this.#failedRows,
      failedBatches: this.#failedBatches,
      droppedRows: this.#dropped,
      pendingRows: this.#pending,
      lastError: this.#lastError,
    };
  }

  /** Writes what waits, closes the store, ends the thread. Safe twice. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      if (this.#exited) return;
      this.#post();
      const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
      this.#send({ op: 'close' });
      await exited;
    })();
    return this.#closing;
  }
}
