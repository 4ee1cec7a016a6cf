// test-unit: needs no root and no kernel (make test-unit).
// Decision order: orderPolicies() (flat numeric keys, computed once) must give exactly the order
// of comparePolicies(), the documented rule, on generated sets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Policy } from '../../src/policy/model';
import { comparePolicies, orderPolicies } from '../../src/policy/order';
import { rng } from '../lib/rng';
import { policies, policyYaml } from './helpers';

interface GenOptions {
  /** Distinct priorities to draw from. */
  priorities: number[];
  /** Port lists to draw from (YAML text), '' for none. */
  ports: string[];
}

/** `n` policies whose keys tie often (few priorities, nested prefixes) so that names decide many pairs. */
function generate(n: number, seed: number, o: GenOptions): Policy[] {
  const next = rng(seed).u32;
  const pick = <T>(list: readonly T[]): T => list[next() % list.length]!;
  const src = ['', '10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '10.1.2.3/32', '2001:db8::/32', '2001:db8::/64', '[10.0.0.0/8, 192.168.0.0/16]', '[10.1.2.0/24, 2001:db8::/48]'];
  const dst = ['', '0.0.0.0/0', '172.16.0.0/12', '172.16.5.0/24', '::/0', 'fd00::/8'];
  const protos = ['', 'tcp', 'udp', '[tcp, udp]', 'icmp'];
  const flags = ['', 'SYN', 'SYN !ACK', '[FIN, ACK, "!RST"]'];
  const docs: string[] = [];
  const used = new Set<string>();
  while (docs.length < n) {
    // Names of different lengths and shared prefixes ('a', 'a1', 'a-1', 'a.b'): code-unit order.
    const name = `${pick(['a', 'b', 'ab', 'a-', 'a.', 'z9', 'n0'])}${next() % 500}${pick(['', 'x', '-y', '.z'])}`;
    if (used.has(name)) continue;
    used.add(name);
    const match: string[] = [];
    const s = pick(src);
    if (s) match.push(`src: ${s}`);
    const d = pick(dst);
    if (d) match.push(`dst: ${d}`);
    const proto = pick(protos);
    if (proto) match.push(`proto: ${proto}`);
    if (proto === 'tcp') {
      const f = pick(flags);
      if (f) match.push(`tcpFlags: ${f.startsWith('[') ? f : `"${f}"`}`);
    }
    if (proto === 'tcp' || proto === 'udp') {
      const dp = pick(o.ports);
      if (dp) match.push(`dport: ${dp}`);
      const sp = pick(o.ports);
      if (sp) match.push(`sport: ${sp}`);
    }
    if (next() % 5 === 0) match.push(`iface: ${pick(['eth0', 'veth1'])}`);
    const spec = [`priority: ${pick(o.priorities)}`, match.length ? `match: { ${match.join(', ')} }` : '', 'actions: [count]'];
    docs.push(policyYaml(name, spec.filter(Boolean).join('\n')));
  }
  return policies(docs.join('---\n'));
}

const names = (list: readonly Policy[]) => list.map((p) => p.name);
const byComparator = (list: readonly Policy[]) => [...list].sort(comparePolicies);

describe('decision order', () => {
  it('is the order of comparePolicies on generated sets with many ties (names decide)', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const set = generate(1500, seed, { priorities: [0, 1, 5, 100], ports: ['', '80', '[80, 443]', '1000-1999', '[22, 8000-8099]'] });
      assert.deepEqual(names(orderPolicies(set)), names(byComparator(set)), `seed ${seed}`);
      // The input order does not matter.
      assert.deepEqual(names(orderPolicies([...set].reverse())), names(byComparator(set)), `seed ${seed}, reversed`);
    }
  });

  it('is the same order with keys over their whole range (priorities, port widths 1 to 65535)', () => {
    const priorities = Array.from({ length: 60 }, (_, i) => i * 1100);
    const ports = ['', '1', '1-2', '1-1000', '1-30000', '1-65535', '[1, 5-9, 100-60000]', '2-65535', '1-65534'];
    for (let seed = 11; seed <= 13; seed++) {
      const set = generate(1500, seed, { priorities, ports });
      assert.deepEqual(names(orderPolicies(set)), names(byComparator(set)), `seed ${seed}`);
    }
  });

  it('keeps the input order of policies that tie completely (same keys, same name)', () => {
    const one = policies(policyYaml('same', 'priority: 3\nmatch: { proto: tcp }\nactions: [count]'))[0]!;
    const set = [
      { ...one, id: 1 },
      { ...one, id: 2, priority: 4 },
      { ...one, id: 3 },
      { ...one, id: 4 },
    ];
    assert.deepEqual(
      orderPolicies(set).map((p) => p.id),
      [2, 1, 3, 4],
    );
  });
});
