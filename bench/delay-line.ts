// Benchmark of the AF_XDP delay line (prints one JSON object on stdout, progress on stderr).
//
//   BPF_PROG_RUN live frames --(ingress portA)--> dl_redirect -> XSKMAP -> delay line thread
//     -> AF_XDP TX on portB --veth--> sink (namespace of its own, counting XDP program, drops)
//
// Baseline of the same run: the same live frames through bench_bridge (a plain devmap bridge
// portA -> portB) into the same sink. Then the lateness of the line (transmit time - due time)
// at a paced 100 kpps: once on the line that was just overloaded (does it recover?), and once on
// a fresh line after the machine settled. Frames are 64 bytes on the wire (60 + FCS), IPv4/UDP.
//
// Two CPUs are shared by the generator and the line: the generator (this process's main thread,
// at nice -10, and the copy into the UMEM that the kernel does in its BPF_PROG_RUN calls) is
// pinned to one, the delay-line thread to the other, so that neither takes the other's CPU and
// what is measured is the line. The generator offers what it can (--offered-pps paces it);
// delivered / offered and the thread's CPU share say which side was the limit.
//
//   node dist/bench/delay-line.js [--seconds N] [--offered-pps N] [--repeat N] [--gen-cpu N] [--line-cpu N]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attachXdp, loadCollection, numPossibleCpus, resolveIfindex, type Collection, type Link, type Program } from '../src/datapath';
import { DELAY_TX_MAPS, DelayLine, latenessQuantileNs, latenessSince, type DelayLineStats, type LatenessBucket } from '../src/emulation';
import { bpfFixture, testPinDir } from '../test/lib/fixtures';
import { xskSlotsFor } from '../test/lib/delay-lab';
import { createNetns, type Netns } from '../test/lib/netns';
import { wholeOption } from './lib/args';

const BENCH = 'delay-line bench';
const SECONDS = wholeOption(BENCH, 'seconds', 2);
const OFFERED_PPS = process.argv.includes('--offered-pps') ? wholeOption(BENCH, 'offered-pps', 1) : undefined;
// Live frames per BPF_PROG_RUN call in the throughput phase.
const REPEAT = wholeOption(BENCH, 'repeat', 256);
// --socket-only: transmit through the AF_XDP sockets alone, as without the `transmit` option.
const SOCKET_ONLY = process.argv.includes('--socket-only');
const DELAY_MS = 10;
const PACED_PPS = 100_000;
// After the overload, before the recovery phase: the line sheds what is stale within maxLateMs.
const RECOVERY_PAUSE_MS = 50;
// Before the fresh paced phase: the machine settles after closing the overloaded line.
const SETTLE_MS = 500;
const note = (msg: string) => process.stderr.write(`delay-line bench: ${msg}\n`);

/** `--name N`: a CPU number below os.cpus().length, `fallback` when absent; exit 2 otherwise. */
function cpuOption(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0 || v >= os.cpus().length) {
    process.stderr.write(`${BENCH}: --${name} needs a CPU number from 0 to ${os.cpus().length - 1}, got '${process.argv[i + 1] ?? ''}'\n`);
    process.exit(2);
  }
  return v;
}

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

interface ThreadTimes {
  /** seconds on a CPU */
  cpu: number;
  /** seconds runnable but waiting for a CPU (preempted, throttled) */
  wait: number;
  voluntarySwitches: number;
  involuntarySwitches: number;
}

/** The scheduler's account of this process's delay-line thread (zeros if there is none). */
function delayLineThreadTimes(): ThreadTimes {
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      if (fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== 'bae-delayline') continue;
      const [run, wait] = fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      const status = fs.readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
      const count = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
      return {
        cpu: run! / 1e9,
        wait: wait! / 1e9,
        voluntarySwitches: count('voluntary_ctxt_switches'),
        involuntarySwitches: count('nonvoluntary_ctxt_switches'),
      };
    } catch {
      // the thread ended meanwhile
    }
  }
  return { cpu: 0, wait: 0, voluntarySwitches: 0, involuntarySwitches: 0 };
}

function sinkCount(counter: Collection): number {
  const v = counter.map('bench_counts').lookupPerCpu(Buffer.alloc(4));
  return (v ?? []).reduce((n, b) => n + Number(b.readBigUInt64LE(0)), 0);
}

/**
 * Live frames of `prog` into `ifindex` for `seconds`, `repeat` frames per call; optionally paced
 * to `pps` (spinning between calls). A paced generator that was kept from its CPU catches up at
 * most 10 ms of its schedule (at 100 kpps that burst still fits the line's RX ring): it forgives
 * the rest, and `frames` counts only what was offered.
 */
