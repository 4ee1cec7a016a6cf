import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, test } from 'node:test';
import { loadCollection, openPinnedMap, openPinnedProgram, XDP_DROP } from '../../src/datapath';
import { runNodeChild } from '../lib/child';
import { bpfFixture, testPinDir } from '../lib/fixtures';
import { ethFrame } from '../lib/packets';

const u32 = (n: number) => Buffer.from(Uint32Array.of(n).buffer);
const u64 = (n: number) => Buffer.from(BigUint64Array.of(BigInt(n)).buffer);

describe('pinning', () => {
  const dir = testPinDir('pin');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('maps pinned by loadCollection are seen with the same values by a second process, and unpinning leaves nothing', async (t) => {
    using coll = loadCollection(bpfFixture('addon_fixture'), { pinPath: dir });
    t.after(() => coll.unpinMaps()); // also when an assertion below fails
    const pinned = fs.readdirSync(dir).sort();
    assert.deepEqual(pinned, ['big', 'counters', 'events', 'last_event', 'pcpu_hash', 'ports', 'prefixes', 'sized']);
    const big = coll.map('big');
    for (let i = 1; i <= 50; i++) big.update(u32(i), u64(i * i));
    coll.map('counters').update(u32(1), Array.from({ length: coll.map('counters').lookupPerCpu(u32(1))!.length }, (_, cpu) => u64(cpu + 5)));

    const seen = await runNodeChild<{ entries: [number, string][]; id: number; perCpu: string[]; type: string }>(`
      const big = dp.openPinnedMap(${JSON.stringify(`${dir}/big`)});
      const entries = [...big.entries()].map(([k, v]) => [k.readUInt32LE(), v.readBigUInt64LE().toString()]).sort((x, y) => x[0] - y[0]);
      big.update(Buffer.from(Uint32Array.of(999).buffer), Buffer.from(BigUint64Array.of(4242n).buffer));
      const counters = dp.openPinnedMap(${JSON.stringify(`${dir}/counters`)});
      const perCpu = counters.lookupPerCpu(Buffer.from(Uint32Array.of(1).buffer)).map((v) => v.readBigUInt64LE().toString());
      const out = { entries, id: big.id, perCpu, type: counters.type };
      big.close(); counters.close();
      return out;
    `, { label: 'reader of the pinned maps' });
    assert.equal(seen.id, big.id, 'the second process opened the same map');
    assert.equal(seen.entries.length, 50);
    for (const [k, v] of seen.entries) assert.equal(v, String(k * k));
    assert.equal(seen.type, 'percpu_array');
    assert.deepEqual(seen.perCpu, seen.perCpu.map((_, cpu) => String(cpu + 5)));
    assert.deepEqual(big.lookup(u32(999)), u64(4242), 'a write of the second process is visible here');

    // Loading again without reusePinned refuses to clobber the pins; with it, the contents survive.
    assert.throws(() => loadCollection(bpfFixture('addon_fixture'), { pinPath: dir }), { code: 'EEXIST', message: /already pinned at .*reusePinned/ });
    {
      using again = loadCollection(bpfFixture('addon_fixture'), { pinPath: dir, reusePinned: true });
      assert.equal(again.map('big').id, big.id);
      assert.deepEqual(again.map('big').lookup(u32(7)), u64(49));
      assert.equal(again.map('ports').id, coll.map('ports').id, 'a devmap is reused too (the kernel adds BPF_F_RDONLY_PROG to it)');
    }
    assert.throws(() => loadCollection(bpfFixture('addon_fixture'), { pinPath: dir, reusePinned: true, maxEntries: { sized: 99 } }), {
      code: 'EINVAL',
      message: `reusePinned(sized): the map pinned at ${dir}/sized does not fit: max_entries 4 where the object wants 99`,
    });

    assert.equal(coll.unpinMaps().length, 8);
    assert.deepEqual(fs.readdirSync(dir), []);
    assert.deepEqual(big.lookup(u32(7)), u64(49), 'an unpinned map lives on while it is held');
  });

  test('a pinned program and map reopen by path; unpin removes the pin', () => {
    using coll = loadCollection(bpfFixture('addon_fixture'));
    const progPath = `${dir}/prog`;
    const mapPath = `${dir}/sized`;
    coll.program('xdp_fixture').pin(progPath);
    coll.map('sized').pin(mapPath);
    try {
      using prog = openPinnedProgram(progPath);
      assert.equal(prog.id, coll.program('xdp_fixture').id);
      assert.equal(prog.name, 'xdp_fixture');
      assert.equal(prog.test(ethFrame({ payload: [0xee] })).verdict, XDP_DROP);
      using map = openPinnedMap(mapPath);
      map.update(u32(1), u32(2));
      assert.deepEqual(coll.map('sized').lookup(u32(1)), u32(2));
    } finally {
      coll.program('xdp_fixture').unpin(progPath);
      coll.map('sized').unpin(mapPath);
    }
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  test('opening or unpinning a missing pin is ENOENT naming the path', () => {
    assert.throws(() => openPinnedMap(`${dir}/nothing`), { code: 'ENOENT', message: `bpf_obj_get(${dir}/nothing): No such file or directory` });
    assert.throws(() => openPinnedProgram(`${dir}/nothing`), { code: 'ENOENT' });
    using coll = loadCollection(bpfFixture('addon_fixture'));
    assert.throws(() => coll.map('big').unpin(`${dir}/nothing`), { code: 'ENOENT', message: /nothing is pinned there/ });
  });
});
