import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadCollection, numPossibleCpus, sumPerCpu, XDP_DROP, XDP_PASS, XDP_TX, type Collection } from '../../src/datapath';
import { bpfFixture } from '../lib/fixtures';
import { ethFrame, mac } from '../lib/packets';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

describe('Program.test (BPF_PROG_TEST_RUN)', () => {
  let coll: Collection;
  before(() => {
    coll = loadCollection(bpfFixture('addon_fixture'));
  });
  after(() => coll?.close());

  test('a frame carrying the drop marker is dropped and comes back unchanged', () => {
    const frame = ethFrame({ payload: [0xee, 1, 2, 3] });
    const res = coll.program('xdp_fixture').test(frame);
    assert.equal(res.verdict, XDP_DROP);
    assert.deepEqual(res.data, frame);
  });

  test('any other frame is bounced with its MAC addresses swapped', () => {
    const frame = ethFrame({ dst: '02:00:00:00:00:0b', src: '02:00:00:00:00:0a', payload: [0x11, 0x22] });
    const res = coll.program('xdp_fixture').test(frame);
    assert.equal(res.verdict, XDP_TX);
    assert.deepEqual(res.data.subarray(0, 6), mac('02:00:00:00:00:0a'));
    assert.deepEqual(res.data.subarray(6, 12), mac('02:00:00:00:00:0b'));
    assert.deepEqual(res.data.subarray(12), frame.subarray(12));
  });

  test('a program that grows the frame returns the longer frame', () => {
    const frame = ethFrame({ payload: [0x33], length: 64 });
    const res = coll.program('xdp_grow').test(frame);
    assert.equal(res.verdict, XDP_PASS);
    assert.equal(res.data.length, 64 + 16);
    assert.equal(res.data[0], 0xab);
    assert.deepEqual(res.data.subarray(1, 64), frame.subarray(1));
    assert.deepEqual(res.data.subarray(64), Buffer.alloc(16));
  });

  test('repeat > 1 reports a positive mean duration per run', () => {
    const res = coll.program('xdp_pass').test(ethFrame(), { repeat: 1000 });
    assert.equal(res.verdict, XDP_PASS);
    assert.ok(res.durationNs > 0, `durationNs ${res.durationNs}`);
  });

  test('testAsync runs on a worker and yields the same verdict while the event loop keeps ticking', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      const res = await coll.program('xdp_fixture').testAsync(ethFrame({ payload: [0xee] }), { repeat: 2_000_000 });
      assert.equal(res.verdict, XDP_DROP);
      assert.ok(res.durationNs > 0);
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks > 0, 'the timer never ran while the test run was in progress');
  });

  test('every run increments the per-CPU counter, and the per-CPU values sum to the runs', () => {
    const counters = coll.map('counters');
    counters.update(u32(0), Buffer.alloc(8)); // every CPU to zero
    coll.program('xdp_fixture').test(ethFrame({ payload: [0xee] }), { repeat: 250 });
    coll.program('xdp_fixture').test(ethFrame({ payload: [0x01] }));
    const values = counters.lookupPerCpu(u32(0));
    assert.ok(values);
    assert.equal(values.length, numPossibleCpus());
    assert.equal(sumPerCpu(values), 251n);
  });

  test('ctxIn is passed to the program and a bad ingress ifindex is refused by the kernel', () => {
    const prog = coll.program('xdp_pass');
    assert.equal(prog.test(ethFrame(), { ctxIn: { ingressIfindex: 1 } }).verdict, XDP_PASS); // lo
    assert.throws(() => prog.test(ethFrame(), { ctxIn: { ingressIfindex: 0x7ffffff0 } }), { code: 'ENODEV' });
  });

  test('bad arguments are refused before reaching the kernel', () => {
    const prog = coll.program('xdp_pass');
    assert.throws(() => prog.test(Buffer.alloc(0)), { code: 'EINVAL', message: /packet must be a non-empty Buffer/ });
    assert.throws(() => prog.test(ethFrame(), { repeat: 0 }), { code: 'EINVAL', message: /repeat/ });
    assert.throws(() => prog.test(ethFrame(), { liveFrames: true }), { code: 'EINVAL', message: /ingressIfindex/ });
  });
});
