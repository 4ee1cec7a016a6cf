// The store's failure: BAE_STORE (src/errors.ts). The message names the database file and, for
// SQLite's own errors, what went wrong in words a user acts on ("disk full") with SQLite's code.
import { BaeError, type BaeErrorOptions } from '../errors';

export class StoreError extends BaeError {
  /** SQLite's error code (SQLITE_FULL, SQLITE_CORRUPT, ...) when SQLite refused. */
  readonly sqliteCode: string | undefined;
  constructor(message: string, options: BaeErrorOptions & { sqliteCode?: string } = {}) {
    super('BAE_STORE', message, options);
    this.sqliteCode = options.sqliteCode;
  }
}

const PLAIN: Record<string, string> = {
  SQLITE_FULL: 'disk full',
  SQLITE_IOERR: 'I/O error',
  SQLITE_READONLY: 'the database is read-only',
  SQLITE_CANTOPEN: 'cannot open the database file',
  SQLITE_CORRUPT: 'the database file is corrupt',
  SQLITE_NOTADB: 'not a database file',
  SQLITE_BUSY: 'the database is locked by another writer',
  SQLITE_PERM: 'permission denied',
};

/** SQLite's code of an error from better-sqlite3 (its SqliteError has `code`), if any. */
export function sqliteCodeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** A plain phrase for SQLite's code: 'disk full' for SQLITE_FULL (and its extended codes). */
export function describeSqliteCode(code: string): string {
  const base = code.replace(/^(SQLITE_[A-Z]+)_.*$/, '$1');
  return PLAIN[code] ?? PLAIN[base] ?? code;
}

/** A StoreError for `err` that happened while `doing` on the database `file`. */
export function storeErrorOf(err: unknown, file: string, doing: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = sqliteCodeOf(err);
  const what = code ? `${describeSqliteCode(code)} (${code})` : (err as Error)?.message ?? String(err);
  const detail = code && (err as Error).message && !/disk is full/i.test((err as Error).message) ? `: ${(err as Error).message}` : '';
  return new StoreError(`store ${file}: ${doing}: ${what}${detail}`, { cause: err, ...(code ? { sqliteCode: code } : {}) });
}
