// Captured packets written to SQLite per second, sustained (issue 15's target: >= 300k/s of
// 128-byte packets with batching). Rows: the StoreWriter (batches packed into transferred
// buffers, committed by its worker thread, one transaction a batch) fed as fast as one event
// loop can for --seconds (pausing 1 ms when the writer is maxPendingRows behind: `refusals`),
// counting what it commits until all is committed; and the baseline
// measured in the same run: plain `INSERT` of the same rows in one transaction on the calling
// thread (better-sqlite3, same schema, same file system). Prints one JSON object.
//
//   node dist/bench/store-writes.js [--seconds N] [--rows N] [--size BYTES] [--rounds N]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Store, StoreWriter, type PacketRecord } from '../src/store';
import { packet } from '../test/store/frames';
import { median, round2, wholeOption } from './lib/args';

const TARGET_PPS = 300_000;
const seconds = wholeOption('store-writes', 'seconds', 5);
const plainRows = wholeOption('store-writes', 'rows', 1_000_000);
const size = wholeOption('store-writes', 'size', 128);
const rounds = wholeOption('store-writes', 'rounds', 3);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bae-bench-${process.pid}-store-`));
/** A small pool of distinct frames, reused: the producer's cost is the writer's, not the frames'. */
const POOL = Array.from({ length: 1024 }, (_, i) => packet(i, { size, kind: 'captured', policy: 'lossy' }));
const rowAt = (i: number): PacketRecord => ({ ...POOL[i & 1023]!, tsNs: 1_765_000_000_000_000_000n + BigInt(i) });

async function writerRound(n: number): Promise<{ committedPps: number; committed: number; refusals: number; seconds: number }> {
  const file = path.join(dir, `writer-${n}.db`);
  const w = await StoreWriter.open({ file });
  const start = process.hrtime.bigint();
  const end = start + BigInt(seconds) * 1_000_000_000n;
  let i = 0;
  let refusals = 0;
  while (process.hrtime.bigint() < end) {
    let k = 0;
    while (k < 4096 && w.writePacket(rowAt(i))) {
      k++;
      i++;
    }
    // Let the writer's replies in, as the agent's loop does; when the writer refused a row (it is
    // maxPendingRows behind), wait a millisecond rather than spin on refusals, which would take
    // the CPU the writer thread needs.
    if (k < 4096) refusals++;
    await new Promise((r) => (k < 4096 ? setTimeout(r, 1) : setImmediate(r)));
  }
  await w.flush();
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  const st = w.state();
  await w.close();
  fs.rmSync(file, { force: true });
  return { committedPps: Math.round(st.committed.packets / s), committed: st.committed.packets, refusals, seconds: round2(s) };
}

function plainRound(n: number): { pps: number; seconds: number } {
  const file = path.join(dir, `plain-${n}.db`);
  const s = Store.open(file);
  const stmt = s.db.prepare('INSERT INTO packets (ts_ns, ifindex, kind, policy, action, reason, orig_len, data, scenario_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const start = process.hrtime.bigint();
  s.db.transaction(() => {
    for (let i = 0; i < plainRows; i++) {
      const r = rowAt(i);
      stmt.run(r.tsNs, r.ifindex, r.kind, r.policy, r.action, r.reason, r.origLen, r.data, null);
    }
  })();
  const sec = Number(process.hrtime.bigint() - start) / 1e9;
  s.close();
  fs.rmSync(file, { force: true });
  return { pps: Math.round(plainRows / sec), seconds: round2(sec) };
}

async function main(): Promise<void> {
  const writer: Awaited<ReturnType<typeof writerRound>>[] = [];
  const plain: ReturnType<typeof plainRound>[] = [];
  for (let r = 0; r < rounds; r++) {
    writer.push(await writerRound(r));
    plain.push(plainRound(r));
  }
  const writerPps = median(writer.map((x) => x.committedPps));
  const plainPps = median(plain.map((x) => x.pps));
  process.stdout.write(
    JSON.stringify({
      bench: 'store-writes',
      packetBytes: size,
      fileSystem: dir,
      cpus: os.cpus().length,
      // Other work on the machine during the run: these figures scale with the CPU left over.
      loadAverage1m: round2(os.loadavg()[0]!),
      writer: { committedPerSecond: writerPps, rounds: writer },
      plainInsertOneTransaction: { rowsPerSecond: plainPps, rows: plainRows, rounds: plain },
      ratioWriterToPlain: round2(writerPps / plainPps),
      targetPerSecond: TARGET_PPS,
      meetsTarget: writerPps >= TARGET_PPS,
    }) + '\n',
  );
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`store-writes: ${String((err as Error).stack ?? err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(dir, { recursive: true, force: true }));
