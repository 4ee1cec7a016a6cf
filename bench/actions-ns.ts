// ns per packet of each in-kernel emulation action against profile-only (no policy) and against
// a plain `count` policy, in the same run, under BPF_PROG_TEST_RUN (real clock). Every program
// gets the same 1000-byte TCP frame. Each figure is the kernel's own duration of single runs
// (repeat 1: truncate and tcp-flags change the frame, and a repeated run would see the changed
// one), averaged over --runs calls; the median of --rounds rounds.
// Prints one JSON object.
//
//   node dist/bench/actions-ns.js [--runs N] [--rounds N]
import os from 'node:os';
import path from 'node:path';
import { loadCollection, type Collection } from '../src/datapath';
import { CONSTANTS, Clock, PROGRAM } from '../src/datapath/layout';
import { applyCompiled } from '../src/policy/apply';
import { policyMapsOf } from '../src/policy/maps';
import { compilePolicies } from '../src/policy/compile';
import { parsePolicyText } from '../src/policy/parse';
import { buildPacket, TCP_ACK, TCP_PSH } from '../test/lib/packets';
import { median, round2, wholeOption } from './lib/args';
import { printResult } from './lib/lab';

const root = path.resolve(__dirname, '../..');

const runs = wholeOption('actions-ns', 'runs', 20_000);
const rounds = wholeOption('actions-ns', 'rounds', 3);

/** The actions of each case: one policy on every TCP packet, so that each run does the work. */
const CASES: Record<string, string | null> = {
  profile_only: null,
  count: '[count]',
  loss: '[{ loss: { probability: 1 } }]',
  loss_correlated: '[{ loss: { probability: 1, correlation: 25 } }]',
  loss_gilbert_elliott: '[{ loss: { model: gilbert-elliott, p: 1, r: 30 } }]',
  rate_policy: '[{ rate: { rate: 1tbit } }]',
  rate_conversation: '[{ rate: { rate: 1tbit, per: conversation } }]',
  tcp_flags: '[{ tcp-flags: { set: ECE } }]',
  corrupt_1bit_leave: '[{ corrupt: { probability: 100, bits: 1 } }]',
  corrupt_8bits_fix: '[{ corrupt: { probability: 100, bits: 8, checksums: fix } }]',
  truncate_to_100_leave: '[{ truncate: { to: 100, lengths: leave } }]',
  truncate_to_100_fix: '[{ truncate: { to: 100, lengths: fix } }]',
  all_five: '[{ rate: { rate: 1tbit } }, { loss: { probability: 1 } }, { truncate: { to: 100 } }, { corrupt: { probability: 100, bits: 2, checksums: fix } }, { tcp-flags: { set: ECE } }]',
};

function nsPerRun(coll: Collection, frame: Buffer): number {
  const prog = coll.program(PROGRAM);
  for (let i = 0; i < 500; i++) prog.test(frame);
  let sum = 0;
  for (let i = 0; i < runs; i++) sum += prog.test(frame).durationNs;
  return sum / runs;
}

async function main(): Promise<void> {
  const object = path.join(root, 'build/bpf/bae.o');
  const constants = { [CONSTANTS.clock]: Clock.real };
  const colls: Record<string, Collection> = {};
  try {
    for (const [name, actions] of Object.entries(CASES)) {
      const coll = loadCollection(object, { constants });
      colls[name] = coll;
      if (actions === null) continue;
      const yaml = `apiVersion: bae/v1\nkind: Policy\nmetadata: { name: bench }\nspec:\n  match: { proto: tcp }\n  seed: 1\n  actions: ${actions}\n`;
      await applyCompiled(policyMapsOf((n) => coll.map(n)), compilePolicies(parsePolicyText(yaml, 'bench.yaml'), { requireKernelActions: true }), { sleep: async () => undefined });
    }
    const frame = buildPacket({
      ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' },
      l4: { proto: 'tcp', sport: 40000, dport: 80, seq: 1, flags: TCP_ACK | TCP_PSH, payload: Buffer.alloc(946, 0x61) },
    }).frame;
    const raw: Record<string, number[]> = {};
    for (let r = 0; r < rounds; r++) for (const name of Object.keys(CASES)) (raw[name] ??= []).push(round2(nsPerRun(colls[name]!, frame)));
    const ns = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, round2(median(v))]));
    const base = ns.profile_only!;
    const count = ns.count!;
    printResult({
      bench: 'actions-ns',
      frameBytes: frame.length,
      runs,
      rounds,
      nsPerPacket: ns,
      ratioToProfileOnly: Object.fromEntries(Object.entries(ns).map(([k, v]) => [k, round2(v / base)])),
      nsOverCountPolicy: Object.fromEntries(Object.entries(ns).filter(([k]) => k !== 'profile_only').map(([k, v]) => [k, round2(v - count)])),
      loadAverage: os.loadavg().map(round2),
      raw,
    });
  } finally {
    for (const c of Object.values(colls)) c.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`actions-ns: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
