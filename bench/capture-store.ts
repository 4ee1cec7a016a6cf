// Captured frames from the kernel into SQLite, end to end (issue 15): the bae program with a
// `capture: { snaplen: 128 }` policy runs on UDP frames under BPF_PROG_TEST_RUN (on a libuv
// worker, batches of --batch runs), the capture ring is read on the main thread by the agent's
// reader (CaptureReader, as StoreBridge does) and every record goes to the StoreWriter, for
// --seconds. Figures: frames the program ran, records the ring took and lost (full ring), rows
// the store committed per second. Baseline in the same run: the same pipeline with the records
// only counted (reader, no store), so the ratio is what storing costs the capture path.
// Prints one JSON object.
//
//   node dist/bench/capture-store.js [--seconds N] [--batch N]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CONSTANTS, Clock, PROGRAM, loadCollection, type Collection } from '../src/datapath';
import { applyCompiled, compilePolicies, parsePolicyText, policyMapsOf, readPolicyStats } from '../src/policy';
import { CaptureReader, type PacketRecord } from '../src/reconstruct';
import { StoreWriter } from '../src/store';
import { buildPacket } from '../test/lib/packets';
import { round2, wholeOption } from './lib/args';

const TARGET_PPS = 300_000;
const seconds = wholeOption('capture-store', 'seconds', 5);
const batch = wholeOption('capture-store', 'batch', 20_000);
const root = path.resolve(__dirname, '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bae-bench-${process.pid}-capture-`));

const POLICY = `apiVersion: bae/v1
kind: Policy
metadata: { name: keep-udp }
spec:
  match: { proto: udp }
  actions:
    - capture: { snaplen: 128 }
`;
const frame = buildPacket({ ip: { version: 4, src: '10.1.0.2', dst: '10.2.0.3' }, l4: { proto: 'udp', sport: 4000, dport: 5000, payload: Buffer.alloc(200, 7) } }).frame;

interface Round {
  ran: number;
  captured: number;
  lost: number;
  read: number;
  committed: number;
  seconds: number;
}

async function round(store: boolean): Promise<Round> {
  const coll: Collection = loadCollection(path.join(root, 'build/bpf/bae.o'), { constants: { [CONSTANTS.clock]: Clock.real } });
  const writer = store ? await StoreWriter.open({ file: path.join(dir, `capture-${Date.now()}.db`) }) : undefined;
  try {
    const maps = policyMapsOf((n) => coll.map(n));
    const set = parsePolicyText(POLICY, 'bench.yaml');
    await applyCompiled(maps, compilePolicies(set, { requireKernelActions: true }), { sleep: async () => undefined });
    const names = new Map(set.map((p) => [p.id, p.name]));
    let read = 0;
    const sink = writer ? (r: PacketRecord) => void (read++, writer.writePacket(r)) : () => void read++;
    const reader = new CaptureReader({ map: coll.map('bae_capture') }, sink, { names: () => names });
    const prog = coll.program(PROGRAM);
    const start = process.hrtime.bigint();
    const end = start + BigInt(seconds) * 1_000_000_000n;
    let ran = 0;
    try {
      while (process.hrtime.bigint() < end) {
        // The runs go on a worker thread; the ring's records arrive here meanwhile (epoll).
        await prog.testAsync(frame, { repeat: batch });
        ran += batch;
        reader.consume();
      }
      reader.consume();
      await writer?.flush();
    } finally {
      reader.close();
    }
    const s = Number(process.hrtime.bigint() - start) / 1e9;
    const st = readPolicyStats(maps);
    return { ran, captured: Number(st.captured), lost: Number(st.captureLost), read, committed: writer ? writer.state().committed.packets : 0, seconds: s };
  } finally {
    await writer?.close();
    coll.close();
  }
}

async function main(): Promise<void> {
  try {
    const base = await round(false);
    const stored = await round(true);
    const pps = (n: number, r: Round) => Math.round(n / r.seconds);
    const out = {
      bench: 'capture-store',
      seconds,
      batch,
      snaplen: 128,
      loadavg: os.loadavg().map(round2),
      baseline_reader_only: { ran: base.ran, captured: base.captured, lost: base.lost, read: base.read, records_per_s: pps(base.read, base) },
      store: {
        ran: stored.ran,
        captured: stored.captured,
        lost: stored.lost,
        lost_fraction: round2(stored.lost / Math.max(1, stored.ran)),
        read: stored.read,
        committed: stored.committed,
        committed_per_s: pps(stored.committed, stored),
      },
      ratio_store_vs_reader: round2(pps(stored.committed, stored) / Math.max(1, pps(base.read, base))),
      target_committed_per_s: TARGET_PPS,
      target_met: pps(stored.committed, stored) >= TARGET_PPS,
    };
    process.stdout.write(JSON.stringify(out) + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`capture-store: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
