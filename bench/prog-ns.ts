// Per-packet cost of the bae XDP program under BPF_PROG_TEST_RUN, against a do-nothing XDP
// program measured in the same run, with 100k live conversations (and TCP flows) in the maps.
// Rows: the whole program (policy stage included, no policy loaded); bae_core, the datapath
// without the policy stage, with the real and the test clock; bae_shared, bae_core with one
// shared profile copy and atomic adds (what per-CPU profiles were chosen over); and the floors:
// what a packet needs at least, one clock read and the conversation lookup (UDP), plus the flow
// lookup (TCP). bae is held to TARGET_RATIO times the floor of its packet. Prints one JSON object.
//
//   node dist/bench/prog-ns.js [--conversations N] [--repeat N] [--rounds N]
import path from 'node:path';
import { loadCollection, type Collection } from '../src/datapath';
import {
  AF_INET,
  CONSTANTS,
  Clock,
  LAYOUTS,
  MAPS,
  Mode,
  PROGRAM,
  convKeyFor,
  encodeConvKey,
  encodeFlowKey,
  flowKeyFor,
} from '../src/datapath/layout';
import { TCP_ACK, buildPacket } from '../test/lib/packets';
import { median, round2, wholeOption } from './lib/args';

const root = path.resolve(__dirname, '../..');
const BAE = path.join(root, 'build/bpf/bae.o');
const BAE_SHARED = path.join(root, 'build/bpf/test/bae_shared.o');
const BAE_CORE = path.join(root, 'build/bpf/test/bae_core.o');
const BASELINE = path.join(root, 'build/bpf/test/xdp_pass.o');
/** bae's ns per packet over the floor of what that packet needs. */
const TARGET_RATIO = 1.5;


const conversations = wholeOption('prog-ns', 'conversations', 100_000);
const repeat = wholeOption('prog-ns', 'repeat', 500_000);
const rounds = wholeOption('prog-ns', 'rounds', 5);
// LRU maps evict before they are completely full (per-CPU free lists): leave room.
const mapSize = Math.ceil((conversations * 1.3) / 1024) * 1024;

/** The i-th client address; every conversation is client <-> 192.168.0.1. */
const client = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const SERVER = '192.168.0.1';

// Keys of every live conversation and flow, made once for every collection.
let liveKeys: { convs: Buffer[]; flows: Buffer[] } | undefined;

function fill(coll: Collection): number {
  liveKeys ??= {
    convs: Array.from({ length: conversations }, (_, i) => encodeConvKey(convKeyFor(client(i), SERVER).key)),
    flows: Array.from({ length: conversations }, (_, i) => encodeFlowKey(flowKeyFor(client(i), 40000, SERVER, 443).key)),
  };
  const convs = coll.map(MAPS.convs);
  const convZero = Buffer.alloc(LAYOUTS.bae_conv!.size);
  const flowZero = Buffer.alloc(LAYOUTS.bae_tcp_flow!.size);
  convs.updateBatch(liveKeys.convs, liveKeys.convs.map(() => convZero));
  coll.map(MAPS.tcpFlows).updateBatch(liveKeys.flows, liveKeys.flows.map(() => flowZero));
  return convs.lookupBatch().keys.length;
}


/** Mean ns per run of one BPF_PROG_TEST_RUN call with `repeat` runs, after a short warm-up. */
async function nsPerRun(coll: Collection, program: string, frame: Buffer): Promise<number> {
  const prog = coll.program(program);
  await prog.testAsync(frame, { repeat: 1000 });
  return (await prog.testAsync(frame, { repeat })).durationNs;
}

