import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BpfError, loadCollection, VerifierError, XDP_DROP, XDP_PASS, XDP_TX } from '../../src/datapath';
import { bpfFixture } from '../lib/fixtures';
import { ethFrame } from '../lib/packets';

describe('loadCollection', () => {
  test('loads the fixture and lists its programs and maps', () => {
    using coll = loadCollection(bpfFixture('addon_fixture'));
    assert.deepEqual([...coll.programs.keys()].sort(), ['xdp_emit', 'xdp_fixture', 'xdp_grow', 'xdp_pass']);
    for (const p of coll.programs.values()) {
      assert.equal(p.type, 'xdp');
      assert.ok(p.fd > 0 && p.id > 0, p.name);
    }
    const userMaps = [...coll.maps.values()].filter((m) => !m.internal).map((m) => m.name);
    assert.deepEqual(userMaps.sort(), ['big', 'counters', 'events', 'last_event', 'pcpu_hash', 'ports', 'prefixes', 'sized']);
    assert.equal(coll.map('events').type, 'ringbuf');
    assert.ok([...coll.maps.values()].some((m) => m.internal && m.name.endsWith('.rodata')));
  });

  test('an absent program or map name is a clear ENOENT that lists what is there', () => {
    using coll = loadCollection(bpfFixture('addon_fixture'));
    assert.throws(() => coll.program('nope'), { code: 'ENOENT', message: /no program named 'nope' .*xdp_fixture/ });
    assert.throws(() => coll.map('nope'), { code: 'ENOENT', message: /no map named 'nope' .*big/ });
  });

  test('structLayout reads a struct from the object BTF', () => {
    using coll = loadCollection(bpfFixture('addon_fixture'));
    assert.deepEqual(coll.structLayout('fixture_event'), {
      name: 'fixture_event',
      size: 16,
      members: [
        { name: 'seq', offset: 0, size: 8 },
        { name: 'pkt_len', offset: 8, size: 4 },
        { name: 'cpu', offset: 12, size: 2 },
        { name: 'marker', offset: 14, size: 1 },
        { name: 'pad', offset: 15, size: 1 },
      ],
    });
    assert.throws(() => coll.structLayout('no_such_struct'), { code: 'ENOENT', message: /no struct or union named 'no_such_struct'/ });
  });

  test('constants set before load change what the program does', () => {
    const marker = ethFrame({ payload: [0x42] });
    {
      using coll = loadCollection(bpfFixture('addon_fixture'));
      assert.equal(coll.program('xdp_fixture').test(marker).verdict, XDP_TX);
    }
    {
      using coll = loadCollection(bpfFixture('addon_fixture'), { constants: { drop_marker: 0x42, grow_by: 40n, count_packets: false } });
      assert.equal(coll.program('xdp_fixture').test(marker).verdict, XDP_DROP);
      assert.equal(coll.program('xdp_fixture').test(ethFrame({ payload: [0xee] })).verdict, XDP_TX);
      const grown = coll.program('xdp_grow').test(ethFrame({ length: 60 }));
      assert.equal(grown.verdict, XDP_PASS);
      assert.equal(grown.data.length, 100);
      const zero = Buffer.alloc(4);
      assert.equal(coll.map('counters').lookupPerCpu(zero)!.every((v) => v.readBigUInt64LE() === 0n), true);
    }
  });

  test('maxEntries set before load shows in the map and in what it accepts', () => {
    using coll = loadCollection(bpfFixture('addon_fixture'), { maxEntries: { sized: 10 } });
    const sized = coll.map('sized');
    assert.equal(sized.maxEntries, 10);
    const key = (i: number) => Buffer.from(Uint32Array.of(i).buffer);
    for (let i = 0; i < 10; i++) sized.update(key(i), key(i));
    assert.throws(() => sized.update(key(10), key(10)), { code: 'E2BIG' });
  });

  test('unknown or out-of-range constants and unknown maxEntries names are refused with one clear line', () => {
    const path = bpfFixture('addon_fixture');
    assert.throws(() => loadCollection(path, { constants: { no_such: 1 } }), {
      code: 'EINVAL',
      message: /no constant named 'no_such' in .rodata \(constants: drop_marker, grow_by, signed_knob, count_packets\)/,
    });
    assert.throws(() => loadCollection(path, { constants: { drop_marker: 256 } }), { code: 'EINVAL', message: /does not fit its 1-byte unsigned type/ });
    assert.throws(() => loadCollection(path, { constants: { drop_marker: -1 } }), { code: 'EINVAL', message: /does not fit/ });
    assert.throws(() => loadCollection(path, { constants: { signed_knob: 40000 } }), { code: 'EINVAL', message: /2-byte signed/ });
    assert.throws(() => loadCollection(path, { constants: { drop_marker: 1.5 } }), { code: 'EINVAL', message: /must be an integer/ });
    assert.throws(() => loadCollection(path, { maxEntries: { nope: 5 } }), { code: 'EINVAL', message: /maxEntries names no map 'nope'/ });
    assert.throws(() => loadCollection(path, { maxEntries: { sized: 0 } }), { code: 'EINVAL', message: /maxEntries.sized/ });
    using ok = loadCollection(path, { constants: { signed_knob: -32768 } });
    assert.ok(ok.programs.size > 0);
  });

  test('a missing object file is ENOENT naming the path', () => {
    assert.throws(() => loadCollection('/nonexistent/x.o'), (err: unknown) => {
      assert.ok(err instanceof BpfError);
      assert.equal(err.code, 'ENOENT');
      assert.match(err.message, /^bpf_object__open\(\/nonexistent\/x\.o\): No such file or directory$/);
      return true;
    });
  });

  test('a program the verifier refuses raises VerifierError with the verifier log', () => {
    assert.throws(() => loadCollection(bpfFixture('bad_verifier')), (err: unknown) => {
      assert.ok(err instanceof VerifierError, String(err));
      assert.ok(err instanceof BpfError);
      assert.equal(err.code, 'EACCES');
      assert.ok(err.log.length > 0);
      assert.ok(err.log.some((l) => /invalid access to packet/.test(l)), err.log.join('\n'));
      assert.match(err.message, /bad_verifier\.o.*invalid access to packet/);
      return true;
    });
  });

  test('closing a collection closes its programs and maps, and is safe twice', () => {
    const coll = loadCollection(bpfFixture('addon_fixture'));
    const prog = coll.program('xdp_pass');
    const map = coll.map('big');
    coll.close();
    coll.close();
    assert.equal(prog.fd, -1);
    assert.equal(map.fd, -1);
    assert.throws(() => prog.test(ethFrame()), { code: 'EBADF' });
    assert.throws(() => coll.structLayout('fixture_event'), { code: 'EBADF' });
  });
});
