// `bae policy apply` of each malformed policy file of test/policy/malformed/ exits 2 with the one
// line of its PolicyError (malformed.test.ts checks those errors) and leaves every policy map of
// a loaded bae byte for byte as it was.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Collection } from '../../src/datapath';
import { PROGRAM } from '../../src/datapath/layout';
import { policyMapsOf, type PolicyMaps } from '../../src/policy/maps';
import { TCP_SYN } from '../lib/packets';
import { digestMaps, frame } from './helpers';
import { malformedCases } from './malformed-cases';
import { pinnedBae, type PinnedBae } from './pinned-bae';

describe('bae policy apply of each malformed policy file', () => {
  const cases = malformedCases();
  let pb: PinnedBae;
  let pinDir: string;
  let collection: Collection | undefined;
  let maps: PolicyMaps;

  before(() => {
    pb = pinnedBae('malformed');
    ({ pinDir, collection } = pb);
    maps = policyMapsOf((n) => collection!.map(n));
  });
  after(() => pb?.close());

  const bae = (...args: string[]) => pb.cli(...args);

  it('exits 2 with the error line and leaves every policy map as it was', () => {
    // Something in every table first: an applied set, trigger windows, counters, a block.
    const good = pb.write(
      'good.yaml',
      `apiVersion: bae/v1
kind: Policy
metadata: { name: base-block }
spec:
  priority: 5
  match: { dst: 198.51.100.0/24, proto: tcp, dport: 443 }
  trigger: { when: tcp.syn > 2, within: 1s }
  actions: [ { block: { ttl: 1h } } ]
`,
    );
    const applied = bae('policy', 'apply', '--pin-dir', pinDir, good);
    assert.equal(applied.status, 0, applied.stderr);
    const program = collection!.program(PROGRAM);
    const clock = collection!.map('bae_test_clock');
    const t = Buffer.alloc(8);
    t.writeBigUInt64LE(1_000_000_000n);
    clock.update(Buffer.alloc(4), t);
    for (let i = 0; i < 4; i++) {
      program.test(frame({ ip: { version: 4, src: '203.0.113.7', dst: '198.51.100.1' }, l4: { proto: 'tcp', sport: 5000 + i, dport: 443, flags: TCP_SYN } }));
    }
    const before = digestMaps(maps);
    assert.notEqual(before.blocklist!.split(':')[0], '0', 'the flood was blocked: the blocklist has an entry');

    for (const c of cases) {
      const name = path.basename(c.file);
      const res = bae('policy', 'apply', '--pin-dir', pinDir, c.file);
      assert.equal(res.status, 2, `${name}: exit code (stderr: ${res.stderr})`);
      const lines = res.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `${name}: one line on stderr: ${res.stderr}`);
      assert.ok(lines[0]!.startsWith(`bae: ${c.file}:${c.line}:${c.column}:`), `${name}: ${lines[0]}`);
      assert.ok(lines[0]!.includes(c.fragment), `${name}: ${lines[0]}`);
      assert.equal(res.stdout, '', `${name}: nothing on stdout`);
      assert.deepEqual(digestMaps(maps), before, `${name}: the policy maps are unchanged`);
    }
  });
});
