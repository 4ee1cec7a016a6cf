// test-unit: needs no root and no kernel (make test-unit).
// The in-process bus (the embedded default) keeps NATS's subject semantics: the shared contract
// (contract.ts), the subject rules, and drain delivering what is on its way.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MemoryBus, SUBJECTS, checkToken, nodeNameOf, subjectMatches, type Bus } from '../../src/bus';
import { busContract, collect } from './contract';

describe('the in-process bus', () => {
  const buses: Bus[] = [];
  after(async () => {
    for (const b of buses) await b.close();
  });
  busContract(() => {
    const b = new MemoryBus();
    buses.push(b);
    return b;
  });

  it('delivers what was published before drain, then refuses more', async () => {
    const bus = new MemoryBus();
    const c = collect(bus, 'bae.telemetry.>');
    for (let i = 0; i < 100; i++) bus.publish(SUBJECTS.telemetry('n1'), { i });
    await bus.drain();
    assert.equal(c.msgs.length, 100);
    assert.throws(() => bus.publish(SUBJECTS.telemetry('n1'), {}), /closed/);
    assert.equal(bus.state().published, 100);
  });

  it('a handler that throws is counted and logged, and the others still get the message', async () => {
    const bus = new MemoryBus();
    buses.push(bus);
    bus.subscribe('x.y', () => {
      throw new Error('boom');
    });
    bus.subscribe('x.y', async () => {
      throw new Error('async boom');
    });
    const c = collect(bus, 'x.*');
    bus.publish('x.y', 1);
    await c.until(1);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(bus.state().handlerErrors, 2);
  });
});

describe('subjects', () => {
  it('match as in NATS: * one token, > one or more at the end', () => {
    const cases: [string, string, boolean][] = [
      ['bae.events.>', 'bae.events.n1.block', true],
      ['bae.events.>', 'bae.events', false],
      ['bae.events.*', 'bae.events.n1.block', false],
      ['bae.*.n1.*', 'bae.events.n1.block', true],
      ['bae.commands.block', 'bae.commands.block', true],
      ['bae.commands.block', 'bae.commands.blocks', false],
      ['>', 'a', true],
      ['*', 'a.b', false],
    ];
    for (const [p, s, want] of cases) assert.equal(subjectMatches(p, s), want, `${p} ~ ${s}`);
  });

  it('are built from node names that are one token, and refuse others', () => {
    assert.equal(SUBJECTS.event('edge-1', 'block'), 'bae.events.edge-1.block');
    assert.equal(SUBJECTS.policy('edge_2'), 'bae.commands.policy.edge_2');
    assert.throws(() => checkToken('a.b', 'node name'), /bad node name 'a\.b'/);
    assert.throws(() => SUBJECTS.telemetry('*'), /bad node name/);
    assert.equal(nodeNameOf('web-1.example.com'), 'web-1');
    assert.equal(nodeNameOf('we!rd'), 'we_rd');
  });
});
