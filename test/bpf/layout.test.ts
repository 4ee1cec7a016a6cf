// src/datapath/layout.ts against the C header, as the compiler laid it out: the BTF of bae.o.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadCollection } from '../../src/datapath';
import { LAYOUTS, MAPS, PARSE_OUTCOMES, VERDICTS } from '../../src/datapath/layout';
import { BAE_OBJECT } from './harness';

describe('layout.ts mirrors bpf/bae.h', () => {
  test('every shared struct has the size and field offsets that the BTF of bae.o records', () => {
    using coll = loadCollection(BAE_OBJECT);
    for (const [name, ts] of Object.entries(LAYOUTS)) {
      const btf = coll.structLayout(name);
      assert.equal(ts.size, btf.size, `sizeof(struct ${name})`);
      const fromBtf = Object.fromEntries(btf.members.map((m) => [m.name, { offset: m.offset, size: m.size }]));
      assert.deepEqual(ts.fields, fromBtf, `fields of struct ${name}`);
      for (const m of btf.members) assert.equal(m.bitSize, undefined, `${name}.${m.name} is not a bitfield`);
    }
  });

  test('the maps of bae.o have the key and value sizes of the structs layout.ts decodes', () => {
    using coll = loadCollection(BAE_OBJECT);
    const expect: [string, number, number][] = [
      [MAPS.convs, LAYOUTS.bae_conv_key!.size, LAYOUTS.bae_conv!.size],
      [MAPS.tcpFlows, LAYOUTS.bae_flow_key!.size, LAYOUTS.bae_tcp_flow!.size],
      [MAPS.stats, 4, LAYOUTS.bae_stats!.size],
      [MAPS.ports, 4, 4],
      [MAPS.testClock, 4, 8],
    ];
    for (const [name, keySize, valueSize] of expect) {
      const map = coll.map(name);
      assert.equal(map.keySize, keySize, `${name} key size`);
      assert.equal(map.valueSize, valueSize, `${name} value size`);
    }
    assert.equal(coll.map(MAPS.convs).type, 'lru_percpu_hash');
    assert.equal(coll.map(MAPS.tcpFlows).type, 'lru_hash');
    assert.equal(coll.map(MAPS.stats).type, 'percpu_array');
    assert.equal(coll.map(MAPS.ports).type, 'devmap_hash');
  });

  test('the counter arrays have one slot per verdict and per parse outcome', () => {
    using coll = loadCollection(BAE_OBJECT);
    const members = Object.fromEntries(coll.structLayout('bae_stats').members.map((m) => [m.name, m.size]));
    assert.equal(members.verdicts, 8 * VERDICTS);
    assert.equal(members.parse, 8 * PARSE_OUTCOMES.length);
  });
});
