// Kernel events into JetStream: the bae program run with BPF_PROG_TEST_RUN (repeat) over a UDP
// packet that a policy's `event` action matches, so that each run writes one event into the
// kernel's ring; the agent reads the ring and publishes each to the stream BAE_EVENTS. Runs are
// paced so that the ring never overflows (at most SLACK events not yet seen on the bus), and the
// rate is events stored (acknowledged by the stream, counted there) per second from the first run
// to the last one stored, none lost (kernel ring losses and stream count checked). Baselines in
// the same run, from this process: a core NATS publish loop and the bus's own JetStream publish
// of the same events (NatsBus.publishEvent, no kernel). Target (issue 14): >= 100k events/s.
//
//   node dist/bench/events-jetstream.js [--events N]
import fs from 'node:fs';
import path from 'node:path';
import { connect } from 'nats';
import { EVENT_STREAM, NatsBus, SUBJECTS } from '../src/bus';
import { POLICY_MAPS, ifindexOf, openPinnedMap, openProgramById, status, sumPolicyStatsPerCpu } from '../src/datapath';
import { buildPacket } from '../test/lib/packets';
import { round2, wholeOption } from './lib/args';
import { startBusBench } from './lib/bus-bench';
import { note, printResult } from './lib/lab';

const events = wholeOption('events-jetstream', 'events', 200_000);
const TARGET_PER_S = 100_000;
/** Runs per BPF_PROG_TEST_RUN call. */
const CHUNK = 500;
/** Events generated but not yet seen on the bus, at most: the ring (256 KiB) holds about 4000. */
const SLACK = 1500;
const SRC = '10.77.0.1';

const tick = () => new Promise<void>((r) => setImmediate(r));

async function storedOn(url: string, subject: string): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    const info = await (await nc.jetstreamManager()).streams.info(EVENT_STREAM, { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  } finally {
    await nc.close();
  }
}

async function untilStored(url: string, subject: string, n: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const got = await storedOn(url, subject);
    if (got >= n || Date.now() >= until) return got;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<void> {
  const bench = await startBusBench('ej');
  try {
    const policy = path.join(bench.runDir, 'event-udp.yaml');
    fs.writeFileSync(policy, `apiVersion: bae/v1\nkind: Policy\nmetadata: { name: event-udp }\nspec:\n  match: { src: ${SRC}/32, proto: udp }\n  actions:\n    - event: {}\n`);
    bench.bae(['policy', 'apply', policy]);
    const program = openProgramById(status({ pinDir: bench.pinDir }).ports[0]!.progId);
    const stats = openPinnedMap(path.join(bench.pinDir, POLICY_MAPS.stats));
    const lost = () => sumPolicyStatsPerCpu(stats.lookupPerCpu(Buffer.alloc(4))!).eventsLost;
    const frame = buildPacket({ ip: { version: 4, src: SRC, dst: '10.77.0.2' }, l4: { proto: 'udp', sport: 40000, dport: 9000, payload: Buffer.alloc(18) } }).frame;
    const ctxIn = { ingressIfindex: ifindexOf(bench.iface) };
    const subject = SUBJECTS.event(bench.node, 'match');
    const watcher = await NatsBus.open({ url: bench.server.url });
    let seen = 0;
    let sampleBytes = 0;
    watcher.subscribe(subject, (m) => {
      seen++;
      sampleBytes ||= m.data.length;
    });
    await watcher.flush();
    const lostBefore = lost();
    try {
      note(`${events} kernel events through the agent into JetStream`);
      const t0 = process.hrtime.bigint();
      let made = 0;
      while (made < events) {
        while (made - seen > SLACK) await tick();
        const n = Math.min(CHUNK, events - made);
        program.test(frame, { repeat: n, ctxIn });
        made += n;
      }
      const stored = await untilStored(bench.server.url, subject, events, 120_000);
      const agentSec = Number(process.hrtime.bigint() - t0) / 1e9;
      const ringLost = Number(lost() - lostBefore);

      // Baselines: the same number of events of the same size, from this process.
      const payload = { pad: 'x'.repeat(Math.max(0, sampleBytes - 12)) };
      const core = await NatsBus.open({ url: bench.server.url });
      let coreSeen = 0;
      watcher.subscribe('bench.core', () => void coreSeen++);
      await watcher.flush();
      let t = process.hrtime.bigint();
      for (let i = 0; i < events; i++) {
        core.publish('bench.core', payload);
        if ((i & 1023) === 0) await tick();
      }
      while (coreSeen < events && Number(process.hrtime.bigint() - t) < 60e9) await new Promise((r) => setTimeout(r, 5));
      const coreSec = Number(process.hrtime.bigint() - t) / 1e9;
      await core.close();

      const js = await NatsBus.open({ url: bench.server.url });
      const baseSubject = SUBJECTS.event('bench-base', 'match');
      t = process.hrtime.bigint();
      for (let i = 0; i < events; i++) {
        js.publishEvent(baseSubject, payload);
        if ((i & 1023) === 0) await tick();
      }
      await js.settle(120_000);
      const jsStored = await untilStored(bench.server.url, baseSubject, events, 60_000);
      const jsSec = Number(process.hrtime.bigint() - t) / 1e9;
      await js.close();

      const agentRate = stored / agentSec;
      const jsRate = jsStored / jsSec;
      const coreRate = coreSeen / coreSec;
      printResult({
        bench: 'events-jetstream',
        events,
        eventBytes: sampleBytes,
        stored,
        ringLost,
        lost: events - stored + ringLost,
        agentEventsPerS: Math.round(agentRate),
        baselineJetStreamPublishPerS: Math.round(jsRate),
        baselineCoreNatsPublishPerS: Math.round(coreRate),
        ratios: { agentVsJetStreamPublish: round2(agentRate / jsRate), agentVsCoreNats: round2(agentRate / coreRate) },
        targetPerS: TARGET_PER_S,
        meetsTarget: agentRate >= TARGET_PER_S && stored === events && ringLost === 0,
      });
    } finally {
      await watcher.close();
      stats.close();
      program.close();
    }
  } finally {
    await bench.teardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`events-jetstream: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
