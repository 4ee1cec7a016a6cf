// test-unit: needs no root and no kernel (make test-unit).
// The SQLite store on a real file: migrations from an empty file and from an older version, a
// newer file refused, readers read-only, retention by age and by size (oldest first), and the
// batched writer thread storing every kind of row byte-exact.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { SCHEMA_VERSION, Store, StoreError, StoreWriter } from '../../src/store';
import { packet, seqOf } from './frames';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bae-test-${process.pid}-store-`));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
const dbFile = () => path.join(dir, `t${n++}.db`);

describe('the store', () => {
  test('an empty file gets every migration, recorded with its version, in WAL mode', () => {
    const file = dbFile();
    const s = Store.open(file);
    try {
      assert.equal(s.schemaVersion(), SCHEMA_VERSION);
      assert.ok(SCHEMA_VERSION >= 2);
      const versions = s.db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all();
      assert.deepEqual(versions, Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
      assert.equal(s.db.pragma('journal_mode', { simple: true }), 'wal');
      const tables = s.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
      for (const t of ['events', 'packets', 'policy_versions', 'profile_snapshots', 'scenarios', 'schema_migrations']) assert.ok(tables.includes(t), `table ${t}`);
    } finally {
      s.close();
    }
  });

  test('a file at an older version is migrated on open and keeps its rows', () => {
    const file = dbFile();
    const old = Store.open(file, { migrateTo: 1 });
    old.insertPackets([packet(1), packet(2)]);
    old.insertEvents([{ tsNs: 5n, kind: 'block', policy: 'p', src: '10.0.0.1', dst: '', body: '{"kind":"block"}' }]);
    assert.equal(old.schemaVersion(), 1);
    assert.equal(old.db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'packets_ts'").pluck().get(), 0);
    old.close();

    const s = Store.open(file);
    try {
      assert.equal(s.schemaVersion(), SCHEMA_VERSION);
      assert.equal(s.db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'packets_ts'").pluck().get(), 1);
      assert.deepEqual([...s.packets()].map((p) => seqOf(p.data)), [1, 2]);
      assert.equal(s.events().length, 1);
    } finally {
      s.close();
    }
  });

  test('a file newer than this bae is refused (BAE_STORE, naming the file and both versions) and left as it was', () => {
    const file = dbFile();
    Store.open(file).close();
    const raw = new Database(file);
    raw.prepare('INSERT INTO schema_migrations (version, name, applied_ns) VALUES (99, ?, 0)').run('from the future');
    raw.close();
    for (const readonly of [false, true]) {
      assert.throws(
        () => Store.open(file, { readonly }),
        (err: unknown) => err instanceof StoreError && err.code === 'BAE_STORE' && err.message.includes(file) && /schema version 99 is newer than this bae knows \(\d+\)/.test(err.message),
      );
    }
    const check = new Database(file, { readonly: true });
    assert.equal(check.prepare('SELECT MAX(version) FROM schema_migrations').pluck().get(), 99);
    check.close();
  });

  test('a reader opens read-only: it reads beside a writer and cannot write', () => {
    const file = dbFile();
    const w = Store.open(file);
    w.insertPackets([packet(7)]);
    const r = Store.open(file, { readonly: true });
    try {
      assert.equal([...r.packets()].length, 1);
      assert.throws(() => r.insertPackets([packet(8)]), (err: unknown) => (err as { code?: string }).code === 'SQLITE_READONLY');
      w.insertPackets([packet(9)]);
      assert.deepEqual([...r.packets()].map((p) => seqOf(p.data)), [7, 9]);
    } finally {
      r.close();
      w.close();
    }
    assert.throws(() => Store.open(path.join(dir, 'absent.db'), { readonly: true }), /no such database file/);
  });

  test('retention by age removes rows older than the limit, and keeps imported scenarios', () => {
    const file = dbFile();
    const s = Store.open(file);
    try {
      const day = 86_400_000_000_000n;
      const now = 1_765_000_000_000_000_000n;
      s.insertPackets([packet(1, { tsNs: now - 3n * day }), packet(2, { tsNs: now - 2n * day }), packet(3, { tsNs: now - day / 2n })]);
      s.insertEvents([{ tsNs: now - 3n * day, kind: 'fire', policy: 'p', src: null, dst: null, body: '{}' }, { tsNs: now, kind: 'fire', policy: 'p', src: null, dst: null, body: '{}' }]);
      const sid = s.insertScenario({ name: 'old-capture', createdNs: now, seed: null, policies: null, durationMs: 0 });
      s.insertPackets([packet(100, { tsNs: now - 30n * day, kind: 'imported' })], sid);
      const res = s.retain({ retainDays: 1 }, now);
      assert.equal(res.deleted, 3);
      assert.deepEqual([...s.packets()].map((p) => seqOf(p.data)), [100, 3]);
      assert.equal(s.events().length, 1);
    } finally {
      s.close();
    }
  });

  test('retention by size removes the oldest rows until the pages in use fit, and keeps the newest', () => {
    const file = dbFile();
    const s = Store.open(file);
    try {
      const total = 20_000;
      for (let b = 0; b < total; b += 5000) s.insertPackets(Array.from({ length: 5000 }, (_, i) => packet(b + i, { size: 512 })));
      const before = s.usedBytes();
      assert.ok(before > 10 * 1024 * 1024, `${before} bytes in use before`);
      const res = s.retain({ retainMb: 4 });
      assert.ok(res.usedBytes <= 4 * 1024 * 1024, `${res.usedBytes} bytes in use after`);
      const seqs = [...s.packets()].map((p) => seqOf(p.data));
      assert.equal(seqs.length, total - res.deleted);
      assert.ok(seqs.length > 1000, `${seqs.length} rows left`);
      // What is left is the newest, without a gap.
      assert.equal(seqs.at(-1), total - 1);
      assert.equal(seqs[0], total - seqs.length);
    } finally {
      s.close();
    }
  });
});

describe('the writer thread', () => {
  test('stores packets, events, snapshots and policy versions in batches, byte-exact, and counts them', async () => {
    const file = dbFile();
    const commits: number[] = [];
    const w = await StoreWriter.open({ file, batchRows: 1000, batchMs: 20, onCommit: (t, rows) => t === 'packets' && commits.push(rows) });
    const sent = Array.from({ length: 2500 }, (_, i) => packet(i, { size: 60 + (i % 1400), kind: i % 2 ? 'captured' : 'dropped', policy: i % 3 ? 'lossy' : null }));
    for (const p of sent) assert.equal(w.writePacket(p), true);
    w.writeEvent({ tsNs: 1n, kind: 'block', policy: 'p', src: '10.0.0.1', dst: '10.0.0.2', body: '{"kind":"block"}' });
    w.writeSnapshot({ tsNs: 2n, conversations: 1, body: '[{"a":1}]' });
    w.writePolicyVersion({ tsNs: 3n, generation: 1, yaml: 'kind: Policy\n' });
    await w.flush();
    const st = w.state();
    assert.deepEqual(st.committed, { packets: 2500, events: 1, snapshots: 1, policyVersions: 1 });
    assert.equal(st.pendingRows, 0);
    assert.equal(st.failedRows, 0);
    assert.deepEqual(commits, [1000, 1000, 500]);
    await w.close();
    await w.close();
    assert.equal(w.writePacket(packet(1)), false, 'a closed writer takes nothing');

    const r = Store.open(file, { readonly: true });
    try {
      const got = [...r.packets()];
      assert.equal(got.length, sent.length);
      got.forEach((g, i) => {
        const p = sent[i]!;
        assert.deepEqual([g.tsNs, g.ifindex, g.kind, g.policy, g.action, g.reason, g.origLen], [p.tsNs, p.ifindex, p.kind, p.policy, p.action, p.reason, p.origLen]);
        assert.ok(g.data.equals(p.data), `packet ${i} byte-exact`);
      });
      assert.equal(r.events()[0]!.body, '{"kind":"block"}');
      assert.equal(r.latestSnapshot()!.body, '[{"a":1}]');
      assert.equal(r.policyVersions()[0]!.yaml, 'kind: Policy\n');
    } finally {
      r.close();
    }
  });

  test('a writer that cannot open its file fails at open with BAE_STORE naming the file', async () => {
    const file = path.join(dir, 'not-a-db.db');
    fs.writeFileSync(file, 'this is not SQLite, and it is longer than a header would be.'.repeat(20));
    await assert.rejects(StoreWriter.open({ file }), (err: unknown) => err instanceof StoreError && err.code === 'BAE_STORE' && err.message.includes(file) && /not a database/.test(err.message));
  });

  test('rows past maxPendingRows are dropped and counted, never waited for', async () => {
    const file = dbFile();
    const w = await StoreWriter.open({ file, batchRows: 100, batchMs: 1000, maxPendingRows: 250 });
    let taken = 0;
    for (let i = 0; i < 400; i++) if (w.writePacket(packet(i))) taken++;
    assert.equal(taken, 250);
    assert.equal(w.state().droppedRows, 150);
    await w.flush();
    assert.equal(w.state().committed.packets, 250);
    await w.close();
  });
});
