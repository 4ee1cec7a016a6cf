// What every Bus does, whichever it is (src/bus/bus.ts): run by memory.test.ts on the in-process
// bus and by nats.test.ts on NATS, so that the embedded default behaves as NATS does.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { BusError, type Bus, type BusMessage } from '../../src/bus';

/** Collects messages of `pattern` until `n` arrived (or the bounded wait ends). */
export function collect(bus: Bus, pattern: string): { msgs: BusMessage[]; until(n: number, ms?: number): Promise<BusMessage[]>; stop(): void } {
  const msgs: BusMessage[] = [];
  const waiters: (() => void)[] = [];
  const sub = bus.subscribe(pattern, (m) => {
    msgs.push(m);
    waiters.splice(0).forEach((w) => w());
  });
  return {
    msgs,
    stop: () => sub.unsubscribe(),
    until: async (n, ms = 3000) => {
      const deadline = Date.now() + ms;
      while (msgs.length < n && Date.now() < deadline) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, Math.max(1, deadline - Date.now()));
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
      return msgs;
    },
  };
}

export function busContract(open: () => Bus): void {
  it('delivers a publish to every subscription whose pattern matches, wildcards included, in order', async () => {
    const bus = open();
    const exact = collect(bus, 'bae.events.n1.block');
    const star = collect(bus, 'bae.events.*.block');
    const tail = collect(bus, 'bae.events.>');
    const other = collect(bus, 'bae.telemetry.*');
    await bus.flush();
    for (let i = 0; i < 5; i++) bus.publish('bae.events.n1.block', { i, big: 1n << 60n });
    bus.publish('bae.events.n2.fire', { i: 99 });
    await bus.flush();
    assert.deepEqual((await exact.until(5)).map((m) => (m.json() as { i: number }).i), [0, 1, 2, 3, 4]);
    assert.equal((await star.until(5)).length, 5);
    assert.deepEqual((await tail.until(6)).map((m) => m.subject), [...Array(5).fill('bae.events.n1.block'), 'bae.events.n2.fire']);
    // 64-bit values travel as decimal strings (src/json.ts).
    assert.equal((exact.msgs[0]!.json() as { big: string }).big, String(1n << 60n));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(other.msgs.length, 0, 'no telemetry was published');
    assert.equal(tail.msgs.length, 6, 'nothing arrives twice');
    [exact, star, tail, other].forEach((c) => c.stop());
  });

  it('stops delivering after unsubscribe', async () => {
    const bus = open();
    const c = collect(bus, 'bae.commands.block');
    await bus.flush();
    bus.publish('bae.commands.block', { n: 1 });
    await c.until(1);
    c.stop();
    bus.publish('bae.commands.block', { n: 2 });
    await bus.flush();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(c.msgs.length, 1);
  });

  it('answers a request through reply, and says so when nobody answers or the answer is late', async () => {
    const bus = open();
    const sub = bus.subscribe('bae.commands.policy.*', (m) => {
      const node = m.subject.split('.').pop();
      if (node === 'slow') return; // never answers
      m.respond({ node, echo: m.json() });
    });
    await bus.flush();
    const reply = await bus.request('bae.commands.policy.n1', { files: 1 }, { timeoutMs: 2000 });
    assert.deepEqual(reply.json(), { node: 'n1', echo: { files: 1 } });

    const t0 = Date.now();
    await assert.rejects(bus.request('bae.commands.policy.slow', {}, { timeoutMs: 200 }), (err: unknown) => {
      assert.ok(err instanceof BusError);
      assert.equal(err.code, 'BAE_BUS');
      assert.match(err.message, /no reply on bae\.commands\.policy\.slow within 200 ms/);
      return true;
    });
    assert.ok(Date.now() - t0 < 2000, `the timeout is kept (${Date.now() - t0} ms)`);
    sub.unsubscribe();
    await bus.flush();
    await assert.rejects(bus.request('bae.telemetry.none', {}, { timeoutMs: 1000 }), /no one answers on bae\.telemetry\.none/);
  });

  it('collects the answers of every responder within the timeout (requestMany), none when nobody answers', async () => {
    const bus = open();
    const subs = ['a', 'b'].map((node) => bus.subscribe('bae.commands.policy._all', (m) => m.respond({ node })));
    await bus.flush();
    const t0 = Date.now();
    const got = await bus.requestMany('bae.commands.policy._all', { x: 1 }, { timeoutMs: 300 });
    assert.deepEqual(got.map((m) => (m.json() as { node: string }).node).sort(), ['a', 'b']);
    assert.ok(Date.now() - t0 >= 250, 'it waits the timeout for more answers');
    const first = await bus.requestMany('bae.commands.policy._all', {}, { timeoutMs: 2000, max: 1 });
    assert.equal(first.length, 1, 'max ends the wait');
    subs.forEach((s) => s.unsubscribe());
    await bus.flush();
    assert.deepEqual(await bus.requestMany('bae.commands.policy._all', {}, { timeoutMs: 100 }), []);
  });

  it('refuses bad subjects with a BAE_BUS error naming them, and publishes nothing', async () => {
    const bus = open();
    const all = collect(bus, '>');
    await bus.flush();
    for (const bad of ['', 'bae..x', 'bae.*', 'bae.>', 'has space']) {
      assert.throws(() => bus.publish(bad, {}), (err: unknown) => err instanceof BusError && err.message.includes(`'${bad}'`));
    }
    assert.throws(() => bus.subscribe('bae.>.x', () => {}), /bad subscription 'bae\.>\.x'/);
    await bus.flush();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(all.msgs.filter((m) => !m.subject.startsWith('_INBOX') && !m.subject.startsWith('$JS')).length, 0);
    all.stop();
  });
}
