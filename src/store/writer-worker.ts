// The writer thread (writer.ts starts it): owns the store's write connection, so that SQLite's
// work stays off the agent's event loop. Every message is one transaction; each reports back
// what it committed or why it failed (the rows of a failed transaction are not in the file, the
// ones committed before stay). Retention runs here too, on a timer and on request.
import { parentPort, workerData } from 'node:worker_threads';
import { sqliteCodeOf, storeErrorOf } from './errors';
import { unpackPackets } from './batch';
import { Store } from './store';
import type { ToWriter, WriterData, FromWriter } from './writer-protocol';

const port = parentPort!;
const data = workerData as WriterData;
const send = (m: FromWriter) => port.postMessage(m);

let store: Store;
try {
  store = Store.open(data.file);
  send({ op: 'ready', schemaVersion: store.schemaVersion() });
} catch (err) {
  send({ op: 'openFailed', message: (err as Error).message, sqliteCode: sqliteCodeOf((err as { cause?: unknown }).cause) ?? null });
  process.exit(0);
}

function retain(): { deleted: number; usedBytes: number } | { error: string } {
  try {
    return store.retain({ retainDays: data.retainDays, retainMb: data.retainMb });
  } catch (err) {
    return { error: storeErrorOf(err, data.file, 'retention').message };
  }
}

const timer = data.retainEveryMs > 0 && (data.retainDays || data.retainMb) ? setInterval(() => {
  const r = retain();
  send({ op: 'retained', id: 0, result: r });
}, data.retainEveryMs) : undefined;

port.on('message', (m: ToWriter) => {
  switch (m.op) {
    case 'write': {
      const rows = m.table === 'packets' ? m.packed.count : m.rows.length;
      try {
        if (m.table === 'packets') store.insertPackets(unpackPackets(m.packed));
        else if (m.table === 'events') store.insertEvents(m.rows);
        else if (m.table === 'snapshots') store.insertSnapshots(m.rows);
        else store.insertPolicyVersions(m.rows);
        send({ op: 'committed', table: m.table, rows });
      } catch (err) {
        const e = storeErrorOf(err, data.file, `writing ${rows} ${m.table} rows`);
        send({ op: 'failed', table: m.table, rows, message: e.message, sqliteCode: e.sqliteCode ?? null });
      }
      break;
    }
    case 'flush':
      send({ op: 'flushed', id: m.id });
      break;
    case 'retain':
      send({ op: 'retained', id: m.id, result: retain() });
      break;
    case 'close':
      if (timer) clearInterval(timer);
      try {
        store.close();
      } finally {
        send({ op: 'closed' });
        port.close();
      }
      break;
  }
});
