// Events published while the NATS server is down (a real nats-server, killed and started again on
// its port and store): the bus holds them in memory without blocking the publisher, counts those
// beyond its buffer, and delivers the rest once the server is back — the stream then holds
// exactly what was published, none twice (events in flight at the kill are retried with their
// message id, which the stream de-duplicates).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NatsBus, SUBJECTS } from '../../src/bus';
import { storedEventCount } from '../lib/event-stream';
import { natsServerAvailable, startNatsServer, type NatsServer } from '../lib/nats-server';

/** How many events of `node` the event stream holds (in its batches). */
async function storedOn(url: string, node: string): Promise<number> {
  return (await storedEventCount(url, node, 'match')).events;
}

/** Waits (bounded: 10 s) until the bus has noticed that its server is gone. */
async function disconnected(bus: NatsBus): Promise<void> {
  for (let i = 0; i < 200 && bus.state().connected; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(bus.state().connected, false, 'the bus noticed the server is gone');
}

describe('events while NATS is down', { skip: !natsServerAvailable() && process.env.CI !== 'true' && 'nats-server is not installed (under CI=true the tests run and fail)' }, () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('holds 120k events over a server restart without blocking, and the stream then has each exactly once', async () => {
    const bus = await NatsBus.open({ url: server.url, eventBuffer: 150_000 });
    const subject = SUBJECTS.event('outage', 'match');
    try {
      for (let i = 0; i < 5000; i++) bus.publishEvent(subject, { i });
      // Killed with events in flight (not yet acknowledged).
      await server.kill();
      await disconnected(bus);
      const t0 = process.hrtime.bigint();
      for (let i = 5000; i < 125_000; i++) bus.publishEvent(subject, { i });
      const msPublish = Number(process.hrtime.bigint() - t0) / 1e6;
      const during = bus.state();
      assert.equal(during.eventsDropped, 0);
      assert.ok(during.eventsBuffered >= 120_000, JSON.stringify(during));
      // 120k publishes without a server: never waiting on it (measured 0.3-1.5 s on a loaded machine).
      assert.ok(msPublish < 15_000, `${msPublish.toFixed(0)} ms for 120k publishes while down`);
      await server.start();
      assert.equal(await bus.settle(60_000), true, `delivered after the restart: ${JSON.stringify(bus.state())}`);
      assert.equal(await storedOn(server.url, 'outage'), 125_000);
      // In batches: far fewer stream messages than events.
      const st0 = bus.state();
      assert.ok(st0.eventBatchesStored > 0 && st0.eventBatchesStored <= 125_000 / 10, `${st0.eventBatchesStored} batches for 125,000 events`);
      const st = bus.state();
      assert.ok(st.eventsStored >= 125_000, JSON.stringify(st));
      assert.equal(st.eventsDropped, 0);
    } finally {
      await bus.close();
    }
  });

  it('drains at once while the server is away (a stop during an outage does not hang)', async () => {
    const bus = await NatsBus.open({ url: server.url });
    await server.kill();
    await disconnected(bus);
    bus.publishEvent(SUBJECTS.event('stop', 'match'), { i: 0 });
    const t0 = Date.now();
    await bus.drain();
    assert.ok(Date.now() - t0 < 3000, `drained in ${Date.now() - t0} ms`);
    await server.start();
  });

  it('counts the events beyond its buffer and delivers exactly the ones it held', async () => {
    const bus = await NatsBus.open({ url: server.url, eventBuffer: 1000 });
    const subject = SUBJECTS.event('small', 'match');
    try {
      await bus.flush();
      await server.kill();
      await disconnected(bus);
      for (let i = 0; i < 1500; i++) bus.publishEvent(subject, { i });
      assert.equal(bus.state().eventsDropped, 500);
      assert.equal(bus.state().eventsBuffered, 1000);
      await server.start();
      assert.equal(await bus.settle(30_000), true, JSON.stringify(bus.state()));
      assert.equal(await storedOn(server.url, 'small'), 1000);
    } finally {
      await bus.close();
    }
  });
});