async function main(): Promise<void> {
  const probe = client(12_345);
  const udp = buildPacket({ ip: { version: 4, src: probe, dst: SERVER }, l4: { proto: 'udp', sport: 40000, dport: 443, payload: Buffer.alloc(18) } }).frame;
  const tcp = buildPacket({ ip: { version: 4, src: probe, dst: SERVER }, l4: { proto: 'tcp', sport: 40000, dport: 443, flags: TCP_ACK, seq: 1, payload: Buffer.alloc(6) } }).frame;
  const real = { [CONSTANTS.mode]: Mode.ingress, [CONSTANTS.clock]: Clock.real };
  const testClock = { [CONSTANTS.mode]: Mode.ingress, [CONSTANTS.clock]: Clock.test };
  const maxEntries = { [MAPS.convs]: mapSize, [MAPS.tcpFlows]: mapSize };

  const opened: Collection[] = [];
  const open = (file: string, opts: Parameters<typeof loadCollection>[1]) => {
    const c = loadCollection(file, opts);
    opened.push(c);
    return c;
  };
  try {
    const base = open(BASELINE, { maxEntries: { floor_convs: mapSize, floor_flows: mapSize } });
    const full = open(BAE, { constants: real, maxEntries });
    const core = open(BAE_CORE, { constants: real, maxEntries });
    const coreTestClock = open(BAE_CORE, { constants: testClock, maxEntries });
    const shared = open(BAE_SHARED, { constants: real, maxEntries });
    const sharedTestClock = open(BAE_SHARED, { constants: testClock, maxEntries });
    const live = {
      full: fill(full),
      core: fill(core),
      coreTestClock: fill(coreTestClock),
      shared: fill(shared),
      sharedTestClock: fill(sharedTestClock),
    };
    // The floors' lookups hit: key 0.0.0.0 - 0.0.0.0 (what the floor programs ask for) among the rest.
    const floor = base.map('floor_convs');
    const zeroConv = Buffer.alloc(LAYOUTS.bae_conv!.size);
    const floorKeys = [encodeConvKey({ family: AF_INET, a: '0.0.0.0', b: '0.0.0.0' }), ...liveKeys!.convs];
    floor.updateBatch(floorKeys, floorKeys.map(() => zeroConv));
    const floorFlows = base.map('floor_flows');
    const zeroFlow = Buffer.alloc(LAYOUTS.bae_tcp_flow!.size);
    const floorFlowKeys = [encodeFlowKey(flowKeyFor('0.0.0.0', 0, '0.0.0.0', 0).key), ...liveKeys!.flows];
    floorFlows.updateBatch(floorFlowKeys, floorFlowKeys.map(() => zeroFlow));

    const rows: [string, Collection, string, Buffer][] = [
      ['baseline', base, 'xdp_pass', udp],
      ['floor_clock', base, 'xdp_clock', udp],
      ['floor_lookup', base, 'xdp_lookup', udp],
      ['floor_udp', base, 'xdp_floor_udp', udp],
      ['floor_tcp', base, 'xdp_floor_tcp', tcp],
      ['bae_udp', full, PROGRAM, udp],
      ['bae_tcp', full, PROGRAM, tcp],
      ['core_udp', core, PROGRAM, udp],
      ['core_tcp', core, PROGRAM, tcp],
      ['core_udp_test_clock', coreTestClock, PROGRAM, udp],
      ['shared_udp', shared, PROGRAM, udp],
      ['shared_tcp', shared, PROGRAM, tcp],
      ['shared_udp_test_clock', sharedTestClock, PROGRAM, udp],
    ];
    const raw: Record<string, number[]> = {};
    // Round by round, so drift of the (shared) machine hits every row alike.
    for (let r = 0; r < rounds; r++) {
      for (const [name, coll, prog, frame] of rows) (raw[name] ??= []).push(await nsPerRun(coll, prog, frame));
    }
    // Two runs at once on one conversation (two libuv threads, which the scheduler spreads over
    // both CPUs when they are free): what sharing one profile copy costs when CPUs contend.
    for (let r = 0; r < rounds; r++) {
      for (const [name, coll] of [['core_udp_2cpu', coreTestClock], ['shared_udp_2cpu', sharedTestClock]] as const) {
        const both = await Promise.all([nsPerRun(coll, PROGRAM, udp), nsPerRun(coll, PROGRAM, udp)]);
        (raw[name] ??= []).push(Math.max(...both));
      }
    }
    const ns = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, median(v)]));
    const ratio = Object.fromEntries(Object.keys(ns).map((k) => [k, Math.round((ns[k]! / ns.baseline!) * 100) / 100]));
    const result = {
      bench: 'prog-ns',
      conversations: { requested: conversations, live, mapSize },
      repeat,
      rounds,
      nsPerPacket: ns,
      ratio,
      // bae against the floor of its packet (the target), and the floors against the do-nothing
      // program (what one clock read and the lookups cost on this machine).
      ratioToFloor: { udp: round2(ns.bae_udp! / ns.floor_udp!), tcp: round2(ns.bae_tcp! / ns.floor_tcp!) },
      target: TARGET_RATIO,
      withinTarget: ns.bae_udp! / ns.floor_udp! <= TARGET_RATIO && ns.bae_tcp! / ns.floor_tcp! <= TARGET_RATIO,
      raw,
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    for (const c of opened) c.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`prog-ns: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
