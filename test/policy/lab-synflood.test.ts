// The SYN-flood policy in the lab: bae inline between client and server, a bounded SYN flood
// (hping3 -c) from the client. Exactly the first 100 SYNs in the window reach the server (its own
// TCP InSegs counter says so), the rest do not, and the client's other address is unaffected.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { run, tryRun, type Lab } from '../../src/lab';
import { createBaeLab, type BaeLab } from '../lib/bae-lab';
import { settled } from '../lib/wait';

/** TCP segments the server's stack received (its network namespace's Tcp InSegs). */
function serverInSegs(lab: Lab): number {
  const snmp = run(['ip', 'netns', 'exec', lab.server.ns, 'cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Tcp:'));
  const names = snmp[0]!.split(/\s+/);
  const values = snmp[1]!.split(/\s+/);
  return Number(values[names.indexOf('InSegs')]);
}

/** A bounded SYN flood: `count` SYNs, one per `intervalUs`, from `source` to the server. */
function synFlood(lab: Lab, count: number, source?: string): void {
  const res = tryRun([
    'ip', 'netns', 'exec', lab.client.ns, 'timeout', '20', 'hping3', '-q', '-S', '-p', '4444', '-c', String(count), '-i', 'u2000',
    ...(source ? ['-a', source] : []), lab.server.ipv4,
  ]);
  // hping3 exits 1 when no reply came back (all blocked); its statistics say what it sent.
  const sent = /(\d+) packets transmitted/.exec(res.stdout + res.stderr);
  assert.ok(sent, `hping3 failed (${res.status}): ${res.stderr}`);
  assert.equal(Number(sent[1]), count, 'hping3 sent every SYN');
}

describe('the syn-flood policy in the lab', () => {
  let bl: BaeLab;
  before(() => {
    bl = createBaeLab('syn');
  });
  after(() => bl?.teardown());

  it('lets exactly the first 100 SYNs of a flood through, blocks the rest, and leaves another client address alone', async () => {
    const { lab, cli } = bl;
    const loaded = cli(['load', '--iface', lab.bae.clientPort, '--peer', lab.bae.serverPort]);
    assert.equal(loaded.status, 0, `bae load: ${loaded.stderr}`);
    const policy = bl.write(
      'syn-flood.yaml',
      `apiVersion: bae/v1
kind: Policy
metadata: { name: syn-flood }
spec:
  match: { proto: tcp }
  trigger: { when: tcp.syn > 100, within: 1s, scope: source }
  actions:
    - block: { ttl: 30s }
`,
    );
    const applied = cli(['policy', 'apply', policy]);
    assert.equal(applied.status, 0, `policy apply: ${applied.stderr}`);
    // Neighbours resolved before counting (ARP passes through bae; it is not TCP).
    run(['ip', 'netns', 'exec', lab.client.ns, 'ping', '-c', '1', '-W', '2', lab.server.ipv4]);

    // The server's count is read once it stands still (not after a fixed sleep, which a loaded
    // machine outlasts), and at least at what should arrive, so that a late segment is counted.
    const inSegsSettled = (what: string, atLeast: number) =>
      settled(what, () => serverInSegs(lab), { ready: (n) => n >= atLeast, quietMs: 300, ms: 10_000 });
    const before = serverInSegs(lab);
    synFlood(lab, 300); // 300 SYNs in about 0.6 s: all in one 1 s window
    const afterFlood = await inSegsSettled('the first flood at the server', before + 100);
    assert.equal(afterFlood - before, 100, 'the server received exactly the first 100 SYNs');

    synFlood(lab, 50, lab.client.ipv4Second);
    const afterOther = await inSegsSettled('the other address\'s SYNs at the server', afterFlood + 50);
    assert.equal(afterOther - afterFlood, 50, 'the other client address is not blocked');

    synFlood(lab, 10); // still banned, also in a new window
    // Nothing is to arrive: the count stands still where it was (300 ms, as for the floods above).
    assert.equal((await inSegsSettled('the server after the banned address\'s SYNs', afterOther)) - afterFlood, 50, 'the flooding address stays blocked');

    const show = cli(['policy', 'show', 'syn-flood', '--json']);
    assert.equal(show.status, 0, show.stderr);
    const counters = JSON.parse(show.stdout).counters as Record<string, string>;
    assert.equal(counters.fired, '1');
    assert.equal(counters.blocks, '1');
    // Matched: the 100 SYNs that passed, the 101st that fired, the other address's 50, and the
    // server's 150 RSTs (proto tcp); the blocked SYNs never reach the rules.
    assert.equal(counters.matched, '301');

    const events = cli(['events', '--json']);
    assert.equal(events.status, 0, events.stderr);
    const list = events.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; policy: string; src: string; value: string });
    assert.deepEqual(
      list.map((e) => [e.kind, e.policy, e.src]),
      [
        ['fire', 'syn-flood', lab.client.ipv4],
        ['block', 'syn-flood', lab.client.ipv4],
      ],
    );
    assert.equal(list[0]!.value, '101', 'the window held 101 SYNs when it fired');
  });
});
