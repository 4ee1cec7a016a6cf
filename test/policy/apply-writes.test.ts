// How an apply writes the kernel tables: slices of arrays in one batch each, only the rule slots
// that change, one update per entry where a map type has no batch update, and only after the
// packets on the generation it rewrites are gone (an RCU grace period after the flip).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadCollection, rcuGracePeriod, type Collection } from '../../src/datapath';
import { LAYOUTS, XDP } from '../../src/datapath/layout';
import { POLICY } from '../../src/datapath/policy-layout';
import { applyCompiled, readCtl } from '../../src/policy/apply';
import { compilePolicies } from '../../src/policy/compile';
import { PolicyBae, frame, policies, policyYaml } from './helpers';

const root = path.resolve(__dirname, '../../..');

/** `n` policies without a seed (each rule gets a random one), each dropping TCP to its own port. */
function portPolicies(n: number, changed?: { index: number; dport: number }): string {
  return Array.from({ length: n }, (_, i) =>
    policyYaml(`port-${i}`, `priority: 10\nmatch: { proto: tcp, dport: ${changed?.index === i ? changed.dport : 2000 + i} }\nactions: [drop]`),
  ).join('---\n');
}

const tcpTo = (dport: number) => frame({ ip: { version: 4, src: '10.1.0.1', dst: '10.2.0.1' }, l4: { proto: 'tcp', sport: 40000, dport } });

describe('writing a policy set into the kernel tables', () => {
  let bae: PolicyBae | undefined;
  before(() => {
    bae = new PolicyBae();
  });
  after(() => bae?.close());

  it('rewrites only the rule slot of the one policy that changed', async () => {
    const b = bae!;
    const n = 40;
    const size = b.maps.rules.valueSize;
    const idAt = LAYOUTS.policy_rule!.fields.id!.offset;
    await b.apply(policies(portPolicies(n)));
    await b.apply(policies(portPolicies(n)));
    // The generation the next apply writes holds the first apply's rules (and random seeds).
    const gen = (await b.apply(policies(portPolicies(n)))).gen ^ 1;
    const before = Buffer.from(b.maps.rules.lookupRange(gen * POLICY.maxRules, n).values);
    const changedSet = policies(portPolicies(n, { index: 7, dport: 3007 }));
    const result = await b.apply(changedSet);
    assert.equal(result.gen, gen);
    assert.ok(result.written.includes('rules'));
    const afterWrite = b.maps.rules.lookupRange(gen * POLICY.maxRules, n).values;
    const changedSlots: number[] = [];
    for (let slot = 0; slot < n; slot++) {
      if (!before.subarray(slot * size, (slot + 1) * size).equals(afterWrite.subarray(slot * size, (slot + 1) * size))) changedSlots.push(slot);
    }
    assert.equal(changedSlots.length, 1, `one slot rewritten, got ${changedSlots.join(', ')}`);
    const newId = changedSet.find((p) => p.name === 'port-7')!.id;
    assert.equal(afterWrite.readUInt32LE(changedSlots[0]! * size + idAt), newId);
    // The kernel uses the rewritten slot: the old port passes, the new one drops.
    assert.equal(b.run(tcpTo(2007)), XDP.pass);
    assert.equal(b.run(tcpTo(3007)), XDP.drop);
    assert.equal(b.run(tcpTo(2008)), XDP.drop);
  });

  it('rewrites every slot whose policy moved to another slot', async () => {
    const b = bae!;
    // A higher priority policy first: every other policy moves one slot down.
    const set = policies(policyYaml('first', 'priority: 99\nmatch: { proto: udp, dport: 53 }\nactions: [drop]') + '---\n' + portPolicies(10));
    const result = await b.apply(set);
    const size = b.maps.rules.valueSize;
    const held = b.maps.rules.lookupRange(result.gen * POLICY.maxRules, 11).values;
    const idAt = LAYOUTS.policy_rule!.fields.id!.offset;
    const ids = Array.from({ length: 11 }, (_, slot) => held.readUInt32LE(slot * size + idAt));
    assert.deepEqual(ids.slice(1).sort(), set.filter((p) => p.name !== 'first').map((p) => p.id).sort());
    assert.equal(ids[0], set.find((p) => p.name === 'first')!.id);
    assert.equal(b.run(tcpTo(2003)), XDP.drop);
  });
});

