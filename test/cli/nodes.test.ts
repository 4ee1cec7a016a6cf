// test-unit: needs no root and no kernel (make test-unit).
// `bae nodes` decides who is live from the newest heartbeat of each node: younger than 3 of its
// periods and not a stop; one line per node however many of its heartbeats the read returned.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { viewNodes } from '../../src/cli/nodes';

const beat = (node: string, atMs: number, o: { intervalMs?: number; state?: 'running' | 'stopped' } = {}) => ({
  time: new Date(atMs).toISOString(),
  value: { node, host: 'h', pid: 1, time: new Date(atMs).toISOString(), intervalMs: o.intervalMs ?? 2000, state: o.state ?? 'running', mode: 'ingress', ifaces: ['eth0'], pinDir: '/sys/fs/bpf/bae', generation: 1, uptimeMs: 5, bus: { kind: 'nats', connected: true, server: null, buffered: 0, inFlight: 0, dropped: 0, rttMs: null } },
});

describe('bae nodes', () => {
  it('a node is live within 3 periods of its last heartbeat, and not after, nor once it said it stopped', () => {
    const now = 1_000_000;
    const v = viewNodes([beat('fresh', now - 5999), beat('late', now - 6001), beat('slow', now - 20_000, { intervalMs: 10_000 }), beat('gone', now - 100, { state: 'stopped' })], now);
    assert.deepEqual(v.map((n) => [n.node, n.live]), [['fresh', true], ['slow', true], ['gone', false], ['late', false]]);
  });

  it('keeps the newest heartbeat of a node read twice, and skips what is not a heartbeat', () => {
    const now = 1_000_000;
    const v = viewNodes([beat('a', now - 10_000), beat('a', now - 100, { state: 'stopped' }), { time: new Date(now).toISOString(), value: { hello: 1 } }], now);
    assert.deepEqual(v.map((n) => [n.node, n.state, n.ageMs]), [['a', 'stopped', 100]]);
  });
});
