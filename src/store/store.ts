// The SQLite store (docs/store.md): one file in WAL mode. The agent writes it through a
// StoreWriter (writer.ts: a worker thread that owns the write connection); commands read it with
// a read-only connection (Store.open(file, { readonly: true })), which WAL lets run beside the
// writer. Timestamps are ns since the Unix epoch, stored as SQLite's 64-bit integers and read
// back as bigint.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { StoreError, storeErrorOf } from './errors';
import { isPacketKind, type PacketKind, type PacketRecord, type StoredPacket } from './packet-record';
import { MIGRATIONS, SCHEMA_VERSION, migrate, schemaVersion } from './schema';

export const DEFAULT_DB = '/var/lib/bae/bae.db';

/** An event as the store keeps it: when, what, and the whole view as JSON (body). */
export interface EventRow {
  tsNs: bigint;
  kind: string;
  policy: string | null;
  src: string | null;
  dst: string | null;
  /** The event's view as JSON text (src/json.ts). */
  body: string;
}
export interface StoredEvent extends EventRow {
  id: number;
}

export interface SnapshotRow {
  tsNs: bigint;
  conversations: number;
  /** The profiles as JSON text. */
  body: string;
}

export interface PolicyVersionRow {
  tsNs: bigint;
  /** Counts the applied sets the agent saw: 1, 2, ... */
  generation: number;
  /** The applied set, as YAML. */
  yaml: string;
}

export interface ScenarioInput {
  name: string;
  createdNs: bigint;
  seed: number | null;
  /** The scenario's policies as text (YAML), null when none. */
  policies: string | null;
  durationMs: number | null;
}
export interface Scenario extends ScenarioInput {
  id: number;
  packets: number;
}

export interface PacketFilter {
  /** Only packets at or after this time (ns since the epoch). */
  sinceNs?: bigint;
  policy?: string;
  kind?: PacketKind;
  /** Only the packets of this scenario (by name). */
  scenario?: string;
}

export interface StoreInfo {
  file: string;
  schemaVersion: number;
  /** Bytes of the file and its WAL. */
  fileBytes: number;
  /** Bytes of pages in use (what retention by size counts). */
  usedBytes: number;
  counts: { events: number; packets: number; profileSnapshots: number; policyVersions: number; scenarios: number };
  oldestNs: bigint | null;
  newestNs: bigint | null;
}

export interface RetentionLimits {
  /** Rows older than this many days go (0 or undefined: no limit by age). */
  retainDays?: number;
  /** While the pages in use exceed this many MB, the oldest rows go (0 or undefined: no limit). */
  retainMb?: number;
}
export interface RetentionResult {
  deleted: number;
  usedBytes: number;
}

const PACKET_COLUMNS = 'ts_ns, ifindex, kind, policy, action, reason, orig_len, data, scenario_id';
const PACKET_VALUES = '(?, ?, ?, ?, ?, ?, ?, ?, ?)';
/** Rows per INSERT statement of insertPackets (9 parameters each, far below SQLite's 32766). */
const PACKETS_PER_INSERT = 32;

/**
 * WAL pages before SQLite copies them back into the file (default 1000 pages, 4 MB): fewer, larger
 * checkpoints while packets pour in. 16384 pages (64 MB of WAL at most between two) took 1M rows
 * of 128 bytes from 287k to 390k rows/s in one probe here; durability is the same (WAL + NORMAL).
 */
const WAL_CHECKPOINT_PAGES = 16384;

/** The tables that retention trims, oldest rows first. Imported scenarios and policy versions stay. */
const TRIMMED = ['packets', 'events', 'profile_snapshots'] as const;
/** Rows deleted per step of retention by size (bounded: each step is one short transaction). */
const TRIM_STEP = 5000;
/** Steps of retention by size in one run, at most; the next run goes on. */
const TRIM_MAX_STEPS = 2000;

function bytesOf(file: string): number {
  let n = 0;
  for (const f of [file, `${file}-wal`]) {
    try {
      n += fs.statSync(f).size;
    } catch {
      // absent: 0
    }
  }
  return n;
}

export class Store {
  readonly file: string;
  readonly readonly: boolean;
  readonly db: Database.Database;
  #closed = false;

  private constructor(file: string, db: Database.Database, readonly: boolean) {
    this.file = file;
    this.db = db;
    this.readonly = readonly;
  }

