// Blocklist.block over the kernel's maps (a loaded bae object, no lab): the protected-prefix check
// of a single address is one longest-prefix lookup in policy_protected (the block command's path),
// which must refuse exactly what the full listing refused, naming the covering prefix, for IPv4
// and IPv6; a prefix is still checked both ways (it may hold a protected one). A block without
// escalation reports the address's history, read after the entry is written. count(), what
// the agent's telemetry asks between block commands, agrees with list() without reading it out.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { AF_INET6, formatAddress } from '../../src/datapath';
import { Blocklist, ProtectedError, parseBlockTarget, type BlockTarget } from '../../src/policy/blocks';
import { parsePrefix, type Prefix } from '../../src/policy/net';
import { setProtectedPrefixes } from '../../src/policy/prefix-blocks';
import { readBlocklist, readOffences } from '../../src/policy/state';
import { PolicyBae } from './helpers';

const S = 1_000_000_000n;
const target = (a: string) => parseBlockTarget(a) as BlockTarget;
const prefix = (p: string) => parsePrefix(p) as Prefix;

describe('the blocklist and protected prefixes', () => {
  let bae: PolicyBae;
  let list: Blocklist;
  let t = 1000n * S;
  before(() => {
    bae = new PolicyBae();
    list = new Blocklist(bae.maps.blocklist, bae.maps.blockUsed, { prefixes: bae.maps.blockPrefixes, protected: bae.maps.protected, offences: bae.maps.offences, clock: () => t });
  });
  after(() => bae?.close());
  beforeEach(() => setProtectedPrefixes(bae.maps, []));

  const blocked = () => readBlocklist(bae.maps).map((b) => formatAddress(b.family === AF_INET6 ? 6 : 4, b.addr));

  it('refuses an address inside a protected prefix, naming the prefix, and writes nothing', () => {
    setProtectedPrefixes(bae.maps, [prefix('10.80.0.0/24'), prefix('2001:db8:80::/48'), prefix('10.81.0.7/32')]);
    const before = blocked();
    for (const [addr, guard] of [
      ['10.80.0.9', '10.80.0.0/24'],
      ['10.81.0.7', '10.81.0.7/32'],
      ['2001:db8:80::1', '2001:db8:80::/48'],
    ] as const) {
      assert.throws(() => list.block(target(addr), 60n * S), (err: Error) => err instanceof ProtectedError && err.message.startsWith(`${addr} is protected (${guard},`), addr);
    }
    assert.deepEqual(blocked(), before, 'nothing written');
  });

  it('blocks an address next to a protected prefix, and a prefix only when it holds none', () => {
    setProtectedPrefixes(bae.maps, [prefix('10.80.0.0/24'), prefix('10.82.0.8/32')]);
    assert.equal(list.block(target('10.80.1.9'), 60n * S).expiryNs, t + 60n * S);
    assert.equal(list.block(target('10.82.0.9'), 60n * S).expiryNs, t + 60n * S);
    assert.equal(list.block(target('2001:db8:81::1'), 60n * S).expiryNs, t + 60n * S);
    assert.ok(['10.80.1.9', '10.82.0.9', '2001:db8:81::1'].every((a) => blocked().includes(a)), JSON.stringify(blocked()));
    assert.throws(() => list.block(target('10.82.0.0/24'), 60n * S), /10\.82\.0\.0\/24 is protected \(10\.82\.0\.8\/32,/);
    assert.throws(() => list.block(target('10.80.0.128/25'), 60n * S), /10\.80\.0\.128\/25 is protected \(10\.80\.0\.0\/24,/);
    assert.equal(list.block(target('10.83.0.0/24'), 60n * S).expiryNs, t + 60n * S);
  });

  it('a block without escalation reports the history the address has, and leaves it as it was', () => {
    const addr = '10.84.0.1';
    const esc = { factor: 2, maxNs: 3600n * S, forgetNs: 86_400n * S };
    assert.equal(list.block(target(addr), 10n * S, esc).offences, 1);
    assert.equal(list.block(target(addr), 10n * S, esc).offences, 2);
    const history = readOffences(bae.maps).find((o) => formatAddress(4, o.addr) === addr);
    const plain = list.block(target(addr), 10n * S);
    assert.equal(plain.offences, 2);
    assert.equal(plain.expiryNs, t + 10n * S, 'no escalation');
    assert.deepEqual(readOffences(bae.maps).find((o) => formatAddress(4, o.addr) === addr), history);
    assert.equal(list.block(target('10.84.0.2'), 10n * S).offences, 0);
  });

  it('counts the entries in force as list() lists them, each with its history, and not the expired ones', () => {
    t += 10_000n * S; // past every block of the cases before
    assert.equal(list.count(), 0);
    assert.deepEqual(list.list(), []);
    const esc = { factor: 2, maxNs: 3600n * S, forgetNs: 86_400n * S };
    list.block(target('10.85.0.1'), 10n * S, esc);
    list.block(target('10.85.0.1'), 10n * S, esc); // history 2, 20 s
    list.block(target('10.85.0.2'), 5n * S);
    list.block(target('2001:db8:85::2'), 30n * S);
    list.block(target('10.85.1.0/24'), 40n * S);
    assert.equal(list.count(), 4);
    assert.deepEqual(
      list.list().map((b) => [b.address, b.remainingNs / S, b.offences]),
      [
        ['10.85.0.2', 5n, 0],
        ['10.85.0.1', 20n, 2],
        ['2001:db8:85::2', 30n, 0],
        ['10.85.1.0/24', 40n, 0],
      ],
    );
    t += 25n * S;
    assert.equal(list.count(), 2, 'two expired');
    assert.deepEqual(list.list().map((b) => b.address), ['2001:db8:85::2', '10.85.1.0/24']);
  });
});
