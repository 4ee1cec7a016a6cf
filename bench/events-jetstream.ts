// Kernel events into JetStream: the bae program run with BPF_PROG_TEST_RUN (repeat) over a UDP
// packet that a policy's `event` action matches, so that each run writes one event into the
// kernel's ring; the agent reads the ring and publishes the events in batches to the stream
// BAE_EVENTS, three times: as deployed by default (live per-event subjects too, and its SQLite
// store), with --no-live-events, and with --no-live-events --no-db (the bus path alone). Runs
// are paced so that the ring never overflows (at most SLACK events made and not yet seen in a
// batch on the bus), and the rate is events stored
// per second, from the first run to the time the stream stored the last batch, none lost: kernel
// ring losses 0, and the events counted in the stream by a reader that is not bae
// (test/lib/event-stream.ts) equal to those made. Baselines in the same run, from this process,
// with events of the same size: a core NATS publish loop; JetStream acknowledged publishes of one
// event per message, pipelined (a stream of its own); the bus's batched publish without a kernel,
// with and without the live per-event subjects (their cost). Target (issue 14): >= 100k events/s.
//
//   node dist/bench/events-jetstream.js [--events N]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, createInbox, headers, type NatsConnection } from 'nats';
import { EVENT_STREAM, NatsBus, SUBJECTS, eventBatchSubject } from '../src/bus';
import { ENUMS, POLICY_MAPS, ifindexOf, openPinnedMap, openProgramById, status, sumPolicyStatsPerCpu } from '../src/datapath';
import { storedEventCount } from '../test/lib/event-stream';
import { startNatsServer } from '../test/lib/nats-server';
import { buildPacket } from '../test/lib/packets';
import { round2, wholeOption } from './lib/args';
import { startBusBench } from './lib/bus-bench';
import { note, printResult } from './lib/lab';

const events = wholeOption('events-jetstream', 'events', 200_000);
const TARGET_PER_S = 100_000;
/** Runs per BPF_PROG_TEST_RUN call. */
const CHUNK = 500;
/**
 * Events generated but not yet seen on the bus, at most: three quarters of what the kernel's ring
 * holds (64-byte records). An event seen on the bus has left the ring, so the ring never holds
 * more than this; the generator runs ahead of the agent by this much, so the rate measured is
 * the agent's throughput, not one round trip per SLACK events.
 */
const SLACK = Math.floor((ENUMS.policy_bounds.POLICY_EVENTS_BYTES / 64) * 0.75);
const SRC = '10.77.0.1';
/** Bound on waiting for the stream to hold everything. */
const STORE_TIMEOUT_MS = 120_000;

const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowMs = () => performance.timeOrigin + performance.now();

/**
 * Waits until the stream's messages on `subject` stop growing (3 looks 100 ms apart) and holds
 * `want` events of `node`; resolves with the events counted and when the last message was stored.
 */
async function untilStored(nc: NatsConnection, url: string, subject: string, node: string, want: number): Promise<{ stored: number; lastMs: number; messages: number }> {
  const jsm = await nc.jetstreamManager();
  const until = Date.now() + STORE_TIMEOUT_MS;
  let last = -1;
  let same = 0;
  for (;;) {
    const info = await jsm.streams.info(EVENT_STREAM, { subjects_filter: subject });
    const n = info.state.subjects?.[subject] ?? 0;
    same = n === last ? same + 1 : 0;
    last = n;
    if (same >= 3 || Date.now() >= until) {
      const count = await storedEventCount(url, node, 'match');
      if (count.events >= want || Date.now() >= until) return { stored: count.events, lastMs: Date.parse(info.state.last_ts), messages: count.messages };
      same = 0;
    }
    await sleep(100);
  }
}

