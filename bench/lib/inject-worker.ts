// The injection side of bench/inject-rate.ts, run inside the lab's bae namespace (the port's
// ifindex and live frames belong to the caller's namespace). Prints one JSON line.
//
//   repeat IFACE FRAMEHEX COUNT     COUNT copies of one frame through bae's sender (sendFrames at
//                                   its highest rate: batches of rate x 10 ms)
//   distinct IFACE FRAMEHEX COUNT   COUNT different frames (a counter in the last 4 bytes), one
//                                   BPF_PROG_TEST_RUN call each, as forged segments go out
import { resolveIfindex } from '../../src/datapath';
import { INJECT_MAX_RATE, Injector, sendFrames, type OutFrame } from '../../src/reconstruct';

async function main(): Promise<void> {
  const [task, iface, frameHex, countText] = process.argv.slice(2);
  const count = Number(countText);
  if (!iface || !frameHex || !Number.isInteger(count) || count < 1 || (task !== 'repeat' && task !== 'distinct')) {
    throw new Error('usage: inject-worker repeat|distinct IFACE FRAMEHEX COUNT');
  }
  const ifindex = resolveIfindex(iface);
  const frame = Buffer.from(frameHex, 'hex');
  const base = { kind: 'injected' as const, policy: null, action: 'inject', reason: 'bench' };
  let frames: OutFrame[];
  if (task === 'repeat') {
    frames = [{ ...base, data: frame, repeat: count }];
  } else {
    frames = Array.from({ length: count }, (_, i) => {
      const f = Buffer.from(frame);
      f.writeUInt32BE(i, f.length - 4);
      return { ...base, data: f };
    });
  }
  const injector = new Injector();
  try {
    const r = await sendFrames(injector, frames, { ifindex, rate: INJECT_MAX_RATE });
    process.stdout.write(JSON.stringify({ sent: r.frames, calls: r.calls, elapsedNs: Number(r.elapsedNs) }) + '\n');
  } finally {
    injector.close();
  }
}

main().catch((err) => {
  process.stderr.write(`inject-worker: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
