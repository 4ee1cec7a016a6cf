// Frames per second that bae's injection sender (src/reconstruct/inject-send.ts: bpf/inject.bpf.c
// under BPF_PROG_RUN live frames, rate-bounded batches) puts through a veth port, against a plain
// live-frames loop of a fixed frame (bench_tx of bpf/test/bench.bpf.c, 1M frames a call) through
// the same port, in the same run. Delivery is counted on the far side (bench_count on the
// server's veth), never by verdicts. Rounds alternate which goes first; the ratio is the median
// of the rounds' ratios. Also the rate of distinct frames (one call each: what forged segments
// of a conversation cost). Target: the sender >= 3 Mpps.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { openPinnedMap, sumPerCpu } from '../src/datapath';
import { labDown, labExecArgv, labUp, run, type Lab } from '../src/lab';
import { detachAll, median, note, printResult, worker } from './lib/lab';

const ROUNDS = Number(process.env.BENCH_INJECT_ROUNDS ?? 5);
/** Frames of one measurement of each side: about a second at the rates seen here. */
const FRAMES = Number(process.env.BENCH_INJECT_FRAMES ?? 3_000_000);
const DISTINCT = Number(process.env.BENCH_INJECT_DISTINCT ?? 2000);
const SECONDS_BASELINE = Number(process.env.BENCH_INJECT_SECONDS ?? 1);
const BASELINE_REPEAT = 1_000_000;
const FRAME_BYTES = 60;
const TARGET_PPS = 3_000_000;
const INJECT_WORKER = path.join(__dirname, 'lib/inject-worker.js');

function macOf(ns: string, iface: string): Buffer {
  const [link] = JSON.parse(run(['ip', '-n', ns, '-j', 'link', 'show', 'dev', iface])) as { address: string }[];
  return Buffer.from(link!.address.replace(/:/g, ''), 'hex');
}

/** 60 bytes to the server's MAC, an ethertype nobody handles: the counter drops it anyway. */
function frame(lab: Lab): Buffer {
  const f = Buffer.alloc(FRAME_BYTES);
  macOf(lab.server.ns, lab.server.iface).copy(f, 0);
  macOf(lab.bae.ns, lab.bae.serverPort).copy(f, 6);
  f.writeUInt16BE(0x88b5, 12); // IEEE local experimental ethertype
  return f;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function delivered(countDir: string): bigint {
  const m = openPinnedMap(path.join(countDir, 'bench_counts'));
  try {
    return sumPerCpu(m.lookupPerCpu(u32(0)) ?? []);
  } finally {
    m.close();
  }
}

function injectWorker(lab: Lab, args: string[]): { sent: number; calls: number; elapsedNs: number } {
  const argv = labExecArgv(lab, 'bae', [process.execPath, INJECT_WORKER, ...args]);
  const res = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 120_000 });
  if (res.status !== 0) throw new Error(`inject-worker ${args[0]}: ${res.stderr.trim() || res.error?.message}`);
  return JSON.parse(res.stdout.trim().split('\n').pop()!) as { sent: number; calls: number; elapsedNs: number };
}

interface Measurement {
  pps: number;
  sent: number;
  delivered: number;
  calls?: number;
}

async function main(): Promise<void> {
  const prefix = `bi${process.pid}-`;
  const pinBase = `/sys/fs/bpf/bae-bench-${process.pid}-inject`;
  const countDir = `${pinBase}/count`;
  const { lab } = labUp(prefix);
  const sender: Measurement[] = [];
  const baseline: Measurement[] = [];
  const distinct: Measurement[] = [];
  try {
    worker(lab, 'server', ['attach', countDir, 'bench_count', lab.server.iface]);
    const hex = frame(lab).toString('hex');
    const measure = (into: Measurement[], fn: () => { sent: number; elapsedNs: number; calls?: number }) => {
      const before = delivered(countDir);
      const r = fn();
      const got = Number(delivered(countDir) - before);
      into.push({ pps: (got * 1e9) / r.elapsedNs, sent: r.sent, delivered: got, calls: r.calls });
    };
    const runSender = () => measure(sender, () => injectWorker(lab, ['repeat', lab.bae.serverPort, hex, String(FRAMES)]));
    const runBaseline = () =>
      measure(baseline, () => worker(lab, 'bae', ['generate', lab.bae.serverPort, hex, String(SECONDS_BASELINE), String(BASELINE_REPEAT)]) as { sent: number; elapsedNs: number });
    for (let round = 0; round < ROUNDS; round++) {
      const pair: [string, () => void][] = [
        ['plain live-frames loop', runBaseline],
        ['bae inject sender', runSender],
      ];
      if (round % 2) pair.reverse();
      for (const [what, fn] of pair) {
        note(`round ${round + 1}/${ROUNDS}: ${what}`);
        fn();
      }
      note(`round ${round + 1}/${ROUNDS}: ${DISTINCT} distinct frames`);
      measure(distinct, () => injectWorker(lab, ['distinct', lab.bae.serverPort, hex, String(DISTINCT)]));
    }
  } finally {
    try {
      detachAll(countDir);
      labDown(prefix);
    } finally {
      fs.rmSync(pinBase, { recursive: true, force: true });
    }
  }
  const senderPps = median(sender.map((m) => m.pps));
  const baselinePps = median(baseline.map((m) => m.pps));
  const ratios = sender.map((m, i) => m.pps / baseline[i]!.pps);
  printResult({
    bench: 'inject-rate',
    what: `${FRAME_BYTES}-byte frames (64 on a wire) out of a veth port, delivered per second, counted on the peer (median of rounds)`,
    rounds: ROUNDS,
    senderPps: Math.round(senderPps),
    baselinePps: Math.round(baselinePps),
    distinctFramesPps: Math.round(median(distinct.map((m) => m.pps))),
    runs: {
      sender: sender.map((m) => ({ pps: Math.round(m.pps), sent: m.sent, delivered: m.delivered, calls: m.calls })),
      baseline: baseline.map((m) => ({ pps: Math.round(m.pps), sent: m.sent, delivered: m.delivered })),
      distinct: distinct.map((m) => ({ pps: Math.round(m.pps), sent: m.sent, delivered: m.delivered })),
    },
    ratio: Number(median(ratios).toFixed(3)),
    roundRatios: ratios.map((r) => Number(r.toFixed(3))),
    targetPps: TARGET_PPS,
    meetsTarget: senderPps >= TARGET_PPS,
  });
}

main().catch((err) => {
  process.stderr.write(`inject-rate bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