/** One event per stream message, acknowledged, pipelined (at most 10,000 awaiting their ack): what the agent did before batches. */
async function singleEventBaseline(url: string, payload: Uint8Array): Promise<number> {
  const nc = await connect({ servers: url });
  const stream = `BENCH_SINGLE_${process.pid}`;
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: stream, subjects: [`bench.single.${process.pid}`], duplicate_window: 600e9 });
  try {
    const inbox = createInbox();
    let acked = 0;
    let sent = 0;
    let done: () => void = () => {};
    const finished = new Promise<void>((r) => (done = r));
    const pump = () => {
      while (sent < events && sent - acked < 10_000) {
        const h = headers();
        h.set('Nats-Msg-Id', `s-${sent}`);
        nc.publish(`bench.single.${process.pid}`, payload, { reply: `${inbox}.${sent}`, headers: h });
        sent++;
      }
    };
    nc.subscribe(`${inbox}.*`, {
      callback: () => {
        acked++;
        if (acked === events) done();
        else pump();
      },
    });
    const t = nowMs();
    pump();
    await Promise.race([finished, sleep(STORE_TIMEOUT_MS)]);
    const sec = (nowMs() - t) / 1000;
    const info = await jsm.streams.info(stream);
    return info.state.messages / sec;
  } finally {
    await jsm.streams.delete(stream).catch(() => {});
    await nc.close();
  }
}

/** The bus's batched publish from this process (no kernel, no agent): events stored per second. */
async function busBaseline(url: string, checker: NatsConnection, node: string, payload: unknown, liveEvents: boolean): Promise<number> {
  const bus = await NatsBus.open({ url, liveEvents });
  const subject = SUBJECTS.event(node, 'match');
  try {
    const t = nowMs();
    for (let i = 0; i < events; i++) {
      bus.publishEvent(subject, payload);
      if ((i & 1023) === 0) await tick();
    }
    await bus.settle(STORE_TIMEOUT_MS);
    const r = await untilStored(checker, url, eventBatchSubject(node), node, events);
    return r.stored / ((r.lastMs - t) / 1000);
  } finally {
    await bus.close();
  }
}

interface AgentRun {
  stored: number;
  messages: number;
  ringLost: number;
  perS: number;
  /** Bytes of one event's JSON. */
  eventBytes: number;
}

/**
 * `events` kernel events through an agent of its own (nats-server, veth, store) into the stream.
 * The generator is paced by the batches it sees (core NATS, as published): it waits, without
 * spinning (it shares two cores with the agent and the server), until they come within SLACK of
 * the events made.
 */
