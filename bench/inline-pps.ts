// 64-byte frames per second through bae inline vs through a plain devmap bridge (bench_bridge of
// bpf/test/bench.bpf.c) between the same two veth ports, in one run.
//
// Source: BPF_PROG_RUN live frames of an XDP_TX program with the ingress ifindex of the client's
// veth, so every frame leaves the client and arrives on bae's client-side port. Delivery is
// counted on the far side, by a counting XDP program on the server's veth, never by verdicts.
// Rounds alternate between the bridges; bae and the floor bridge run back to back in each round
// and are compared round by round (median of the rounds' ratios). Prints one JSON object; target: bae >= 0.9x the floor
// bridge (the plain bridge plus the one clock read and conversation lookup any profiler needs).
//
// After the rounds, one more pass of each bridge with the kernel's BPF run-time statistics on
// (kernel.bpf_stats_enabled, put back as found): the ns each program spends per frame in place,
// between the veth path's own work, where BPF_PROG_TEST_RUN (bench/prog-ns) runs it alone in a
// loop. Those figures include the statistics' own two clock reads (the plain bridge's figure is
// about that alone); the pps rounds run without them.
import fs from 'node:fs';
import path from 'node:path';
import { openPinnedMap, sumPerCpu } from '../src/datapath';
import { Lab, labDown, labUp, run } from '../src/lab';
import { round2 } from './lib/args';
import { baeOn, detachAll, median, note, printResult, worker } from './lib/lab';

const SECONDS = Number(process.env.BENCH_PPS_SECONDS ?? 1.5);
const ROUNDS = Number(process.env.BENCH_PPS_ROUNDS ?? 6);
/** Frames per BPF_PROG_RUN call: long enough to amortise its ~24 ms fixed cost. */
const REPEAT = 1_000_000;
/** 60 bytes without FCS: 64 bytes on a wire. */
const FRAME_BYTES = 60;
const TARGET = 0.9;

function macOf(ns: string, iface: string): Buffer {
  const [link] = JSON.parse(run(['ip', '-n', ns, '-j', 'link', 'show', 'dev', iface])) as { address: string }[];
  return Buffer.from(link!.address.replace(/:/g, ''), 'hex');
}

