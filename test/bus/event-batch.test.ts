// Events into the stream in batches (src/bus/event-batch.ts, event-publisher.ts), against a real
// nats-server: the documented format (read here by a reader that is not bae), a lone event that
// goes out at once, a burst cut into batches by count and bytes, the live per-event subjects on
// and off, readers that unpack (storedEvents, readEvents with a node filter and `max`), and an
// event stream made by an earlier bae (one event per message on bae.events.>) updated in place.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from 'nats';
import { EVENT_STREAM, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, NatsBus, SUBJECTS, unpackStoredMessage } from '../../src/bus';
import { toJson } from '../../src/json';
import { viewJson } from '../../src/agent/bus-bridge';
import { storedEventCount } from '../lib/event-stream';
import { natsServerAvailable, startNatsServer, type NatsServer } from '../lib/nats-server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    assert.ok(Date.now() < end, `${what} within ${timeoutMs} ms`);
    await sleep(5);
  }
}

describe('the event batch format', () => {
  it('unpacks a batch into events with their live subjects, and refuses another version naming the subject', () => {
    const data = Buffer.from('{"v":1,"node":"n1","events":[{"kind":"match","event":{"a":1}},{"kind":"block","event":{"b":"2"}}]}');
    assert.deepEqual(unpackStoredMessage('bae.eventbatch.n1', data), [
      { subject: 'bae.events.n1.match', value: { a: 1 } },
      { subject: 'bae.events.n1.block', value: { b: '2' } },
    ]);
    assert.deepEqual(unpackStoredMessage('bae.events.n1.fire', Buffer.from('{"x":1}')), [{ subject: 'bae.events.n1.fire', value: { x: 1 } }]);
    assert.throws(() => unpackStoredMessage('bae.eventbatch.n1', Buffer.from('{"v":2,"node":"n1","events":[]}')), /bae\.eventbatch\.n1 is not an event batch of version 1 \(v: 2\)/);
    assert.throws(() => unpackStoredMessage('bae.eventbatch.n1', Buffer.from('{"v":1,')), /bae\.eventbatch\.n1 is not JSON/);
  });

  it("writes the agent's event view exactly as toJson does", () => {
    const views = [
      { kind: 'match', policy: 'event-udp', policyId: 7, scope: 'source', src: '10.0.0.1', dst: '2001:db8::1', value: 60n, timeNs: 18446744073709551615n, time: '2026-12-07T04:00:00.000Z' },
      { kind: 'kind-9', policy: 'a "quoted" \\ naïve name', policyId: 0, scope: '7', src: '', dst: '', value: 0n, timeNs: 1n, time: '2026-12-07T04:00:00.001Z' },
    ];
    for (const v of views) assert.equal(viewJson(v), toJson(v));
  });
});

