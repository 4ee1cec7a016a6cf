import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BpfError, errnoName, loadCollection } from '../../src/datapath';
import { runNodeChild } from '../lib/child';
import { bpfFixture } from '../lib/fixtures';

// The other error paths live next to their operations: ENOENT for a missing object file and
// VerifierError (collection.test.ts), EEXIST/ENOENT of update flags and E2BIG (map.test.ts),
// ENOENT of a missing pin (pin.test.ts), ENODEV of a missing interface (xdp.test.ts).

describe('BPF errors', () => {
  test('a native failure carries the errno name as code, errno, op and the object in its message', () => {
    using coll = loadCollection(bpfFixture('addon_fixture'));
    const key = Buffer.alloc(4);
    coll.map('sized').update(key, key, 'noexist');
    try {
      coll.map('sized').update(key, key, 'noexist');
      assert.fail('expected EEXIST');
    } catch (err) {
      assert.ok(err instanceof BpfError);
      assert.equal(err.name, 'BpfError');
      assert.equal(err.code, 'EEXIST');
      assert.equal(err.errno, 17);
      assert.equal(err.op, 'bpf_map_update_elem');
      assert.equal(err.object, 'sized');
      assert.equal(err.message, 'bpf_map_update_elem(sized): File exists');
      assert.ok(err.cause instanceof Error);
    }
  });

  test('errno names cover the kernel-only ENOTSUPP', () => {
    assert.equal(errnoName(1), 'EPERM');
    assert.equal(errnoName(7), 'E2BIG');
    assert.equal(errnoName(524), 'ENOTSUPP');
  });

  test('loading without privileges fails with EPERM and libbpf says why', async () => {
    // As root EPERM cannot happen, so a child drops to nobody without capabilities.
    const seen = await runNodeChild<{ name: string; code: string; message: string }>(
      `try { dp.loadCollection(${JSON.stringify(bpfFixture('addon_fixture'))}); return { name: 'none' }; }
       catch (e) { return { name: e.name, code: e.code, message: e.message }; }`,
      { prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'], label: 'unprivileged loader' },
    );
    assert.equal(seen.name, 'BpfError');
    assert.equal(seen.code, 'EPERM');
    assert.match(seen.message, /^bpf_object__load\(.*addon_fixture\.o\): Operation not permitted \(.+\)$/);
  });
});
