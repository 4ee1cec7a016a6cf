// iperf3 TCP from client to server through bae inline vs through a Linux bridge between the same
// two ports, with the same offload settings (the lab's: end hosts tx checksum off, GRO on), in
// one run. A plain XDP devmap bridge (bench_bridge) is measured too: it separates what any XDP
// path on veth costs from what bae's own work costs. Rounds alternate between the three so that
// drift of a shared machine hits all alike. Prints one JSON object; target: bae >= 0.95x the
// plain devmap bridge (XDP on veth costs every XDP path the same; bae's own work is the rest).
import fs from 'node:fs';
import { iperf3, labDown, labLinuxBridge, labUp } from '../src/lab';
import { baeOn, detachAll, median, note, printResult, worker } from './lib/lab';

const SECONDS = Number(process.env.BENCH_IPERF_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_IPERF_ROUNDS ?? 2);
const TARGET = 0.95;

async function main(): Promise<void> {
  const prefix = `bb${process.pid}-`;
  const pinDir = `/sys/fs/bpf/bae-bench-${process.pid}`;
  const { lab } = labUp(prefix);
  const bridge: number[] = [];
  const devmap: number[] = [];
  const bae: number[] = [];
  const retransmits = { bridge: 0, devmap: 0, bae: 0 };
  const devmapDir = `${pinDir}-devmap`;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      note(`round ${round + 1}/${ROUNDS}: Linux bridge, ${SECONDS} s`);
      labLinuxBridge(lab, true);
      try {
        const r = await iperf3(lab, { seconds: SECONDS });
        bridge.push(r.bitsPerSecond);
        retransmits.bridge += r.retransmits;
      } finally {
        labLinuxBridge(lab, false);
      }
      note(`round ${round + 1}/${ROUNDS}: plain XDP devmap bridge, ${SECONDS} s`);
      worker(lab, 'bae', ['attach', devmapDir, 'bench_bridge', lab.bae.clientPort, lab.bae.serverPort]);
      try {
        const r = await iperf3(lab, { seconds: SECONDS });
        devmap.push(r.bitsPerSecond);
        retransmits.devmap += r.retransmits;
      } finally {
        detachAll(devmapDir);
      }
      note(`round ${round + 1}/${ROUNDS}: bae inline, ${SECONDS} s`);
      baeOn(lab, 'bae', ['load', '--iface', lab.bae.clientPort, '--peer', lab.bae.serverPort, '--pin-dir', pinDir]);
      try {
        const r = await iperf3(lab, { seconds: SECONDS });
        bae.push(r.bitsPerSecond);
        retransmits.bae += r.retransmits;
      } finally {
        baeOn(lab, 'bae', ['unload', '--pin-dir', pinDir]);
      }
    }
  } finally {
    try {
      detachAll(devmapDir);
      labDown(prefix);
    } finally {
      fs.rmSync(pinDir, { recursive: true, force: true });
      fs.rmSync(devmapDir, { recursive: true, force: true });
    }
  }
  const ratio = median(bae) / median(bridge);
  printResult({
    bench: 'iperf',
    what: 'iperf3 TCP client->server, receiver goodput, bit/s (median of rounds)',
    seconds: SECONDS,
    rounds: ROUNDS,
    linuxBridgeBitsPerSecond: Math.round(median(bridge)),
    xdpDevmapBridgeBitsPerSecond: Math.round(median(devmap)),
    baeInlineBitsPerSecond: Math.round(median(bae)),
    runs: { linuxBridge: bridge.map(Math.round), xdpDevmapBridge: devmap.map(Math.round), baeInline: bae.map(Math.round) },
    retransmits,
    ratio: Number(ratio.toFixed(3)),
    ratioToDevmapBridge: Number((median(bae) / median(devmap)).toFixed(3)),
    target: TARGET,
    meetsTarget: median(bae) / median(devmap) >= TARGET,
  });
}

main().catch((err) => {
  process.stderr.write(`iperf bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
