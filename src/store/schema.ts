// The store's schema, versioned: MIGRATIONS[i] takes a database from version i to i + 1, each in
// one transaction, recorded in schema_migrations (version, applied_ns). A file at a version newer
// than this code knows is refused (an older bae must not write a layout it does not know).
import type Database from 'better-sqlite3';
import { StoreError } from './errors';

interface Migration {
  /** What this version brings, for schema_migrations readers and `bae store info`. */
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    name: 'events, packets, profile snapshots, policy versions, scenarios',
    sql: `
      CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        ts_ns INTEGER NOT NULL,
        kind TEXT NOT NULL,
        policy TEXT,
        src TEXT,
        dst TEXT,
        body TEXT NOT NULL
      );
      CREATE TABLE scenarios (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_ns INTEGER NOT NULL,
        seed INTEGER,
        policies TEXT,
        duration_ms INTEGER
      );
      CREATE TABLE packets (
        id INTEGER PRIMARY KEY,
        ts_ns INTEGER NOT NULL,
        ifindex INTEGER NOT NULL,
        kind TEXT NOT NULL,
        policy TEXT,
        action TEXT,
        reason TEXT,
        orig_len INTEGER NOT NULL,
        data BLOB NOT NULL,
        scenario_id INTEGER REFERENCES scenarios(id) ON DELETE CASCADE
      );
      CREATE TABLE profile_snapshots (
        id INTEGER PRIMARY KEY,
        ts_ns INTEGER NOT NULL,
        conversations INTEGER NOT NULL,
        body TEXT NOT NULL
      );
      CREATE TABLE policy_versions (
        id INTEGER PRIMARY KEY,
        ts_ns INTEGER NOT NULL,
        generation INTEGER NOT NULL,
        yaml TEXT NOT NULL
      );`,
  },
  {
    // Export and `bae events --since` select by time; import's scenario delete by scenario.
    name: 'indexes by time and scenario',
    sql: `
      CREATE INDEX packets_ts ON packets(ts_ns);
      CREATE INDEX packets_scenario ON packets(scenario_id) WHERE scenario_id IS NOT NULL;
      CREATE INDEX events_ts ON events(ts_ns);`,
  },
  {
    // bae record / bae replay (src/scenario): each policy's seed, and the baseline decision log.
    name: 'scenario seeds and baseline decisions',
    sql: `
      ALTER TABLE scenarios ADD COLUMN seeds TEXT;
      ALTER TABLE scenarios ADD COLUMN baseline TEXT;`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** The version of the schema in `db`: 0 for an empty file. */
export function schemaVersion(db: Database.Database): number {
  const has = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (!has) return 0;
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

/**
 * Brings `db` up to `upTo` (default: the newest version), one transaction per migration; returns
 * the versions applied. Refuses a file whose version is newer than this code knows.
 */
export function migrate(db: Database.Database, file: string, upTo = SCHEMA_VERSION): number[] {
  const current = schemaVersion(db);
  if (current > SCHEMA_VERSION) {
    throw new StoreError(`store ${file}: schema version ${current} is newer than this bae knows (${SCHEMA_VERSION}); use the bae that wrote it, or a newer one`);
  }
  const applied: number[] = [];
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ns INTEGER NOT NULL)');
  for (let v = current + 1; v <= upTo; v++) {
    const m = MIGRATIONS[v - 1]!;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_ns) VALUES (?, ?, ?)').run(v, m.name, BigInt(Date.now()) * 1_000_000n);
    })();
    applied.push(v);
  }
  return applied;
}
