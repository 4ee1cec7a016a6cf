// Benchmark of the AF_XDP delay line (prints one JSON object on stdout, progress on stderr).
//
//   BPF_PROG_RUN live frames --(ingress portA)--> dl_redirect -> XSKMAP -> delay line thread
//     -> AF_XDP TX on portB --veth--> sink (namespace of its own, counting XDP program, drops)
//
// Baseline of the same run: the same live frames through bench_bridge (a plain devmap bridge
// portA -> portB) into the same sink. Then the lateness of the line (transmit time - due time)
// at a paced 100 kpps. Frames are 64 bytes on the wire (60 + FCS), IPv4/UDP.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attachXdp, loadCollection, numPossibleCpus, resolveIfindex, type Collection, type Link, type Program } from '../src/datapath';
import { DelayLine, latenessQuantileNs } from '../src/emulation';
import { bpfFixture, testPinDir } from '../test/lib/fixtures';
import { xskSlotsFor } from '../test/lib/delay-lab';
import { createNetns, type Netns } from '../test/lib/netns';

const SECONDS = 2;
const DELAY_MS = 10;
const PACED_PPS = 100_000;
const note = (msg: string) => process.stderr.write(`delay-line bench: ${msg}\n`);

function frame64(): Buffer {
  const f = Buffer.alloc(60);
  Buffer.from('02000000000b02000000000a0800', 'hex').copy(f, 0); // dst, src, IPv4
  const ip = Buffer.from('4500002e000040004011000' + '00ac9c80a0ac9c80b', 'hex'); // 10.201.200.10 -> .11, UDP
  ip.copy(f, 14);
  f.writeUInt16BE(40000, 34); // UDP source port
  f.writeUInt16BE(9, 36); // discard
  f.writeUInt16BE(26, 38);
  return f;
}

/** CPU seconds (user + system) used so far by this process's delay-line thread, 0 if none. */
function delayLineCpuSeconds(): number {
  const ticksPerSecond = 100; // USER_HZ
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      if (fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== 'bae-delayline') continue;
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond; // utime, stime
    } catch {
      // the thread ended meanwhile
    }
  }
  return 0;
}

function sinkCount(counter: Collection): number {
  const v = counter.map('bench_counts').lookupPerCpu(Buffer.alloc(4));
  return (v ?? []).reduce((n, b) => n + Number(b.readBigUInt64LE(0)), 0);
}

/** Live frames of `prog` into `ifindex` for `seconds`, `repeat` frames per call; optionally paced to `pps`. */
function generate(prog: Program, ifindex: number, seconds: number, repeat: number, pps?: number): { frames: number; seconds: number } {
  const frame = frame64();
  const t0 = process.hrtime.bigint();
  let frames = 0;
  for (;;) {
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    if (elapsed >= seconds) return { frames, seconds: elapsed };
    if (pps !== undefined && frames >= elapsed * pps) continue; // paced: wait for the schedule
    prog.test(frame, { repeat, liveFrames: true, ctxIn: { ingressIfindex: ifindex } });
    frames += repeat;
  }
}

