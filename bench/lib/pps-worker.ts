// Steps of bench/inline-pps.ts that must run inside a lab namespace (interfaces are looked up
// there, and live frames enter through an ifindex of the caller's namespace). Run through
// `nsenter --net=/run/netns/NS -- node pps-worker.js TASK ...`; prints one JSON line.
//
//   attach PINDIR PROGRAM IFACE [PEER]   load bpf/test/bench.bpf.c's object with its maps pinned
//                                         in PINDIR, attach PROGRAM natively to IFACE (and PEER),
//                                         pin the links as PINDIR/link-IFACE; with PEER the
//                                         bench_ports devmap forwards between the two
//   generate IFACE FRAMEHEX SECONDS REPEAT  BPF_PROG_RUN live frames of bench_tx into IFACE
//                                         (XDP_TX: out of IFACE, into its veth peer) until
//                                         SECONDS have passed
import path from 'node:path';
import { attachXdp, loadCollection, resolveIfindex } from '../../src/datapath';
import { REPO } from './lab';

const BENCH_OBJECT = path.join(REPO, 'build/bpf/test/bench.o');

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function attach(pinDir: string, program: string, iface: string, peer?: string): void {
  const coll = loadCollection(BENCH_OBJECT, { pinPath: pinDir });
  try {
    const ports = [iface, ...(peer ? [peer] : [])];
    const ifindexes = ports.map((p) => resolveIfindex(p));
    if (peer) {
      const map = coll.map('bench_ports');
      map.update(u32(ifindexes[0]!), u32(ifindexes[1]!));
      map.update(u32(ifindexes[1]!), u32(ifindexes[0]!));
    }
    for (const [i, name] of ports.entries()) {
      const link = attachXdp({ program: coll.program(program), iface: ifindexes[i]!, mode: 'native' });
      link.pin(path.join(pinDir, `link-${name}`));
      link.close();
    }
    process.stdout.write(JSON.stringify({ attached: ports }) + '\n');
  } finally {
    coll.close();
  }
}

async function generate(iface: string, frameHex: string, seconds: number, repeat: number): Promise<void> {
  const coll = loadCollection(BENCH_OBJECT);
  try {
    const tx = coll.program('bench_tx');
    const frame = Buffer.from(frameHex, 'hex');
    const ingressIfindex = resolveIfindex(iface);
    let sent = 0;
    const t0 = process.hrtime.bigint();
    const until = t0 + BigInt(Math.round(seconds * 1e9));
    // Bounded: at most this many calls even if the clock misbehaves.
    for (let calls = 0; calls < 10_000 && process.hrtime.bigint() < until; calls++) {
      await tx.testAsync(frame, { repeat, liveFrames: true, ctxIn: { ingressIfindex } });
      sent += repeat;
    }
    const elapsedNs = Number(process.hrtime.bigint() - t0);
    process.stdout.write(JSON.stringify({ sent, elapsedNs }) + '\n');
  } finally {
    coll.close();
  }
}

async function main(): Promise<void> {
  const [task, ...args] = process.argv.slice(2);
  if (task === 'attach' && args.length >= 3) attach(args[0]!, args[1]!, args[2]!, args[3]);
  else if (task === 'generate' && args.length === 4) await generate(args[0]!, args[1]!, Number(args[2]), Number(args[3]));
  else throw new Error(`usage: pps-worker attach PINDIR PROGRAM IFACE [PEER] | generate IFACE FRAMEHEX SECONDS REPEAT`);
}

main().catch((err) => {
  process.stderr.write(`pps-worker: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