  /**
   * Opens (and creates, migrates) the store at `file`; with `readonly`, opens an existing one for
   * reading, which must be at this code's schema version.
   */
  static open(file: string, o: { readonly?: boolean; migrateTo?: number } = {}): Store {
    const readonly = o.readonly ?? false;
    if (readonly && !fs.existsSync(file)) throw new StoreError(`store ${file}: no such database file (bae agent --db writes it)`);
    let db: Database.Database;
    try {
      if (!readonly) fs.mkdirSync(path.dirname(file), { recursive: true });
      db = new Database(file, { readonly, fileMustExist: readonly });
    } catch (err) {
      throw storeErrorOf(err, file, 'opening');
    }
    try {
      db.pragma('busy_timeout = 5000');
      if (!readonly) {
        db.pragma('journal_mode = WAL');
        // WAL + NORMAL: a commit survives the death of the process (kill -9), not of the machine.
        db.pragma('synchronous = NORMAL');
        db.pragma('foreign_keys = ON');
        db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
        migrate(db, file, o.migrateTo);
      } else {
        const v = schemaVersion(db);
        if (v > SCHEMA_VERSION) throw new StoreError(`store ${file}: schema version ${v} is newer than this bae knows (${SCHEMA_VERSION}); use the bae that wrote it, or a newer one`);
        if (v < SCHEMA_VERSION) throw new StoreError(`store ${file}: schema version ${v} is older than this bae's (${SCHEMA_VERSION}); \`bae store info\` (as a writer) or the agent migrates it`);
      }
      return new Store(file, db, readonly);
    } catch (err) {
      db.close();
      throw storeErrorOf(err, file, 'opening');
    }
  }

  schemaVersion(): number {
    return schemaVersion(this.db);
  }

