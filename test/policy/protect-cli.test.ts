// `bae protect` against a pinned bae.o (another process, as a user runs it): prefixes are
// added, listed and removed in the kernel's policy_protected; bad input changes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { policyMapsOf } from '../../src/policy/maps';
import { listProtectedPrefixes } from '../../src/policy/prefix-blocks';
import { pinnedBae, type PinnedBae } from './pinned-bae';

describe('bae protect', () => {
  let pb: PinnedBae;
  before(() => {
    pb = pinnedBae('protect');
  });
  after(() => pb?.close());

  const bae = (...args: string[]) => pb.cli('--pin-dir', pb.pinDir, ...args);
  const kernel = () => listProtectedPrefixes(policyMapsOf((n) => pb.collection.map(n))).sort();

  it('adds, lists and removes prefixes in the kernel, with --json for scripts', () => {
    let r = bae('protect', 'add', '192.168.7.0/24', '2001:db8:7::/48', '10.7.7.7');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(kernel(), ['10.7.7.7/32', '192.168.7.0/24', '2001:db8:7::/48']);
    r = bae('protect', 'list', '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { protected: string[] }).protected.sort(), ['10.7.7.7/32', '192.168.7.0/24', '2001:db8:7::/48']);
    r = bae('protect', 'remove', '10.7.7.7');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(kernel(), ['192.168.7.0/24', '2001:db8:7::/48']);
    r = bae('status', '--json');
    assert.equal(r.status, 0, r.stderr);
    const policy = (JSON.parse(r.stdout) as { policy: { protectedPrefixes: string[]; blockRefused: string } }).policy;
    assert.deepEqual(policy.protectedPrefixes.sort(), ['192.168.7.0/24', '2001:db8:7::/48']);
    assert.equal(policy.blockRefused, '0', '64-bit counters as decimal strings');
    r = bae('status');
    assert.match(r.stdout, /policy stage: +0 dropped by blocks \(0 addresses, 0 prefixes listed\), 0 blocks refused \(2 protected prefixes\)/);
  });

  it('refuses a bad prefix or one that is not protected, with exit 2, and changes nothing', () => {
    const before = kernel();
    let r = bae('protect', 'add', '192.168.8.0/24', '10.0.0.1/8');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /10\.0\.0\.1\/8/);
    assert.deepEqual(kernel(), before, 'the good prefix before the bad one was not added either');
    r = bae('protect', 'remove', '192.168.7.0/24', '172.16.0.0/12');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /not protected: 172\.16\.0\.0\/12/);
    assert.deepEqual(kernel(), before);
    r = bae('protect', 'add', 'not-an-address');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /not-an-address/);
  });
});
