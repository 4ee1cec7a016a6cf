import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { loadCollection, numPossibleCpus, sumPerCpu, type BpfMap, type Collection } from '../../src/datapath';
import { bpfFixture } from '../lib/fixtures';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: number | bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};

describe('BpfMap', () => {
  let coll: Collection;
  let big: BpfMap;
  before(() => {
    coll = loadCollection(bpfFixture('addon_fixture'));
    big = coll.map('big');
  });
  after(() => coll?.close());
  beforeEach(() => big.clear());

  test('describes itself from the kernel', () => {
    assert.equal(big.name, 'big');
    assert.equal(big.type, 'hash');
    assert.equal(big.keySize, 4);
    assert.equal(big.valueSize, 8);
    assert.equal(big.maxEntries, 131072);
    assert.equal(big.isPerCpu, false);
    assert.ok(big.fd > 0);
    assert.ok(big.id > 0);
    assert.equal(coll.map('counters').type, 'percpu_array');
    assert.equal(coll.map('counters').isPerCpu, true);
  });

  test('update, lookup and delete round-trip; a missing key is undefined', () => {
    assert.equal(big.lookup(u32(7)), undefined);
    big.update(u32(7), u64(700));
    assert.deepEqual(big.lookup(u32(7)), u64(700));
    big.update(u32(7), u64(701));
    assert.deepEqual(big.lookup(u32(7)), u64(701));
    assert.equal(big.delete(u32(7)), true);
    assert.equal(big.delete(u32(7)), false);
    assert.equal(big.lookup(u32(7)), undefined);
  });

  test("'noexist' on a present key fails with EEXIST and 'exist' on an absent key with ENOENT, changing nothing", () => {
    big.update(u32(1), u64(10), 'noexist');
    assert.throws(() => big.update(u32(1), u64(11), 'noexist'), (err: Error & { code?: string; errno?: number }) => {
      assert.equal(err.name, 'BpfError');
      assert.equal(err.code, 'EEXIST');
      assert.equal(err.errno, 17);
      assert.equal(err.message, 'bpf_map_update_elem(big): File exists');
      return true;
    });
    assert.deepEqual(big.lookup(u32(1)), u64(10));
    assert.throws(() => big.update(u32(2), u64(20), 'exist'), { code: 'ENOENT', message: 'bpf_map_update_elem(big): No such file or directory' });
    assert.equal(big.lookup(u32(2)), undefined);
    big.update(u32(1), u64(12), 'exist');
    assert.deepEqual(big.lookup(u32(1)), u64(12));
  });

  test('a full hash map refuses a new key with E2BIG', () => {
    const sized = coll.map('sized');
    sized.clear();
    for (let i = 0; i < sized.maxEntries; i++) sized.update(u32(i), u32(i));
    assert.throws(() => sized.update(u32(1000), u32(0)), { code: 'E2BIG' });
    sized.clear();
  });

  test('keys and entries walk every entry once, also while the walk deletes them', () => {
    for (let i = 0; i < 500; i++) big.update(u32(i), u64(i * 3));
    const seen = new Map<number, bigint>();
    for (const [k, v] of big.entries()) seen.set(k.readUInt32LE(), (v as Buffer).readBigUInt64LE());
    assert.equal(seen.size, 500);
    for (const [k, v] of seen) assert.equal(v, BigInt(k * 3));
    let drained = 0;
    for (const k of big.keys()) {
      assert.equal(big.delete(k), true);
      drained++;
    }
    assert.equal(drained, 500);
    assert.equal([...big.keys()].length, 0);
  });

  test('batch update, lookup and delete handle 100k entries with the values intact', () => {
    const n = 100_000;
    const keys = Array.from({ length: n }, (_, i) => u32(i * 7 + 1));
    const values = keys.map((_, i) => u64(BigInt(i) * 1_000_003n));
    big.updateBatch(keys, values);
    const got = big.lookupBatch();
    assert.equal(got.keys.length, n);
    const byKey = new Map<number, bigint>();
    got.keys.forEach((k, i) => byKey.set(k.readUInt32LE(), got.values[i]!.readBigUInt64LE()));
    assert.equal(byKey.size, n);
    for (let i = 0; i < n; i += 997) assert.equal(byKey.get(i * 7 + 1), BigInt(i) * 1_000_003n);
    let mismatches = 0;
    for (let i = 0; i < n; i++) if (byKey.get(i * 7 + 1) !== BigInt(i) * 1_000_003n) mismatches++;
    assert.equal(mismatches, 0);
    // Small chunks exercise the batch token across many calls.
    assert.equal(big.lookupBatch({ chunk: 1000 }).keys.length, n);
    const half = keys.filter((_, i) => i % 2 === 0);
    assert.equal(big.deleteBatch(half), n / 2);
    assert.equal(big.lookupBatch().keys.length, n / 2);
    // Absent keys are skipped, not fatal.
    assert.equal(big.deleteBatch([...half.slice(0, 10), keys[1]!]), 1);
    big.clear();
    assert.equal(big.lookupBatch().keys.length, 0);
  });

  test('array maps: batch lookup returns every slot and clear zeroes them', () => {
    const arr = coll.map('last_event');
    arr.update(u32(3), Buffer.alloc(16, 0x5a));
    const all = arr.lookupBatch();
    assert.equal(all.keys.length, 8);
    assert.deepEqual(all.values[3], Buffer.alloc(16, 0x5a));
    arr.clear();
    assert.deepEqual(arr.lookup(u32(3)), Buffer.alloc(16));
  });

  test('lookupBatch walks the keys of a map the kernel has no batch lookup for (devmap_hash)', () => {
    const ports = coll.map('ports');
    assert.equal(ports.type, 'devmap_hash');
    for (let i = 1; i <= 12; i++) ports.update(u32(i * 10), u32(1)); // every slot points at lo
    const all = ports.lookupBatch();
    assert.deepEqual(all.keys.map((k) => k.readUInt32LE()).sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => (i + 1) * 10));
    assert.ok(all.values.every((v) => v.readUInt32LE() === 1));
    ports.clear();
    assert.equal(ports.lookupBatch().keys.length, 0);
  });

  test('an LPM trie round-trips prefixes through batch lookup and clear', () => {
    const trie = coll.map('prefixes');
    assert.equal(trie.type, 'lpm_trie');
    const key = (len: number, a: number, b: number) => Buffer.from([len, 0, 0, 0, 10, a, b, 0]);
    for (let i = 0; i < 20; i++) trie.update(key(24, i, i + 1), u32(i + 100));
    const all = trie.lookupBatch();
    assert.equal(all.keys.length, 20);
    const got = new Map(all.keys.map((k, i) => [k.readUInt8(5), all.values[i]!.readUInt32LE()]));
    for (let i = 0; i < 20; i++) assert.equal(got.get(i), i + 100);
    trie.clear();
    assert.equal(trie.lookupBatch().keys.length, 0);
  });

  test('per-CPU values: distinct values per CPU read back in order, and sum', () => {
    const ncpu = numPossibleCpus();
    assert.ok(ncpu >= 1);
    for (const name of ['counters', 'pcpu_hash']) {
      const m = coll.map(name);
      const values = Array.from({ length: ncpu }, (_, cpu) => u64(1000 + cpu * 11));
      m.update(u32(2), values);
      const back = m.lookupPerCpu(u32(2));
      assert.ok(back, name);
      assert.deepEqual(back, values, name);
      assert.equal(sumPerCpu(back), BigInt(ncpu * 1000 + (11 * ncpu * (ncpu - 1)) / 2), name);
      const batch = m.lookupBatch();
      assert.ok(batch.keys.some((k) => k.readUInt32LE() === 2), name);
    }
    assert.equal(coll.map('pcpu_hash').lookupPerCpu(u32(99)), undefined);
  });

  test('bad keys, values and flags get a one-line error naming the map and change nothing', () => {
    big.update(u32(5), u64(5));
    assert.throws(() => big.update(Buffer.alloc(3), u64(1)), { code: 'EINVAL', message: 'update(big): key must be a 4-byte Buffer, got 3 bytes' });
    assert.throws(() => big.update(u32(5), Buffer.alloc(4)), { code: 'EINVAL', message: /value must be a 8-byte Buffer, got 4 bytes/ });
    assert.throws(() => big.update(u32(5), u64(6), 'bogus' as 'any'), { code: 'EINVAL', message: /flag must be/ });
    assert.throws(() => big.lookupPerCpu(u32(5)), { code: 'EINVAL', message: /not a per-CPU map/ });
    assert.throws(() => coll.map('counters').lookup(u32(0)), { code: 'EINVAL', message: /per-CPU map/ });
    assert.throws(() => coll.map('counters').update(u32(0), [u64(1)]), { code: 'EINVAL', message: /one per possible CPU/ });
    assert.deepEqual(big.lookup(u32(5)), u64(5));
  });

  test('a closed map refuses operations with EBADF and closing twice is harmless', () => {
    const c = loadCollection(bpfFixture('addon_fixture'));
    const m = c.map('big');
    m.close();
    m.close();
    assert.equal(m.fd, -1);
    assert.throws(() => m.lookup(u32(1)), { code: 'EBADF', message: /closed/ });
    c.close();
    c.close();
    assert.throws(() => c.map('sized').update(u32(1), u32(1)), { code: 'EBADF' });
  });
});