describe('flat batch reads and writes of a map', () => {
  let coll: Collection | undefined;
  before(() => {
    coll = loadCollection(path.join(root, 'build/bpf/test/addon_fixture.o'));
  });
  after(() => coll?.close());

  it('reads a slice of an array map and writes entries given as two flat buffers', () => {
    const m = coll!.map('last_event');
    const keys = Buffer.alloc(4 * Math.min(3, m.maxEntries));
    const n = keys.length / 4;
    const values = Buffer.alloc(n * m.valueSize);
    for (let i = 0; i < n; i++) {
      keys.writeUInt32LE(i, 4 * i);
      values.fill(0x10 + i, i * m.valueSize, (i + 1) * m.valueSize);
    }
    m.updateBatchFlat(keys, values);
    const read = m.lookupRange(0, n);
    assert.equal(read.count, n);
    assert.deepEqual(read.keys, keys);
    assert.deepEqual(read.values, values);
    if (m.maxEntries > 1) assert.deepEqual(m.lookupRange(1, n - 1).values, values.subarray(m.valueSize));
  });

  it('writes one entry at a time where the map type has no batch update (devmap_hash)', () => {
    const m = coll!.map('ports');
    const keys = Buffer.alloc(8);
    keys.writeUInt32LE(3, 0);
    keys.writeUInt32LE(4, 4);
    const values = Buffer.alloc(2 * m.valueSize);
    values.writeUInt32LE(1, 0); // lo
    values.writeUInt32LE(1, m.valueSize);
    m.updateBatchFlat(keys, values);
    assert.deepEqual(m.lookupBatch().keys.map((k) => k.readUInt32LE(0)).sort(), [3, 4]);
  });

  it('refuses buffers whose sizes do not match the map and writes nothing', () => {
    const m = coll!.map('counters');
    const before = m.lookupRange(0, m.maxEntries);
    assert.throws(() => m.updateBatchFlat(Buffer.alloc(4), Buffer.alloc(3)), /updateBatchFlat.*needs n keys of 4 bytes/);
    assert.throws(() => coll!.map('big').lookupRange(0, 1), /lookupRange reads array maps/);
    assert.throws(() => m.lookupRange(m.maxEntries, 1), /first \+ count <=/);
    assert.deepEqual(m.lookupRange(0, m.maxEntries), before);
  });
});

describe('waiting for packets still on the generation an apply rewrites', () => {
  let bae: PolicyBae | undefined;
  before(() => {
    bae = new PolicyBae();
  });
  after(() => bae?.close());

  it('gets an RCU grace period from the kernel without blocking the event loop', async () => {
    let turns = 0;
    const timer = setInterval(() => turns++, 0);
    try {
      const t0 = performance.now();
      await rcuGracePeriod();
      const ms = performance.now() - t0;
      // synchronize_rcu() lasts at least a jiffy or so; the loop ran meanwhile.
      assert.ok(ms >= 0.5, `took ${ms.toFixed(3)} ms`);
      assert.ok(turns > 0, 'the event loop ran during the wait');
    } finally {
      clearInterval(timer);
    }
  });

  it('rewrites a generation only after a grace period that began after the flip that left it', async () => {
    const b = bae!;
    const events: string[] = [];
    const releases: (() => void)[] = [];
    // A grace period that ends when the test says so, and notes the generation active when it began.
    const grace = () => {
      events.push(`grace began on gen ${readCtl(b.maps).gen}`);
      return new Promise<void>((resolve) => releases.push(resolve));
    };
    const apply = (set: string) => applyCompiled(b.maps, compilePolicies(policies(set), { requireKernelActions: true }), { grace });
    const first = await apply(portPolicies(3));
    assert.deepEqual(events, [`grace began on gen ${first.gen}`], 'the first apply had nothing to wait for and started a wait after its flip');
    const pending = apply(portPolicies(3, { index: 1, dport: 3001 }));
    let done = false;
    void pending.then(() => (done = true));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(done, false, 'the second apply waits for the grace period the first one started');
    assert.equal(readCtl(b.maps).gen, first.gen, 'nothing flipped meanwhile');
    assert.equal(b.run(tcpTo(2001)), XDP.drop);
    assert.equal(events.length, 1, 'it waits for that one, not a new one');
    releases[0]!();
    const second = await pending;
    assert.equal(second.gen, first.gen ^ 1);
    assert.equal(b.run(tcpTo(3001)), XDP.drop);
    assert.equal(b.run(tcpTo(2001)), XDP.pass);
    releases.forEach((r) => r());
  });
});