async function main(): Promise<void> {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const pinDir = testPinDir('dlbench');
  const undo: (() => void)[] = [];
  try {
    const ns: Netns = createNetns('dlb');
    undo.push(() => ns.remove());
    const portA = `bt${process.pid}ba`;
    const portB = `bt${process.pid}bb`;
    for (const [port, peer] of [[portA, 'idle0'], [portB, 'eth0']] as const) {
      execFileSync('ip', ['link', 'add', port, 'type', 'veth', 'peer', 'name', peer, 'netns', ns.name]);
      undo.push(() => execFileSync('ip', ['link', 'del', port], { stdio: 'ignore' }));
      execFileSync('sysctl', ['-qw', `net.ipv6.conf.${port}.disable_ipv6=1`]);
      execFileSync('ip', ['link', 'set', port, 'up']);
      ns.exec('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']); // no ND/MLD frames in the counts
      ns.exec('ip', ['link', 'set', peer, 'up']);
    }
    const ifA = resolveIfindex(portA);
    const ifB = resolveIfindex(portB);

    // The sink: bench_count on eth0 inside the namespace, attached from there through its pin.
    const bench = loadCollection(bpfFixture('bench'));
    undo.push(() => bench.close());
    fs.mkdirSync(pinDir, { recursive: true });
    undo.push(() => fs.rmSync(pinDir, { recursive: true, force: true }));
    const countPin = path.join(pinDir, 'count');
    bench.program('bench_count').pin(countPin);
    ns.exec('ip', ['link', 'set', 'dev', 'eth0', 'xdpdrv', 'pinned', countPin]);
    const line = loadCollection(bpfFixture('delay_line'), { maxEntries: { dl_xsks: xskSlotsFor([portA, portB]) } });
    undo.push(() => line.close());
    // Both ports carry the fixture, as in the lab. It matters for the generator too: live frames
    // into a device without an XDP program pay ~25 ms per BPF_PROG_RUN call on this kernel.
    const links: Link[] = [portA, portB].map((iface) => attachXdp({ program: line.program('dl_redirect'), iface, mode: 'native' }));
    undo.push(() => links.forEach((l) => l.close()));

    // 1. Baseline: devmap bridge portA -> portB.
    const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
    bench.map('bench_ports').update(u32(ifA), u32(ifB));
    note(`devmap bridge, ${SECONDS} s of live frames`);
    let before = sinkCount(bench);
    const baseGen = generate(bench.program('bench_bridge'), ifA, SECONDS, 100_000);
    await sleep(50);
    const basePps = (sinkCount(bench) - before) / baseGen.seconds;

    // 2. The delay line at 10 ms: offered as fast as the generator goes.
    note(`delay line ${DELAY_MS} ms, ${SECONDS} s of live frames`);
    let dl = new DelayLine({ xskMap: line.map('dl_xsks'), ports: [portA, portB], frames: 1 << 15, seed: 1, params: { delayMs: DELAY_MS } });
    undo.push(() => dl.close());
    before = sinkCount(bench);
    const cpuBefore = delayLineCpuSeconds();
    const dlGen = generate(line.program('dl_redirect'), ifA, SECONDS, 1000);
    await sleep(DELAY_MS * 3 + 50);
    const dlDelivered = sinkCount(bench) - before;
    const dlCpu = delayLineCpuSeconds() - cpuBefore;
    const dlStats = dl.stats();
    dl.close();

    // 3. Lateness at a paced 100 kpps.
    note(`delay line ${DELAY_MS} ms, paced ${PACED_PPS} pps`);
    dl = new DelayLine({ xskMap: line.map('dl_xsks'), ports: [portA, portB], frames: 1 << 15, seed: 1, params: { delayMs: DELAY_MS } });
    before = sinkCount(bench);
    // Calls of 10 frames (~40 µs of work each) on the schedule: the machine is shared, and single
    // frames would make the generator, not the line, the limit.
    const pacedGen = generate(line.program('dl_redirect'), ifA, SECONDS, 10, PACED_PPS);
    await sleep(DELAY_MS * 3 + 50);
    const pacedDelivered = sinkCount(bench) - before;
    const paced = dl.stats();
    dl.close();

    const us = (ns?: number) => (ns === undefined ? null : Math.round(ns / 10) / 100);
    const dlPps = dlDelivered / dlGen.seconds;
    process.stdout.write(
      JSON.stringify(
        {
          bench: 'delay-line',
          frameBytes: 64,
          cpus: numPossibleCpus(),
          loadAverage1m: Math.round(os.loadavg()[0]! * 100) / 100,
          seconds: SECONDS,
          devmapBridge: { offeredPps: Math.round(baseGen.frames / baseGen.seconds), deliveredPps: Math.round(basePps) },
          delayLine: {
            delayMs: DELAY_MS,
            offeredPps: Math.round(dlGen.frames / dlGen.seconds),
            deliveredPps: Math.round(dlPps),
            received: dlStats.received,
            transmitted: dlStats.transmitted,
            overflow: dlStats.overflow,
            kernelRxRingFull: dlStats.kernel.rxRingFull,
            realtime: dlStats.realtime,
            // The machine is shared: how much CPU the thread got, and what it did per CPU-second.
            threadCpuShare: Math.round((dlCpu / dlGen.seconds) * 100) / 100,
            deliveredPerThreadCpuSecond: dlCpu > 0 ? Math.round(dlDelivered / dlCpu) : null,
          },
          lateness: {
            delayMs: DELAY_MS,
            offeredPps: Math.round(pacedGen.frames / pacedGen.seconds),
            delivered: pacedDelivered,
            offered: pacedGen.frames,
            p50Us: us(latenessQuantileNs(paced.lateness, 0.5)),
            p99Us: us(latenessQuantileNs(paced.lateness, 0.99)),
            maxUs: us(paced.latenessMaxNs),
            note: 'p50/p99 are bucket upper bounds (8 buckets per power of two)',
          },
          ratios: { delayLineVsDevmap: Math.round((dlPps / basePps) * 1000) / 1000 },
          targets: { delayLineMpps: 0.9, latenessP99Us: 50 },
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    while (undo.length) {
      try {
        undo.pop()!();
      } catch (err) {
        note(`cleanup: ${(err as Error).message}`);
      }
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`delay-line bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