async function agentRun(liveEvents: boolean, store: boolean): Promise<AgentRun> {
  const dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-bench-db-'));
  const tag = `ej${liveEvents ? 'l' : 'b'}${store ? 's' : 'n'}`;
  const bench = await startBusBench(tag, [...(store ? ['--db', path.join(dbDir, 'bae.db')] : ['--no-db']), ...(liveEvents ? [] : ['--no-live-events'])]);
  try {
    const policy = path.join(bench.runDir, 'event-udp.yaml');
    fs.writeFileSync(policy, `apiVersion: bae/v1\nkind: Policy\nmetadata: { name: event-udp }\nspec:\n  match: { src: ${SRC}/32, proto: udp }\n  actions:\n    - event: {}\n`);
    bench.bae(['policy', 'apply', policy]);
    const program = openProgramById(status({ pinDir: bench.pinDir }).ports[0]!.progId);
    const stats = openPinnedMap(path.join(bench.pinDir, POLICY_MAPS.stats));
    const lost = () => sumPolicyStatsPerCpu(stats.lookupPerCpu(Buffer.alloc(4))!).eventsLost;
    const frame = buildPacket({ ip: { version: 4, src: SRC, dst: '10.77.0.2' }, l4: { proto: 'udp', sport: 40000, dport: 9000, payload: Buffer.alloc(18) } }).frame;
    const ctxIn = { ingressIfindex: ifindexOf(bench.iface) };
    const watcher = await connect({ servers: bench.server.url });
    let seen = 0;
    let eventBytes = 0;
    let wake: { atLeast: number; resolve: () => void } | undefined;
    watcher.subscribe(eventBatchSubject(bench.node), {
      callback: (_err, m) => {
        const batch = JSON.parse(new TextDecoder().decode(m.data)) as { events: { event: unknown }[] };
        seen += batch.events.length;
        eventBytes ||= JSON.stringify(batch.events[0]!.event).length;
        if (wake && seen >= wake.atLeast) {
          wake.resolve();
          wake = undefined;
        }
      },
    });
    const seenAtLeast = (n: number) => (seen >= n ? Promise.resolve() : new Promise<void>((resolve) => (wake = { atLeast: n, resolve })));
    await watcher.flush();
    const lostBefore = lost();
    try {
      note(`${events} kernel events through the agent into JetStream (${liveEvents ? 'with' : 'without'} the live per-event subjects, ${store ? 'with' : 'without'} its store)`);
      const t0 = nowMs();
      let made = 0;
      while (made < events) {
        if (made - seen > SLACK) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([seenAtLeast(made - SLACK), new Promise((r) => (timer = setTimeout(r, 10_000)))]);
          clearTimeout(timer);
        }
        const n = Math.min(CHUNK, events - made);
        program.test(frame, { repeat: n, ctxIn });
        made += n;
      }
      const got = await untilStored(watcher, bench.server.url, eventBatchSubject(bench.node), bench.node, events);
      return { stored: got.stored, messages: got.messages, ringLost: Number(lost() - lostBefore), perS: got.stored / ((got.lastMs - t0) / 1000), eventBytes };
    } finally {
      await watcher.close();
      stats.close();
      program.close();
    }
  } finally {
    await bench.teardown();
    fs.rmSync(dbDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const live = await agentRun(true, true);
  const batchOnly = await agentRun(false, true);
  const bare = await agentRun(false, false);

  // Baselines: the same number of events of the same size, from this process, on a server of their own.
  note('baselines: core NATS, one event per JetStream message, the bus batched with and without live subjects');
  const server = await startNatsServer();
  try {
    const payload = { pad: 'x'.repeat(Math.max(0, live.eventBytes - 10)) };
    const checker = await connect({ servers: server.url });
    const core = await NatsBus.open({ url: server.url });
    let coreSeen = 0;
    checker.subscribe('bench.core', { callback: () => void coreSeen++ });
    await checker.flush();
    const t = nowMs();
    for (let i = 0; i < events; i++) {
      core.publish('bench.core', payload);
      if ((i & 1023) === 0) await tick();
    }
    while (coreSeen < events && nowMs() - t < 60e3) await sleep(5);
    const coreRate = coreSeen / ((nowMs() - t) / 1000);
    await core.close();
    const singleRate = await singleEventBaseline(server.url, new TextEncoder().encode(JSON.stringify(payload)));
    const busLiveRate = await busBaseline(server.url, checker, 'bench-live', payload, true);
    const busBatchOnlyRate = await busBaseline(server.url, checker, 'bench-batch', payload, false);
    await checker.close();

    const ok = (r: AgentRun) => r.stored === events && r.ringLost === 0;
    printResult({
      bench: 'events-jetstream',
      events,
      eventBytes: live.eventBytes,
      agent: {
        withLiveSubjects: { eventsPerS: Math.round(live.perS), stored: live.stored, ringLost: live.ringLost, lost: events - live.stored + live.ringLost, streamMessages: live.messages, eventsPerMessage: round2(live.stored / Math.max(1, live.messages)) },
        batchesOnly: { eventsPerS: Math.round(batchOnly.perS), stored: batchOnly.stored, ringLost: batchOnly.ringLost, lost: events - batchOnly.stored + batchOnly.ringLost, streamMessages: batchOnly.messages, eventsPerMessage: round2(batchOnly.stored / Math.max(1, batchOnly.messages)) },
        batchesOnlyNoStore: { eventsPerS: Math.round(bare.perS), stored: bare.stored, ringLost: bare.ringLost, lost: events - bare.stored + bare.ringLost, streamMessages: bare.messages, eventsPerMessage: round2(bare.stored / Math.max(1, bare.messages)) },
      },
      baselines: {
        coreNatsPublishPerS: Math.round(coreRate),
        jetStreamOneEventPerMessagePerS: Math.round(singleRate),
        busBatchedWithLivePerS: Math.round(busLiveRate),
        busBatchedWithoutLivePerS: Math.round(busBatchOnlyRate),
      },
      ratios: {
        agentBatchesOnlyVsJetStreamOneEventPerMessage: round2(batchOnly.perS / singleRate),
        agentBatchesOnlyVsCoreNats: round2(batchOnly.perS / coreRate),
        agentWithLiveVsBatchesOnly: round2(live.perS / batchOnly.perS),
        agentWithStoreVsWithout: round2(batchOnly.perS / bare.perS),
        busWithLiveVsWithout: round2(busLiveRate / busBatchOnlyRate),
      },
      targetPerS: TARGET_PER_S,
      meetsTarget: { withLiveSubjects: live.perS >= TARGET_PER_S && ok(live), batchesOnly: batchOnly.perS >= TARGET_PER_S && ok(batchOnly), batchesOnlyNoStore: bare.perS >= TARGET_PER_S && ok(bare) },
    });
  } finally {
    await server.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`events-jetstream: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