describe('events into the stream in batches', { skip: !natsServerAvailable() && process.env.CI !== 'true' && 'nats-server is not installed (under CI=true the tests run and fail)' }, () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('sends a lone event at once, in a batch of one that a reader without bae reads as documented', async () => {
    const bus = await NatsBus.open({ url: server.url });
    try {
      await bus.flush();
      const t0 = performance.now();
      bus.publishEvent(SUBJECTS.event('lone', 'block'), { big: 1n << 60n, name: 'ünïcode' });
      await until('the lone event stored', () => bus.state().eventsStored === 1, 5000);
      const ms = performance.now() - t0;
      // One acknowledged round trip on loopback, no linger to wait out (measured 1-10 ms loaded).
      assert.ok(ms < 1000, `stored after ${ms.toFixed(1)} ms`);
      assert.equal(bus.state().eventBatchesStored, 1);
      const [e] = await bus.storedEvents({ filter: 'bae.events.lone.>', max: 10 });
      assert.deepEqual(e?.value, { big: '1152921504606846976', name: 'ünïcode' });
      assert.equal(e?.subject, 'bae.events.lone.block');
      assert.deepEqual(await storedEventCount(server.url, 'lone', 'block'), { events: 1, messages: 1 });
    } finally {
      await bus.close();
    }
  });

  it('cuts a burst into batches bounded by count and bytes, each event stored once and in order', async () => {
    const bus = await NatsBus.open({ url: server.url });
    const n = 20_000;
    try {
      const raw = await connect({ servers: server.url });
      const sizes: { count: number; bytes: number }[] = [];
      raw.subscribe('bae.eventbatch.burst', { callback: (_e, m) => sizes.push({ count: (JSON.parse(new TextDecoder().decode(m.data)) as { events: unknown[] }).events.length, bytes: m.data.length }) });
      await raw.flush();
      // Small events: the count bounds a batch; then large ones: the bytes do.
      for (let i = 0; i < n / 2; i++) bus.publishEvent(SUBJECTS.event('burst', 'match'), { i });
      for (let i = n / 2; i < n; i++) bus.publishEvent(SUBJECTS.event('burst', 'match'), { i, pad: 'x'.repeat(500) });
      assert.equal(await bus.settle(30_000), true, JSON.stringify(bus.state()));
      await raw.flush();
      await raw.close();
      const st = bus.state();
      assert.equal(st.eventsStored, n);
      assert.equal(st.eventRetries, 0);
      assert.ok(sizes.every((s) => s.count <= MAX_BATCH_EVENTS), `at most ${MAX_BATCH_EVENTS} events a batch: ${Math.max(...sizes.map((s) => s.count))}`);
      assert.ok(sizes.every((s) => s.bytes <= MAX_BATCH_BYTES + 1024), `about ${MAX_BATCH_BYTES} bytes a batch at most: ${Math.max(...sizes.map((s) => s.bytes))}`);
      assert.ok(sizes.some((s) => s.count === MAX_BATCH_EVENTS), 'small events fill batches by count');
      assert.ok(st.eventBatchesStored >= n / 2 / MAX_BATCH_EVENTS + (n / 2 * 510) / MAX_BATCH_BYTES - 1 && st.eventBatchesStored < n / 20, `${st.eventBatchesStored} batches for ${n} events`);
      assert.deepEqual(await storedEventCount(server.url, 'burst', 'match'), { events: n, messages: st.eventBatchesStored });
      // In order, each once: what bae's reader unpacks.
      const seen: number[] = [];
      await bus.readEvents({ filter: 'bae.events.burst.match' }, (e) => void seen.push((e.value as { i: number }).i));
      assert.deepEqual(seen, Array.from({ length: n }, (_, i) => i));
      // `max` counts events, also inside a batch.
      let some = 0;
      assert.equal(await bus.readEvents({ filter: 'bae.events.burst.>', max: 1500 }, () => void some++), 1500);
      assert.equal(some, 1500);
    } finally {
      await bus.close();
    }
  });

  it('publishes each event live on its own subject unless told not to; the stream gets batches either way', async () => {
    for (const liveEvents of [true, false]) {
      const node = liveEvents ? 'live-on' : 'live-off';
      const bus = await NatsBus.open({ url: server.url, liveEvents });
      const watcher = await NatsBus.open({ url: server.url });
      try {
        let live = 0;
        watcher.subscribe(`bae.events.${node}.>`, () => void live++);
        await watcher.flush();
        for (let i = 0; i < 100; i++) bus.publishEvent(SUBJECTS.event(node, 'fire'), { i });
        assert.equal(await bus.settle(10_000), true);
        await bus.flush();
        await watcher.flush();
        await sleep(100);
        assert.equal(live, liveEvents ? 100 : 0, `live events with liveEvents ${liveEvents}`);
        assert.equal((await storedEventCount(server.url, node, 'fire')).events, 100);
      } finally {
        await watcher.close();
        await bus.close();
      }
    }
  });

  it('refuses a subject that is not an event subject, naming it, and changes nothing', async () => {
    const bus = await NatsBus.open({ url: server.url });
    try {
      assert.throws(() => bus.publishEvent('bae.telemetry.n1', {}), /bae\.telemetry\.n1 is not an event subject/);
      assert.equal(bus.state().eventsBuffered + bus.state().eventsInFlight, 0);
    } finally {
      await bus.close();
    }
  });
});

describe('an event stream made by an earlier bae', { skip: !natsServerAvailable() && process.env.CI !== 'true' && 'nats-server is not installed (under CI=true the tests run and fail)' }, () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('is updated to store batches; its single-event messages stay readable', async () => {
    const nc = await connect({ servers: server.url });
    try {
      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({ name: EVENT_STREAM, subjects: ['bae.events.>'] });
      const js = nc.jetstream();
      await js.publish('bae.events.old.block', new TextEncoder().encode('{"old":1}'));
      const bus = await NatsBus.open({ url: server.url });
      try {
        assert.deepEqual((await jsm.streams.info(EVENT_STREAM)).config.subjects, ['bae.eventbatch.>']);
        bus.publishEvent(SUBJECTS.event('new', 'block'), { new: 1 });
        assert.equal(await bus.settle(10_000), true);
        const all = await bus.storedEvents({ max: 10 });
        assert.deepEqual(all.map((e) => [e.subject, e.value]), [['bae.events.old.block', { old: 1 }], ['bae.events.new.block', { new: 1 }]]);
        // The live subjects are no longer stored.
        assert.equal((await jsm.streams.info(EVENT_STREAM)).state.messages, 2);
      } finally {
        await bus.close();
      }
    } finally {
      await nc.close();
    }
  });
});