function generate(prog: Program, ifindex: number, seconds: number, repeat: number, pps?: number): { frames: number; seconds: number } {
  const frame = frame64();
  const t0 = process.hrtime.bigint();
  let frames = 0;
  let scheduled = 0; // frames the schedule has asked for
  for (;;) {
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    if (elapsed >= seconds) return { frames, seconds: elapsed };
    if (pps !== undefined) {
      if (scheduled >= elapsed * pps) continue; // paced: wait for the schedule
      scheduled = Math.max(scheduled, elapsed * pps - Math.max(2 * repeat, pps / 100)); // at most 10 ms of debt
      scheduled += repeat;
    }
    prog.test(frame, { repeat, liveFrames: true, ctxIn: { ingressIfindex: ifindex } });
    frames += repeat;
  }
}

/** Runs `fn` with this thread (the generator) at nice -10, so that the shared machine's other work does not pace it. */
function favoured<T>(fn: () => T): T {
  const was = os.getPriority(0);
  try {
    os.setPriority(0, -10);
  } catch {
    // not allowed: the figures say how much was offered
  }
  try {
    return fn();
  } finally {
    os.setPriority(0, was);
  }
}

interface PacedResult {
  gen: { frames: number; seconds: number };
  delivered: number;
  lateness: LatenessBucket[];
  /** exact on a fresh line, else the top of the highest bucket the phase added to */
  maxNs: number | undefined;
  lateDropped: number;
  /** the thread's scheduling during the phase: runnable but kept from a CPU, and how often */
  threadWaitMs: number;
  threadPreemptions: number;
}

/** Paced live frames through `dl`; lateness of this phase only (the line may have a past). */
async function pacedPhase(dl: DelayLine, bench: Collection, prog: Program, ifindex: number, seconds: number): Promise<PacedResult> {
  const before: DelayLineStats = dl.stats();
  const timesBefore = delayLineThreadTimes();
  const sunk = sinkCount(bench);
  // Calls of 10 frames (~40 µs of work each) on the schedule: the machine is shared, and single
  // frames would make the generator, not the line, the limit.
  const gen = favoured(() => generate(prog, ifindex, seconds, 10, PACED_PPS));
  await new Promise((r) => setTimeout(r, DELAY_MS * 3 + 50));
  const after = dl.stats();
  const timesAfter = delayLineThreadTimes();
  const lateness = latenessSince(before.lateness, after.lateness);
  return {
    gen,
    delivered: sinkCount(bench) - sunk,
    lateness,
    // A fresh line's own maximum is exact; after an earlier phase only the buckets tell.
    maxNs: before.lateness.length === 0 ? after.latenessMaxNs || undefined : lateness.at(-1)?.highNs,
    lateDropped: after.lateDropped - before.lateDropped,
    threadWaitMs: Math.round((timesAfter.wait - timesBefore.wait) * 1e4) / 10,
    threadPreemptions: timesAfter.involuntarySwitches - timesBefore.involuntarySwitches,
  };
}