  #insertPacket?: Database.Statement;
  #insertPackets?: Database.Statement;
  /**
   * Inserts packets in one transaction (the writer's batches; `bae import`). Rows go
   * PACKETS_PER_INSERT to a statement: one call into SQLite per 32 rows rather than per row,
   * about 1.7 times the rows per second of one INSERT a row (measured in bench/store-writes.ts).
   */
  insertPackets(rows: Iterable<PacketRecord>, scenarioId: number | null = null): number {
    const one = (this.#insertPacket ??= this.db.prepare(`INSERT INTO packets (${PACKET_COLUMNS}) VALUES ${PACKET_VALUES}`));
    const many = (this.#insertPackets ??= this.db.prepare(`INSERT INTO packets (${PACKET_COLUMNS}) VALUES ${Array(PACKETS_PER_INSERT).fill(PACKET_VALUES).join(', ')}`));
    const args: unknown[] = new Array(PACKETS_PER_INSERT * 9);
    let n = 0;
    let k = 0;
    this.db.transaction(() => {
      for (const r of rows) {
        const o = k * 9;
        args[o] = r.tsNs;
        args[o + 1] = r.ifindex;
        args[o + 2] = r.kind;
        args[o + 3] = r.policy;
        args[o + 4] = r.action;
        args[o + 5] = r.reason;
        args[o + 6] = r.origLen;
        args[o + 7] = r.data;
        args[o + 8] = scenarioId;
        n++;
        if (++k === PACKETS_PER_INSERT) {
          many.run(args);
          k = 0;
        }
      }
      for (let i = 0; i < k; i++) one.run(args.slice(i * 9, i * 9 + 9));
    })();
    return n;
  }

  insertEvents(rows: readonly EventRow[]): void {
    const stmt = this.db.prepare('INSERT INTO events (ts_ns, kind, policy, src, dst, body) VALUES (?, ?, ?, ?, ?, ?)');
    this.db.transaction(() => rows.forEach((r) => stmt.run(r.tsNs, r.kind, r.policy, r.src, r.dst, r.body)))();
  }

  insertSnapshots(rows: readonly SnapshotRow[]): void {
    const stmt = this.db.prepare('INSERT INTO profile_snapshots (ts_ns, conversations, body) VALUES (?, ?, ?)');
    this.db.transaction(() => rows.forEach((r) => stmt.run(r.tsNs, r.conversations, r.body)))();
  }

  insertPolicyVersions(rows: readonly PolicyVersionRow[]): void {
    const stmt = this.db.prepare('INSERT INTO policy_versions (ts_ns, generation, yaml) VALUES (?, ?, ?)');
    this.db.transaction(() => rows.forEach((r) => stmt.run(r.tsNs, r.generation, r.yaml)))();
  }

  /** Adds a scenario; a name already taken is refused (StoreError naming it). Returns its id. */
  insertScenario(s: ScenarioInput): number {
    const taken = this.db.prepare('SELECT id FROM scenarios WHERE name = ?').get(s.name);
    if (taken) throw new StoreError(`store ${this.file}: a scenario named '${s.name}' exists already`);
    const res = this.db.prepare('INSERT INTO scenarios (name, created_ns, seed, policies, duration_ms) VALUES (?, ?, ?, ?, ?)').run(s.name, s.createdNs, s.seed, s.policies, s.durationMs);
    return Number(res.lastInsertRowid);
  }

  scenarios(): Scenario[] {
    const rows = this.db
      .prepare('SELECT s.id, s.name, s.created_ns, s.seed, s.policies, s.duration_ms, (SELECT COUNT(*) FROM packets p WHERE p.scenario_id = s.id) AS packets FROM scenarios s ORDER BY s.id')
      .safeIntegers(true)
      .all() as { id: bigint; name: string; created_ns: bigint; seed: bigint | null; policies: string | null; duration_ms: bigint | null; packets: bigint }[];
    return rows.map((r) => ({
      id: Number(r.id),
      name: r.name,
      createdNs: r.created_ns,
      seed: r.seed === null ? null : Number(r.seed),
      policies: r.policies,
      durationMs: r.duration_ms === null ? null : Number(r.duration_ms),
      packets: Number(r.packets),
    }));
  }

  /** The stored packets that pass `filter`, oldest first, read lazily. */
  *packets(filter: PacketFilter = {}): IterableIterator<StoredPacket> {
    const conditions: [string, unknown][] = [];
    if (filter.sinceNs !== undefined) conditions.push(['p.ts_ns >= ?', filter.sinceNs]);
    if (filter.policy !== undefined) conditions.push(['p.policy = ?', filter.policy]);
    if (filter.kind !== undefined) conditions.push(['p.kind = ?', filter.kind]);
    if (filter.scenario !== undefined) conditions.push(['p.scenario_id = (SELECT id FROM scenarios WHERE name = ?)', filter.scenario]);
    const where = conditions.map(([c]) => c);
    const args = conditions.map(([, v]) => v);
    const sql = `SELECT p.id, p.ts_ns, p.ifindex, p.kind, p.policy, p.action, p.reason, p.orig_len, p.data, p.scenario_id FROM packets p${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY p.ts_ns, p.id`;
    type Row = { id: bigint; ts_ns: bigint; ifindex: bigint; kind: string; policy: string | null; action: string | null; reason: string | null; orig_len: bigint; data: Buffer; scenario_id: bigint | null };
    for (const r of this.db.prepare(sql).safeIntegers(true).iterate(...args) as IterableIterator<Row>) {
      if (!isPacketKind(r.kind)) continue; // a kind of a newer bae: not ours to interpret
      yield {
        id: Number(r.id),
        tsNs: r.ts_ns,
        ifindex: Number(r.ifindex),
        kind: r.kind,
        policy: r.policy,
        action: r.action,
        reason: r.reason,
        origLen: Number(r.orig_len),
        data: r.data,
        scenarioId: r.scenario_id === null ? null : Number(r.scenario_id),
      };
    }
  }

  /** Events after row `afterId` and at or after `sinceNs`, oldest first, at most `limit`. */
  events(o: { sinceNs?: bigint; afterId?: number; limit?: number } = {}): StoredEvent[] {
    const rows = this.db
      .prepare('SELECT id, ts_ns, kind, policy, src, dst, body FROM events WHERE id > ? AND ts_ns >= ? ORDER BY id LIMIT ?')
      .safeIntegers(true)
      .all(o.afterId ?? 0, o.sinceNs ?? 0n, o.limit ?? 1_000_000) as { id: bigint; ts_ns: bigint; kind: string; policy: string | null; src: string | null; dst: string | null; body: string }[];
    return rows.map((r) => ({ id: Number(r.id), tsNs: r.ts_ns, kind: r.kind, policy: r.policy, src: r.src, dst: r.dst, body: r.body }));
  }

  /** Events between two times (ns since the epoch, both included), oldest first, at most `limit`. */
  eventsBetween(fromNs: bigint, toNs: bigint, limit: number, kind?: string): StoredEvent[] {
    const rows = this.db
      .prepare(`SELECT id, ts_ns, kind, policy, src, dst, body FROM events WHERE ts_ns BETWEEN ? AND ?${kind !== undefined ? ' AND kind = ?' : ''} ORDER BY ts_ns, id LIMIT ?`)
      .safeIntegers(true)
      .all(...(kind !== undefined ? [fromNs, toNs, kind, limit] : [fromNs, toNs, limit])) as { id: bigint; ts_ns: bigint; kind: string; policy: string | null; src: string | null; dst: string | null; body: string }[];
    return rows.map((r) => ({ id: Number(r.id), tsNs: r.ts_ns, kind: r.kind, policy: r.policy, src: r.src, dst: r.dst, body: r.body }));
  }

  policyVersions(): (PolicyVersionRow & { id: number })[] {
    const rows = this.db.prepare('SELECT id, ts_ns, generation, yaml FROM policy_versions ORDER BY id').safeIntegers(true).all() as { id: bigint; ts_ns: bigint; generation: bigint; yaml: string }[];
    return rows.map((r) => ({ id: Number(r.id), tsNs: r.ts_ns, generation: Number(r.generation), yaml: r.yaml }));
  }

  latestSnapshot(): (SnapshotRow & { id: number }) | undefined {
    const r = this.db.prepare('SELECT id, ts_ns, conversations, body FROM profile_snapshots ORDER BY id DESC LIMIT 1').safeIntegers(true).get() as
      | { id: bigint; ts_ns: bigint; conversations: bigint; body: string }
      | undefined;
    return r && { id: Number(r.id), tsNs: r.ts_ns, conversations: Number(r.conversations), body: r.body };
  }

  /** Bytes of the pages in use: the file's size less its free pages (deletes free pages, the file keeps them). */
  usedBytes(): number {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    const size = this.db.pragma('page_size', { simple: true }) as number;
    return (pages - free) * size;
  }

  /** The id of the newest packet row, 0 for none: a cheap "has anything been written since" (MAX of the key, no count). */
  lastPacketId(): number {
    return (this.db.prepare('SELECT MAX(id) AS id FROM packets').get() as { id: number | null }).id ?? 0;
  }

  info(): StoreInfo {
    const count = (table: string) => (this.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    const span = this.db
      .prepare(`SELECT MIN(lo) AS lo, MAX(hi) AS hi FROM (${TRIMMED.map((t) => `SELECT MIN(ts_ns) AS lo, MAX(ts_ns) AS hi FROM ${t}`).join(' UNION ALL ')})`)
      .safeIntegers(true)
      .get() as { lo: bigint | null; hi: bigint | null };
    return {
      file: this.file,
      schemaVersion: this.schemaVersion(),
      fileBytes: bytesOf(this.file),
      usedBytes: this.usedBytes(),
      counts: {
        events: count('events'),
        packets: count('packets'),
        profileSnapshots: count('profile_snapshots'),
        policyVersions: count('policy_versions'),
        scenarios: count('scenarios'),
      },
      oldestNs: span.lo,
      newestNs: span.hi,
    };
  }

  /**
   * Retention: rows older than retainDays go, then, while the pages in use exceed retainMb, the
   * oldest rows of the trimmed tables, a bounded step at a time. Packets of imported scenarios
   * stay (they belong to their scenario, whatever their time). Returns the rows deleted.
   */
  retain(limits: RetentionLimits, nowNs: bigint = BigInt(Date.now()) * 1_000_000n): RetentionResult {
    let deleted = 0;
    const scenarioFree = (t: string) => (t === 'packets' ? ' AND scenario_id IS NULL' : '');
    if (limits.retainDays && limits.retainDays > 0) {
      const cutoff = nowNs - BigInt(Math.round(limits.retainDays * 86_400)) * 1_000_000_000n;
      for (const t of TRIMMED) deleted += this.db.prepare(`DELETE FROM ${t} WHERE ts_ns < ?${scenarioFree(t)}`).run(cutoff).changes;
    }
    if (limits.retainMb && limits.retainMb > 0) {
      const limit = limits.retainMb * 1024 * 1024;
      const oldest = TRIMMED.map((t) => ({
        t,
        min: this.db.prepare(`SELECT MIN(ts_ns) AS m FROM ${t} WHERE 1${scenarioFree(t)}`).safeIntegers(true),
        del: this.db.prepare(`DELETE FROM ${t} WHERE id IN (SELECT id FROM ${t} WHERE 1${scenarioFree(t)} ORDER BY ts_ns, id LIMIT ${TRIM_STEP})`),
      }));
      for (let step = 0; step < TRIM_MAX_STEPS && this.usedBytes() > limit; step++) {
        // The table whose oldest row is oldest gives up a step of its oldest rows.
        let pick: (typeof oldest)[number] | undefined;
        let pickMin: bigint | undefined;
        for (const o of oldest) {
          const m = (o.min.get() as { m: bigint | null }).m;
          if (m !== null && (pickMin === undefined || m < pickMin)) {
            pick = o;
            pickMin = m;
          }
        }
        if (!pick) break;
        deleted += pick.del.run().changes;
      }
    }
    return { deleted, usedBytes: this.usedBytes() };
  }

  /** Closes the connection (a WAL checkpoint when it is the last). Safe twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.db.close();
  }
}

export { MIGRATIONS, SCHEMA_VERSION };
