// The store under the two accidents of issue 15: the writing process killed (kill -9) during
// heavy writes, and a full disk (a 2 MB tmpfs this test mounts). The writer is a child process
// (heavy-writer.ts) that reports every committed batch; afterwards the file opens, passes
// SQLite's integrity check, and holds every row reported committed.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Store } from '../../src/store';
import { seqOf } from './frames';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI === 'true') assert.fail('the durability tests mount a tmpfs: run them as root');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bae-test-${process.pid}-durable-`));
const children: ChildProcess[] = [];
const mounts: string[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  fs.rmSync(dir, { recursive: true, force: true });
});

const HEAVY_WRITER = path.join(__dirname, 'heavy-writer.js');

/** Starts the writer child; `lines` yields its report lines. */
function startWriter(file: string, count: number, seconds: number): { child: ChildProcess; lines: AsyncIterableIterator<string> } {
  const child = spawn(process.execPath, [HEAVY_WRITER, file, String(count), String(seconds)], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, BAE_LOG_LEVEL: 'silent' } });
  children.push(child);
  const rl = readline.createInterface({ input: child.stdout! });
  return { child, lines: rl[Symbol.asyncIterator]() };
}

const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => child.once('exit', () => resolve()));

/** Every stored packet is the row of its sequence number: rows 0..n-1, nothing else. Returns n. */
function checkRows(db: Database.Database): number {
  const rows = db.prepare('SELECT id, data FROM packets ORDER BY id').all() as { id: number; data: Buffer }[];
  rows.forEach((r, i) => assert.equal(seqOf(r.data), i, `row ${r.id} holds packet ${seqOf(r.data)}, expected ${i}`));
  return rows.length;
}

describe('the store survives', { skip: !isRoot && 'needs root (mount)' }, () => {
  test('kill -9 during heavy writes: the file opens, passes the integrity check, and keeps every committed row', async () => {
    const file = path.join(dir, 'killed.db');
    const { child, lines } = startWriter(file, 20_000_000, 60);
    let committed = 0;
    const started = Date.now();
    for await (const line of lines) {
      const m = /^committed (\d+)$/.exec(line);
      if (m) committed = Number(m[1]);
      else assert.fail(`writer: ${line}`);
      if (committed >= 300_000 || Date.now() - started > 30_000) break;
    }
    child.kill('SIGKILL');
    await exited(child);
    assert.equal(child.signalCode, 'SIGKILL');
    assert.ok(committed >= 300_000, `only ${committed} rows committed in 30 s`);

    const s = Store.open(file); // a writer's open recovers the WAL
    try {
      assert.equal(s.db.pragma('integrity_check', { simple: true }), 'ok');
      const n = checkRows(s.db);
      assert.ok(n >= committed, `${n} rows stored, ${committed} reported committed before the kill`);
    } finally {
      s.close();
    }
  });

  test('a full disk: BAE_STORE error naming the file and "disk full", rows stored before intact, the writer still alive', async () => {
    const mnt = path.join(dir, 'small');
    fs.mkdirSync(mnt);
    const res = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', `bae-test-${process.pid}`, mnt], { encoding: 'utf8' });
    assert.equal(res.status, 0, `mount: ${res.stderr}`);
    mounts.push(mnt);
    const file = path.join(mnt, 'full.db');
    // 100k rows of 128 bytes: about 16 MB, eight times the disk.
    const { child, lines } = startWriter(file, 100_000, 60);
    let committed = 0;
    const failures: string[] = [];
    let alive: number | undefined;
    for await (const line of lines) {
      const m = /^committed (\d+)$/.exec(line);
      if (m) committed = Number(m[1]);
      else if (line.startsWith('failed ')) failures.push(line);
      else if (line.startsWith('alive ')) {
        alive = Number(line.slice(6));
        break;
      }
    }
    assert.ok(failures.length > 0, 'no write failed on a full disk');
    assert.match(failures[0]!, /^failed SQLITE_FULL store .*full\.db: writing \d+ packets rows: disk full \(SQLITE_FULL\)/);
    assert.ok(failures[0]!.includes(file), failures[0]);
    assert.ok(committed > 1000, `${committed} rows committed before the disk filled`);
    assert.equal(alive, 100_000, 'the writer went on through all its rows');
    assert.equal(child.exitCode, null, 'the writer process is alive');
    process.kill(child.pid!, 0);

    // Read beside the living writer: every committed row is there, the file is sound.
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      assert.equal(checkRows(db), committed);
    } finally {
      db.close();
    }
    child.stdin!.end();
    await exited(child);
    assert.equal(child.exitCode, 0, 'the writer closes cleanly, the disk still full');
  });
});