async function main(): Promise<void> {
  const twoCpus = os.cpus().length >= 2;
  const genCpu = twoCpus ? cpuOption('gen-cpu', 0) : -1;
  const lineCpu = twoCpus ? cpuOption('line-cpu', 1) : -1;
  // The main thread only (threads started later inherit it; the line pins its own).
  const pinGenerator = (cpus: string) => execFileSync('taskset', ['-pc', cpus, String(process.pid)], { stdio: 'ignore' });
  const allCpus = `0-${os.cpus().length - 1}`;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const pinDir = testPinDir('dlbench');
  const undo: (() => unknown)[] = []; // each awaited: a delay line's close() resolves when its sockets are gone
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
    // bench_bridge attached somewhere (idle0 receives nothing): BPF_PROG_RUN with repeat > 1 of a
    // program attached nowhere adds it to the kernel's XDP dispatcher and takes it out again,
    // ~25 ms per call, which would understate the baseline.
    const bridgePin = path.join(pinDir, 'bridge');
    bench.program('bench_bridge').pin(bridgePin);
    ns.exec('ip', ['link', 'set', 'dev', 'idle0', 'xdpdrv', 'pinned', bridgePin]);
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
    if (genCpu >= 0) pinGenerator(String(genCpu));
    const baseGen = favoured(() => generate(bench.program('bench_bridge'), ifA, SECONDS, REPEAT));
    await sleep(50);
    const basePps = (sinkCount(bench) - before) / baseGen.seconds;

    // 2. The delay line at 10 ms, offered more than it can take.
    note(`delay line ${DELAY_MS} ms, ${SECONDS} s of live frames offered at ${OFFERED_PPS ?? 'full speed'} pps`);
    // maxLateMs 5: after the overload phase the line sheds what is more than 5 ms stale (the
    // default, 100, would let the recovery phase start up to 100 ms behind).
    const transmit = SOCKET_ONLY ? undefined : { program: line.program('dl_redirect'), slots: line.map(DELAY_TX_MAPS.slots), control: line.map(DELAY_TX_MAPS.control) };
    const lineOptions = { xskMap: line.map('dl_xsks'), ports: [portA, portB], frames: 1 << 15, seed: 1, maxLateMs: 5, params: { delayMs: DELAY_MS }, ...(transmit ? { transmit } : {}) };
    let dl = new DelayLine({ ...lineOptions, ...(lineCpu >= 0 ? { cpu: lineCpu } : {}) });
    undo.push(() => dl.close());
    before = sinkCount(bench);
    const timesBefore = delayLineThreadTimes();
    const dlGen = favoured(() => generate(line.program('dl_redirect'), ifA, SECONDS, REPEAT, OFFERED_PPS));
    const timesAfter = delayLineThreadTimes(); // the generator's time, not the drain's
    const dlCpu = timesAfter.cpu - timesBefore.cpu;
    await sleep(DELAY_MS * 3 + 50);
    const dlDelivered = sinkCount(bench) - before;
    const dlStats = dl.stats();

    // 3. Recovery: the same line, paced, right after the overload. The generator may use any CPU
    // again (a paced generator needs little, and must not wait behind the line's spinning).
    if (genCpu >= 0) pinGenerator(allCpus);
    await sleep(RECOVERY_PAUSE_MS);
    note(`the same line, paced ${PACED_PPS} pps after the overload`);
    const recovery = await pacedPhase(dl, bench, line.program('dl_redirect'), ifA, Math.min(SECONDS, 1));
    await dl.close(); // before a fresh line binds the same queues

    // 4. Lateness at a paced 100 kpps on a fresh line, after the machine settled. Unpinned (the
    // generator is too, so the thread inherits every CPU), as the agent runs it: a woken
    // real-time thread takes whichever CPU is free first.
    await sleep(SETTLE_MS);
    note(`fresh delay line ${DELAY_MS} ms, paced ${PACED_PPS} pps`);
    dl = new DelayLine(lineOptions);
    const paced = await pacedPhase(dl, bench, line.program('dl_redirect'), ifA, SECONDS);
    await dl.close();

    const us = (ns?: number) => (ns === undefined ? null : Math.round(ns / 10) / 100);
    const dlPps = dlDelivered / dlGen.seconds;
    const latenessOf = (p: PacedResult) => ({
      delayMs: DELAY_MS,
      offeredPps: Math.round(p.gen.frames / p.gen.seconds),
      delivered: p.delivered,
      offered: p.gen.frames,
      p50Us: us(latenessQuantileNs(p.lateness, 0.5)),
      p99Us: us(latenessQuantileNs(p.lateness, 0.99)),
      maxUs: us(p.maxNs),
      lateDropped: p.lateDropped,
      threadWaitMs: p.threadWaitMs,
      threadPreemptions: p.threadPreemptions,
      note: 'p50/p99 are bucket upper bounds (8 buckets per power of two)',
    });
    process.stdout.write(
      JSON.stringify(
        {
          bench: 'delay-line',
          frameBytes: 64,
          cpus: numPossibleCpus(),
          loadAverage1m: Math.round(os.loadavg()[0]! * 100) / 100,
          seconds: SECONDS,
          generatorCpu: genCpu, // bridge and throughput phases; the paced phases use any CPU
          devmapBridge: { offeredPps: Math.round(baseGen.frames / baseGen.seconds), deliveredPps: Math.round(basePps) },
          delayLine: {
            delayMs: DELAY_MS,
            offeredPps: Math.round(dlGen.frames / dlGen.seconds),
            generator: { framesPerCall: REPEAT, pacedPps: OFFERED_PPS ?? null },
            deliveredPps: Math.round(dlPps),
            received: dlStats.received,
            transmitted: dlStats.transmitted,
            overflow: dlStats.overflow,
            lateDropped: dlStats.lateDropped,
            kernelRxRingFull: dlStats.kernel.rxRingFull,
            kernel: dlStats.kernel,
            realtime: dlStats.realtime,
            cpu: dlStats.cpu,
            txBudget: dlStats.txBudget,
            transmitter: dlStats.live ? 'xdp' : 'socket',
            liveCalls: dlStats.liveCalls,
            liveTransmitted: dlStats.liveTransmitted,
            liveErrno: dlStats.liveErrno,
            // The machine is shared: how much CPU the thread got, and what it did per CPU-second.
            threadCpuShare: Math.round((dlCpu / dlGen.seconds) * 100) / 100,
            // ... how long it was runnable but kept from its CPU, and how often it slept / was preempted.
            threadWaitShare: Math.round(((timesAfter.wait - timesBefore.wait) / dlGen.seconds) * 100) / 100,
            threadSleeps: timesAfter.voluntarySwitches - timesBefore.voluntarySwitches,
            threadPreemptions: timesAfter.involuntarySwitches - timesBefore.involuntarySwitches,
            deliveredPerThreadCpuSecond: dlCpu > 0 ? Math.round(dlDelivered / dlCpu) : null,
          },
          lateness: latenessOf(paced),
          latenessAfterOverload: { ...latenessOf(recovery), pauseMs: RECOVERY_PAUSE_MS },
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
        await undo.pop()!();
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
