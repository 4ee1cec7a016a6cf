// test-unit: needs no root and no kernel (make test-unit).
// The live view's list of nodes follows the heartbeats on the bus (here the in-process bus, with a
// clock of the test's): live within 3 periods, silent after, stopped when the last one says so,
// the newest heartbeat of a node kept, anything else on the subject ignored, the count bounded.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBus, SUBJECTS, type Heartbeat } from '../../src/bus';
import { FleetWatch, MAX_FLEET_NODES } from '../../src/web';

const beat = (node: string, o: Partial<Heartbeat> = {}): Heartbeat => ({
  node, host: 'h', pid: 1, time: '2026-12-07T00:00:00Z', intervalMs: 1000, state: 'running', mode: 'inline', ifaces: ['a', 'b'], pinDir: '/p', generation: 2, blocks: 0, uptimeMs: 1,
  bus: { kind: 'memory', connected: true, server: null, buffered: 0, inFlight: 0, dropped: 0, lagMs: 0, rttMs: null }, ...o,
});
const tick = () => new Promise((r) => setImmediate(r));

describe('the live view\'s nodes', () => {
  it('live within 3 periods of the last heartbeat, silent after, stopped when it said so; standalone on the in-process bus', async () => {
    const bus = new MemoryBus();
    let now = 1_000_000;
    const fleet = new FleetWatch(bus, () => now);
    try {
      await fleet.ready;
      assert.deepEqual(fleet.view(), { bus: 'memory', url: null, standalone: true, nodes: [] });
      bus.publish(SUBJECTS.heartbeat('a'), beat('a', { blocks: 3 }));
      bus.publish(SUBJECTS.heartbeat('b'), beat('b'));
      bus.publish(SUBJECTS.heartbeat('c'), { hello: 'not a heartbeat' });
      await tick();
      now += 3000;
      assert.deepEqual(fleet.view().nodes.map((n) => [n.node, n.live, n.ageMs, n.blocks]), [['a', true, 3000, 3], ['b', true, 3000, 0]]);
      now += 1;
      bus.publish(SUBJECTS.heartbeat('b'), beat('b', { generation: 3 }));
      await tick();
      assert.deepEqual(fleet.view().nodes.map((n) => [n.node, n.live, n.generation]), [['b', true, 3], ['a', false, 2]], 'a is silent past 3 periods; b has its newest heartbeat');
      bus.publish(SUBJECTS.heartbeat('b'), beat('b', { state: 'stopped' }));
      await tick();
      assert.deepEqual(fleet.view().nodes.map((n) => [n.node, n.live, n.state]), [['a', false, 'running'], ['b', false, 'stopped']]);
    } finally {
      fleet.close();
      await bus.close();
    }
  });

  it(`keeps at most ${MAX_FLEET_NODES} nodes, dropping the longest silent`, async () => {
    const bus = new MemoryBus();
    const fleet = new FleetWatch(bus);
    try {
      for (let i = 0; i <= MAX_FLEET_NODES; i++) bus.publish(SUBJECTS.heartbeat(`n${i}`), beat(`n${i}`));
      await tick();
      const names = fleet.view().nodes.map((n) => n.node);
      assert.equal(names.length, MAX_FLEET_NODES);
      assert.ok(!names.includes('n0') && names.includes(`n${MAX_FLEET_NODES}`));
    } finally {
      fleet.close();
      await bus.close();
    }
  });
});
