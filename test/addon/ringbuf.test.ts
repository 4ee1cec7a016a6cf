import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadCollection, RingBuffer, type Collection } from '../../src/datapath';
import { bpfFixture } from '../lib/fixtures';
import { ethFrame } from '../lib/packets';

// struct fixture_event in bpf/test/addon_fixture.bpf.c (checked by collection.test.ts)
const decode = (r: Buffer) => ({ seq: r.readBigUInt64LE(0), pktLen: r.readUInt32LE(8), cpu: r.readUInt16LE(12), marker: r.readUInt8(14) });

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('RingBuffer', () => {
  let coll: Collection;
  before(() => {
    coll = loadCollection(bpfFixture('addon_fixture'));
  });
  after(() => coll?.close());

  test('10k records, one per program run, arrive in order while the event loop keeps ticking', async () => {
    const records: ReturnType<typeof decode>[] = [];
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    const rb = new RingBuffer(coll.map('events'), (r) => records.push(decode(r)));
    try {
      // One call runs the program 10k times on a worker thread; records stream in meanwhile.
      const run = coll.program('xdp_emit').testAsync(ethFrame({ payload: [0x77], length: 70 }), { repeat: 10_000 });
      const ticksBefore = ticks;
      await run;
      await until(() => records.length >= 10_000, 5000);
      assert.ok(ticks > ticksBefore, 'timers ran while records were produced and delivered');
    } finally {
      clearInterval(ticker);
      rb.close();
      rb.close();
    }
    assert.equal(records.length, 10_000);
    const first = records[0]!.seq;
    records.forEach((r, i) => {
      if (r.seq !== first + BigInt(i)) assert.fail(`record ${i} has seq ${r.seq}, expected ${first + BigInt(i)}`);
    });
    assert.ok(records.every((r) => r.pktLen === 70 && r.marker === 0x77));
    assert.equal(rb.delivered, 10_000);
  });

  test("records are emitted as 'record' events without a handler, and consume() drains synchronously", async () => {
    const rb = new RingBuffer(coll.map('events'));
    try {
      const seqs: bigint[] = [];
      rb.on('record', (r: Buffer) => seqs.push(decode(r).seq));
      for (let i = 0; i < 5; i++) coll.program('xdp_emit').test(ethFrame());
      assert.equal(rb.consume(), 5);
      assert.equal(seqs.length, 5);
      assert.deepEqual(seqs, seqs.map((_, i) => seqs[0]! + BigInt(i)));
      coll.program('xdp_emit').test(ethFrame());
      await until(() => seqs.length === 6, 2000);
      assert.equal(seqs.length, 6, 'the poll delivered the record without consume()');
    } finally {
      rb.close();
    }
    assert.throws(() => rb.consume(), { code: 'EBADF' });
  });

  test('a map that is not a ring buffer is refused', () => {
    assert.throws(() => new RingBuffer(coll.map('big')), { code: 'EINVAL', message: /map big is a hash map, not a ringbuf/ });
  });
});
