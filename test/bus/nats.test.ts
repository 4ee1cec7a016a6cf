// The bus over a real nats-server (spawned for this file on a free loopback port with JetStream
// and a store directory of its own, killed after): the shared contract (contract.ts), events kept
// by JetStream for a consumer that was not running, and a dead or silent server refused within a
// bounded time with a BAE_BUS error that names its URL.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { BusError, EVENT_STREAM, NatsBus, SUBJECTS, checkNatsUrl, openBus, type Bus } from '../../src/bus';
import { freePort, natsServerAvailable, startNatsServer, type NatsServer } from '../lib/nats-server';
import { busContract } from './contract';

describe('the bus over NATS', { skip: !natsServerAvailable() && process.env.CI !== 'true' && 'nats-server is not installed (under CI=true the tests run and fail)' }, () => {
  let server: NatsServer;
  const buses: Bus[] = [];
  before(async () => {
    server = await startNatsServer();
  });
  after(async () => {
    for (const b of buses) await b.close();
    await server?.stop();
  });
  const open = async () => {
    const b = await NatsBus.open({ url: server.url, connectTimeoutMs: 3000 });
    buses.push(b);
    return b;
  };

  describe('follows the contract', () => {
    // One connection for the contract's tests (opened before they run).
    let bus: Bus;
    before(async () => {
      bus = await open();
    });
    busContract(() => bus);
  });

  it('a second connection gets what the first publishes (a real server between them)', async () => {
    const a = await open();
    const b = await open();
    const got: unknown[] = [];
    b.subscribe(SUBJECTS.block, (m) => void got.push(m.json()));
    await b.flush();
    a.publish(SUBJECTS.block, { command_id: 'x' });
    await a.flush();
    for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(got, [{ command_id: 'x' }]);
  });

  it('keeps an event published while no consumer ran, and a consumer started later gets it', async () => {
    const publisher = await open();
    for (let i = 0; i < 3; i++) publisher.publishEvent(SUBJECTS.event('away', 'block'), { n: i });
    publisher.publish(SUBJECTS.telemetry('away'), { not: 'an event' });
    await publisher.drain();
    // A new connection, a consumer made now.
    const consumer = (await open()) as NatsBus;
    const events = await consumer.storedEvents({ filter: 'bae.events.away.>', max: 10, waitMs: 1000 });
    assert.deepEqual(events.map((e) => e.value), [{ n: 0 }, { n: 1 }, { n: 2 }]);
    assert.ok(events.every((e) => e.subject === 'bae.events.away.block'));
    assert.ok(events[0]!.seq >= 1);
    assert.equal(consumer.state().jetstream, true);
    // The stream is on file storage: it outlives the server process.
    await server.kill();
    await server.start();
    const again = (await open()) as NatsBus;
    const kept = await again.storedEvents({ filter: 'bae.events.away.>', max: 10, waitMs: 1000 });
    assert.equal(kept.length, 3, `the stream ${EVENT_STREAM} kept its events over a server restart`);
  });

  it('a server that refuses connections gives a BAE_BUS error naming its URL, within the bound', async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const t0 = Date.now();
    await assert.rejects(openBus({ url, connectTimeoutMs: 1500 }), (err: unknown) => {
      assert.ok(err instanceof BusError, String(err));
      assert.equal(err.code, 'BAE_BUS');
      assert.equal(err.exitCode, 1);
      assert.ok(err.message.includes(url), err.message);
      assert.match(err.message, /connection refused/);
      return true;
    });
    assert.ok(Date.now() - t0 < 3000, `refused within 3 s (${Date.now() - t0} ms)`);
  });

  it('a server that accepts but never speaks gives a BAE_BUS timeout naming its URL, within the bound', async () => {
    const accepted: net.Socket[] = [];
    const silent = net.createServer((sock) => void accepted.push(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const url = `nats://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const t0 = Date.now();
    try {
      await assert.rejects(openBus({ url, connectTimeoutMs: 1000 }), (err: unknown) => {
        assert.ok(err instanceof BusError, String(err));
        assert.ok(err.message.includes(url), err.message);
        return true;
      });
      const took = Date.now() - t0;
      assert.ok(took >= 900 && took < 3000, `gave up after the 1000 ms bound (${took} ms)`);
    } finally {
      accepted.forEach((sock) => sock.destroy());
      silent.close();
    }
  });

  it('refuses a malformed URL as usage, and hides a password in messages', async () => {
    assert.throws(() => checkNatsUrl('http://x:1'), (e: unknown) => (e as { code: string }).code === 'BAE_USAGE');
    const port = await freePort();
    await assert.rejects(openBus({ url: `nats://bob:secret@127.0.0.1:${port}`, connectTimeoutMs: 1000 }), (err: unknown) => {
      assert.ok(!(err as Error).message.includes('secret'), (err as Error).message);
      return true;
    });
  });
});
