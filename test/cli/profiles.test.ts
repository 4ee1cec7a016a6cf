// `bae profiles` and `bae status` on a bae in ingress mode: sorting, --top, the table, --watch,
// and the counters of status, checked against traffic the test sent.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Lab, ping, run } from '../../src/lab';
import { assertNothingLeft } from '../lib/bae-cli';
import { createBaeLab, type BaeLab } from '../lib/bae-lab';

let bl: BaeLab;
let lab: Lab;

function inBae(args: string[]) {
  return bl.cli(args);
}

/** 64-bit counters are decimal strings in every --json (src/json.ts); sizes and TTLs numbers. */
interface JsonConv {
  a: string;
  b: string;
  packets: string;
  aToB: { packets: string; bytes: string; sizeMin: number; sizeMax: number; ttlLast: number; iatCount: string; iatHist: string[] };
  bToA: { packets: string; bytes: string };
}

describe('bae profiles and status in ingress mode', () => {
  before(async () => {
    bl = createBaeLab('prof');
    lab = bl.lab;
    // The client's frames reach bae's port and stop in the bae namespace (it has no addresses):
    // pings get no answer, but every request is profiled. A fixed neighbour spares us ARP.
    for (const a of [lab.server.ipv4]) {
      run(['ip', '-n', lab.client.ns, 'neigh', 'replace', a, 'lladdr', '02:00:00:00:00:02', 'dev', lab.client.iface, 'nud', 'permanent']);
    }
    const res = inBae(['load', '--iface', lab.bae.clientPort]);
    assert.equal(res.status, 0, res.stderr);
    await ping(lab, 'client', lab.server.ipv4, { count: 4, intervalS: 0.05, waitS: 0.1 });
    await ping(lab, 'client', lab.server.ipv4, { count: 2, intervalS: 0.05, waitS: 0.1, source: lab.client.ipv4Second });
  });
  after(() => bl?.teardown());

  test('profiles --json counts each source separately and sorts by packets', () => {
    const res = inBae(['profiles', '--json', '--sort', 'packets']);
    assert.equal(res.status, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { total: number; conversations: JsonConv[] };
    // A is the lower address: 10.199.0.1 < server 10.199.0.2 < 10.199.0.3.
    const v4 = out.conversations.filter((c) => c.a === lab.server.ipv4 || c.b === lab.server.ipv4);
    assert.deepEqual(
      v4.map((c) => (c.a === lab.server.ipv4 ? [c.b, c.bToA.packets, c.aToB.packets] : [c.a, c.aToB.packets, c.bToA.packets])),
      [
        [lab.client.ipv4, '4', '0'],
        [lab.client.ipv4Second, '2', '0'],
      ],
    );
    const first = v4[0]!;
    // An ICMP echo request of ping's default 56 data bytes: 14 + 20 + 8 + 56.
    assert.equal(first.aToB.bytes, String(4 * 98));
    assert.deepEqual([first.aToB.sizeMin, first.aToB.sizeMax, first.aToB.ttlLast], [98, 98, 64]);
    const counts = out.conversations.map((c) => BigInt(c.packets));
    assert.deepEqual(counts, [...counts].sort((x, y) => (y > x ? 1 : y < x ? -1 : 0)), 'sorted by packets, largest first');
  });

  test('the inter-arrival histogram holds the pings 50 ms apart, in --json and with --hist', () => {
    const out = JSON.parse(inBae(['profiles', '--json']).stdout) as { conversations: JsonConv[] };
    const conv = out.conversations.find((c) => c.a === lab.client.ipv4 && c.b === lab.server.ipv4);
    assert.ok(conv, 'the client-server conversation');
    const hist = conv.aToB.iatHist.map(BigInt);
    const gaps = BigInt(conv.aToB.iatCount);
    // 4 requests, ping -i 0.05: gaps of 50 ms, or multiples of it between packets of one CPU copy.
    assert.equal(hist.length, 8);
    assert.ok(gaps >= 1n, `gaps: ${gaps}`);
    assert.deepEqual(hist.slice(0, 4), [0n, 0n, 0n, 0n], `no gap under 10 ms: ${hist}`);
    assert.equal(hist[4]! + hist[5]!, gaps, `every gap in 10 ms - 1 s: ${hist}`);
    const text = inBae(['profiles', '--hist', '--sort', 'packets', '--top', '1']).stdout;
    const block = text.split('\n\n')[1]!.split('\n');
    assert.equal(block[0], `${lab.client.ipv4} - ${lab.server.ipv4}`, text);
    assert.match(block[4]!, /^ {2}GAP\s+<10us\s+10-100us\s+100us-1ms\s+1-10ms\s+10-100ms\s+100ms-1s\s+1-10s\s+>=10s$/, text);
    assert.deepEqual(block[5]!.trim().split(/\s+/), ['A>B', ...hist.map(String)], text);
    assert.deepEqual(block[2]!.trim().split(/\s+/), ['A>B', '0', '4', '0', '0', '0', '0', '0', '0'], `98-byte requests: ${text}`);
  });

  test('--top limits the rows and the table shows addresses and counts', () => {
    const top = JSON.parse(inBae(['profiles', '--json', '--sort', 'packets', '--top', '1']).stdout);
    assert.equal(top.conversations.length, 1);
    assert.ok(top.total >= 2);
    const table = inBae(['profiles', '--sort', 'packets', '--top', '2']).stdout;
    const lines = table.trim().split('\n');
    // The header names the cut only when there is one: whether the client's IPv6 link-local
    // chatter (MLD, router solicitations) has reached the port yet decides if total > 2.
    const total = Number(/^(\d+) conversations/.exec(lines[0]!)?.[1]);
    assert.ok(total >= 2, lines[0]);
    assert.equal(/\(top 2 by packets\)$/.test(lines[0]!), total > 2, lines[0]);
    assert.match(lines[1]!, /^A\s+B\s+PKTS A>B\s+PKTS B>A\s+BYTES A>B/);
    assert.match(lines[2]!, new RegExp(`^${lab.client.ipv4.replace(/\./g, '\\.')}\\s+${lab.server.ipv4.replace(/\./g, '\\.')}\\s+4\\s+0\\s+392\\s+0`));
  });

  test('--watch prints a snapshot per interval and stops after --count', () => {
    const res = inBae(['profiles', '--watch', '--interval', '1', '--count', '2', '--top', '1']);
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.stdout.match(/conversations/g)?.length, 2);
  });

  test('status shows the ingress attachment and counts what passed', () => {
    const st = JSON.parse(inBae(['status', '--json']).stdout);
    assert.equal(st.mode, 'ingress');
    assert.deepEqual(st.ports.map((p: { iface: string; attached: boolean }) => [p.iface, p.attached]), [[lab.bae.clientPort, true]]);
    assert.ok(Number(st.counters.parse.icmp) >= 6, `icmp parsed: ${st.counters.parse.icmp}`);
    assert.equal(st.counters.verdicts.redirect, '0');
    assert.equal(st.counters.verdicts.pass, String(Object.values(st.counters.parse as Record<string, string>).reduce((a, b) => a + BigInt(b), 0n)));
    assert.ok(st.maps.conversations.entries >= 2);
    const un = inBae(['unload']);
    assert.equal(un.status, 0, un.stderr);
    assertNothingLeft(lab, bl.pinDir);
  });
});