/** Ethernet + IPv4 + UDP from the client to the server, padded to FRAME_BYTES. */
function udpFrame(lab: Lab): Buffer {
  const f = Buffer.alloc(FRAME_BYTES);
  macOf(lab.server.ns, lab.server.iface).copy(f, 0);
  macOf(lab.client.ns, lab.client.iface).copy(f, 6);
  f.writeUInt16BE(0x0800, 12);
  const ip = 14;
  f[ip] = 0x45;
  f.writeUInt16BE(FRAME_BYTES - ip, ip + 2);
  f[ip + 8] = 64; // TTL
  f[ip + 9] = 17; // UDP
  lab.client.ipv4.split('.').forEach((o, i) => (f[ip + 12 + i] = Number(o)));
  lab.server.ipv4.split('.').forEach((o, i) => (f[ip + 16 + i] = Number(o)));
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += f.readUInt16BE(ip + i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  f.writeUInt16BE(~sum & 0xffff, ip + 10);
  const udp = ip + 20;
  f.writeUInt16BE(40000, udp);
  f.writeUInt16BE(9, udp + 2); // discard
  f.writeUInt16BE(FRAME_BYTES - udp, udp + 4); // checksum 0: none, allowed over IPv4
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

interface Measurement {
  pps: number;
  offeredPps: number;
}

const STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

/** The id of the XDP program attached to `iface` in namespace `ns`. */
function xdpProgId(ns: string, iface: string): number {
  const [link] = JSON.parse(run(['ip', '-n', ns, '-j', '-d', 'link', 'show', 'dev', iface])) as { xdp?: { prog?: { id: number }; attached?: { prog: { id: number } }[] } }[];
  const id = link?.xdp?.prog?.id ?? link?.xdp?.attached?.[0]?.prog.id;
  if (!id) throw new Error(`no XDP program on ${iface} in ${ns}`);
  return id;
}

/** ns per run of program `id` while `fn` runs with the kernel's BPF statistics on. */
function inPlaceNs(id: number, fn: () => void): number {
  const before = fs.readFileSync(STATS_SYSCTL, 'utf8').trim();
  const stats = () => JSON.parse(run(['bpftool', '-j', 'prog', 'show', 'id', String(id)])) as { run_time_ns?: number; run_cnt?: number };
  fs.writeFileSync(STATS_SYSCTL, '1');
  let a: ReturnType<typeof stats>, b: ReturnType<typeof stats>;
  try {
    a = stats();
    fn();
    b = stats();
  } finally {
    fs.writeFileSync(STATS_SYSCTL, before);
  }
  const runs = (b.run_cnt ?? 0) - (a.run_cnt ?? 0);
  if (runs <= 0) throw new Error(`program ${id} did not run with statistics on`);
  return ((b.run_time_ns ?? 0) - (a.run_time_ns ?? 0)) / runs;
}

function measure(lab: Lab, countDir: string, frameHex: string): Measurement {
  const before = delivered(countDir);
  const gen = worker(lab, 'client', ['generate', lab.client.iface, frameHex, String(SECONDS), String(REPEAT)], (SECONDS + 60) * 1000) as {
    sent: number;
    elapsedNs: number;
  };
  const got = delivered(countDir) - before;
  return { pps: (Number(got) * 1e9) / gen.elapsedNs, offeredPps: (gen.sent * 1e9) / gen.elapsedNs };
}

async function main(): Promise<void> {
  const prefix = `bp${process.pid}-`;
  const pinBase = `/sys/fs/bpf/bae-bench-${process.pid}-pps`;
  const countDir = `${pinBase}/count`;
  const bridgeDir = `${pinBase}/bridge`;
  const baeDir = `${pinBase}/bae`;
  const { lab } = labUp(prefix);
  const bridge: Measurement[] = [];
  const floor: Measurement[] = [];
  const bae: Measurement[] = [];
  /** ns per frame in place: devmap bridge, floor bridge, bae. */
  const inPlace: number[] = [];
  try {
    worker(lab, 'server', ['attach', countDir, 'bench_count', lab.server.iface]);
    const frameHex = udpFrame(lab).toString('hex');
    const ppsRound = () => measure(lab, countDir, frameHex);
    // The program's own ns per frame instead of a pps round.
    const inPlaceRound = () => inPlace.push(inPlaceNs(xdpProgId(lab.ns.bae, lab.bae.clientPort), ppsRound));
    const runBridge = (program: string, work: () => void) => {
      worker(lab, 'bae', ['attach', bridgeDir, program, lab.bae.clientPort, lab.bae.serverPort]);
      try {
        work();
      } finally {
        detachAll(bridgeDir);
      }
    };
    const runBae = (work: () => void) => {
      baeOn(lab, 'bae', ['load', '--iface', lab.bae.clientPort, '--peer', lab.bae.serverPort, '--pin-dir', baeDir]);
      try {
        work();
      } finally {
        baeOn(lab, 'bae', ['unload', '--pin-dir', baeDir]);
      }
    };
    for (let round = 0; round < ROUNDS; round++) {
      note(`round ${round + 1}/${ROUNDS}: plain devmap bridge, ${SECONDS} s`);
      runBridge('bench_bridge', () => bridge.push(ppsRound()));
      // The least a profiling bridge does per frame: the plain bridge plus one clock read and
      // one conversation lookup (bench_floor_bridge). bae cannot do better than this. bae and
      // the floor run back to back, in turns first, and are compared round by round: the
      // machine's speed drifts over seconds (shared cores), less within a pair.
      const pair: [string, () => void][] = [
        ['devmap bridge + clock + conversation lookup', () => runBridge('bench_floor_bridge', () => floor.push(ppsRound()))],
        ['bae inline', () => runBae(() => bae.push(ppsRound()))],
      ];
      if (round % 2) pair.reverse();
      for (const [what, fn] of pair) {
        note(`round ${round + 1}/${ROUNDS}: ${what}, ${SECONDS} s`);
        fn();
      }
    }
    note(`in place, with the kernel's BPF statistics on: devmap bridge, floor bridge, bae, ${SECONDS} s each`);
    runBridge('bench_bridge', inPlaceRound);
    runBridge('bench_floor_bridge', inPlaceRound);
    runBae(inPlaceRound);
  } finally {
    try {
      detachAll(countDir);
      detachAll(bridgeDir);
      labDown(prefix);
    } finally {
      fs.rmSync(pinBase, { recursive: true, force: true });
    }
  }
  const bridgePps = median(bridge.map((m) => m.pps));
  const baePps = median(bae.map((m) => m.pps));
  const floorPps = median(floor.map((m) => m.pps));
  const ratio = baePps / bridgePps;
  // bae against the floor measured right beside it, round by round; the median of those.
  const floorRatios = bae.map((m, i) => m.pps / floor[i]!.pps);
  const toFloor = median(floorRatios);
  printResult({
    bench: 'inline-pps',
    what: `${FRAME_BYTES}-byte UDP frames (64 on a wire) delivered per second client->server, counted on the server's veth (median of rounds)`,
    seconds: SECONDS,
    rounds: ROUNDS,
    devmapBridgePps: Math.round(bridgePps),
    baeInlinePps: Math.round(baePps),
    floorBridgePps: Math.round(floorPps),
    runs: {
      devmapBridge: bridge.map((m) => ({ pps: Math.round(m.pps), offeredPps: Math.round(m.offeredPps) })),
      baeInline: bae.map((m) => ({ pps: Math.round(m.pps), offeredPps: Math.round(m.offeredPps) })),
      floorBridge: floor.map((m) => ({ pps: Math.round(m.pps), offeredPps: Math.round(m.offeredPps) })),
    },
    // The plain bridge plus one clock read and one conversation lookup, against the plain bridge:
    // the best ratio any per-frame profiler can reach on this machine.
    floorRatio: Number((floorPps / bridgePps).toFixed(3)),
    ratio: Number(ratio.toFixed(3)),
    ratioToFloorBridge: Number(toFloor.toFixed(3)),
    roundRatiosToFloorBridge: floorRatios.map((r) => Number(r.toFixed(3))),
    target: TARGET,
    meetsTarget: toFloor >= TARGET,
    // The program's own time per frame in place (one pass each, statistics on), and what bae
    // spends above the floor bridge's program: the part of the gap that is bae's instructions.
    inPlaceNsPerFrame: { devmapBridge: round2(inPlace[0]!), floorBridge: round2(inPlace[1]!), bae: round2(inPlace[2]!) },
    inPlaceBaeOverFloorNs: round2(inPlace[2]! - inPlace[1]!),
  });
}

main().catch((err) => {
  process.stderr.write(`inline-pps bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
