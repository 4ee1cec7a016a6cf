// test-unit: needs no root and no kernel (make test-unit).
// The lookup tables user space builds for the policy stage: the IPv4 direct tables (prefix4.ts)
// and the cuckoo combination table (combo-table.ts), against plain models. In the kernel:
// lookup-tables-kernel.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { POLICY } from '../../src/datapath/policy-layout';
import { buildComboTable, comboLookup } from '../../src/policy/combo-table';
import type { CompiledCombo, CompiledPrefix } from '../../src/policy/compiled-set';
import { maskAddress, prefixContainsAddress } from '../../src/policy/net';
import { buildV4Table, v4Lookup } from '../../src/policy/prefix4';
import { rng } from '../lib/rng';

const addr4 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);

/** The class of the longest prefix that holds the address, 0 for none: what the table must give. */
function longestMatch(prefixes: CompiledPrefix[], addr: Uint8Array): number {
  let best: CompiledPrefix | undefined;
  for (const e of prefixes) if (prefixContainsAddress(e.prefix, 4, addr) && (!best || e.prefix.len > best.prefix.len)) best = e;
  return best?.cls ?? 0;
}

describe('the IPv4 direct tables', () => {
  it('give every address the class of the longest prefix that holds it, at every length from /0 to /32', () => {
    const next = rng(7).u32;
    const prefixes: CompiledPrefix[] = [];
    const seen = new Set<string>();
    // Nested families of prefixes: a few roots, each refined at random lengths below it.
    while (prefixes.length < 600) {
      const root = prefixes.length && next() % 3 ? prefixes[next() % prefixes.length]! : undefined;
      const len = root ? Math.min(32, root.prefix.len + 1 + (next() % 12)) : next() % 33;
      const bits = root ? (Buffer.from(root.prefix.addr).readUInt32BE(0) | (next() & (0xffffffff >>> root.prefix.len))) >>> 0 : next();
      const addr = maskAddress(addr4(bits), len);
      const key = `${addr.join('.')}/${len}`;
      if (seen.has(key)) continue;
      seen.add(key);
      prefixes.push({ prefix: { family: 4, addr, len }, cls: prefixes.length + 1 });
    }
    const table = buildV4Table(prefixes);
    assert.ok(table, 'the table fits its region');
    assert.ok(table.chunks.length <= POLICY.v4Region);
    // Addresses at and around every prefix's edges, and random ones.
    const probes: number[] = [];
    for (const e of prefixes) {
      const lo = Buffer.from(e.prefix.addr).readUInt32BE(0);
      const hi = (lo + (e.prefix.len === 0 ? 0xffffffff : (0xffffffff >>> e.prefix.len))) >>> 0;
      probes.push(lo, hi, (lo - 1) >>> 0, (hi + 1) >>> 0);
    }
    for (let i = 0; i < 5000; i++) probes.push(next());
    for (const n of probes) assert.equal(v4Lookup(table, addr4(n)), longestMatch(prefixes, addr4(n)), `address ${addr4(n).join('.')}`);
  });

  it('report that they do not fit when the prefixes need more chunks than a region has', () => {
    // Each /16 with a /24 and a /32 inside needs two chunks below the /16 level.
    const prefixes: CompiledPrefix[] = [];
    for (let i = 0; i < 400; i++) {
      prefixes.push({ prefix: { family: 4, addr: Uint8Array.of(10 + (i >> 8), i & 255, 5, 0), len: 24 }, cls: 2 * i + 1 });
      prefixes.push({ prefix: { family: 4, addr: Uint8Array.of(10 + (i >> 8), i & 255, 5, 7), len: 32 }, cls: 2 * i + 2 });
    }
    assert.equal(buildV4Table(prefixes), undefined);
    assert.ok(buildV4Table(prefixes.slice(0, 600)), '300 such /16s fit');
  });
});

describe('the combination table', () => {
  const combo = (i: number): CompiledCombo => ({ proto: 6, srcClass: i % 9973, dstClass: (i * 31) % 17, sportClass: 0, dportClass: i % 50, slots: [i % 16384] });

  it('finds every combination it holds within two buckets, and none it does not', () => {
    for (const n of [1, 100, 10_000, POLICY.maxCombos]) {
      const keys = new Map<string, CompiledCombo>();
      for (let i = 0; keys.size < n; i++) {
        const c = combo(i * 7919 + (i >> 3));
        keys.set(`${c.srcClass}/${c.dstClass}/${c.dportClass}`, c);
      }
      const list = [...keys.values()];
      const table = buildComboTable(list);
      assert.ok(table, `${n} combinations fit`);
      assert.equal(table.slots.size, n);
      assert.ok((table.mask + 1) * POLICY.comboWays <= POLICY.comboSlots);
      for (const c of list) assert.equal(comboLookup(table, c), c);
      for (let i = 0; i < 2000; i++) {
        const absent: CompiledCombo = { ...combo(i), dportClass: 60000 + i };
        assert.equal(comboLookup(table, absent), undefined);
      }
    }
  });

  it('is built the same way every time for the same combinations', () => {
    const list = Array.from({ length: 500 }, (_, i) => combo(i));
    const a = buildComboTable(list)!;
    const b = buildComboTable(list)!;
    assert.equal(a.seed, b.seed);
    assert.deepEqual([...a.slots.keys()], [...b.slots.keys()]);
  });
});
