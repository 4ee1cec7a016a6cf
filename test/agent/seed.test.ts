// The seed's example end to end: "If TCP retransmissions from 192.168.1.100 exceed 5 in 10
// seconds, introduce 100ms latency on all subsequent packets" (policies/slow-retransmitters.yaml
// with the address changed to the lab client's). bae runs inline under `bae agent`; the client's
// TCP flow retransmits through crafted segments (hping3 sends one data segment 8 times with the
// same ports and sequence number: bae counts 7 retransmissions); the trigger fires (an event);
// the RTT of that source's later TCP packets rises by 100 ms (± 2) and that of the client's other
// address stays as it was, both against baselines measured in the same run.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tryRun } from '../../src/lab';
import { REPO } from '../lib/bae-cli';
import { createAgentLab, median, tcpRtts, type AgentLab } from './agent-lab';

const SEED = path.join(REPO, 'policies/slow-retransmitters.yaml');

interface ShownPolicy {
  counters: { matched: string; fired: string };
  windows: number;
  activeWindows: number;
}

describe('the seed example: a retransmitting source gets 100 ms of delay', () => {
  let al: AgentLab;
  before(() => {
    al = createAgentLab('sd');
  });
  after(() => al?.teardown());

  it('fires on the 6th retransmission from the client and delays its later TCP packets by 100 ms, not the other address', async (t) => {
    const text = fs.readFileSync(SEED, 'utf8');
    assert.match(text, /src: 192\.168\.1\.100\/32, proto: tcp/);
    assert.match(text, /when: tcp\.retransmits > 5, within: 10s, scope: source/);
    assert.match(text, /- delay: \{ time: 100ms \}/);
    const file = al.write('slow-retransmitters.yaml', text.replaceAll('192.168.1.100', al.lab.client.ipv4));
    const { ipv4: source, ipv4Second: other } = al.lab.client;

    const agent = await al.startAgent();
    try {
      const applied = al.cli(['policy', 'apply', file]);
      assert.equal(applied.status, 0, applied.stderr);

      // Baselines with the policy applied but not fired: the match alone delays nothing.
      const base = median(tcpRtts(al.lab, source, 20));
      const baseOther = median(tcpRtts(al.lab, other, 20));
      const quiet = JSON.parse(al.cli(['policy', 'show', 'slow-down-retransmitters', '--json']).stdout) as ShownPolicy;
      assert.equal(quiet.counters.fired, '0', 'not fired by connection attempts');
      assert.ok(Number(quiet.counters.matched) >= 20, `the probes matched: ${quiet.counters.matched}`);
      assert.equal(base < 5 && baseOther < 5, true, `baselines ${base} / ${baseOther} ms`);

      // One 20-byte segment, 8 times: same ports, same sequence number.
      const burst = tryRun([
        'ip', 'netns', 'exec', al.lab.client.ns, 'timeout', '10', 'hping3', '-q', '-A', '-p', '80', '-s', '40000', '-k', '-M', '1000', '-d', '20',
        '-c', '8', '-i', 'u20000', '-a', source, al.lab.server.ipv4,
      ]);
      assert.match(burst.stdout + burst.stderr, /8 packets transmitted/, `hping3: ${burst.stderr}`);

      const events = al.cli(['events', '--json']);
      assert.equal(events.status, 0, events.stderr);
      const fires = events.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { kind: string; policy: string; src: string; scope: string; value: string });
      assert.deepEqual(
        fires.map((e) => [e.kind, e.policy, e.src, e.scope, e.value]),
        [['fire', 'slow-down-retransmitters', source, 'source', '6']],
        'one trigger fire, by the 6th retransmission of the source',
      );

      const delayed = median(tcpRtts(al.lab, source, 20));
      const otherAfter = median(tcpRtts(al.lab, other, 20));
      t.diagnostic(`median TCP RTT of ${source}: ${base.toFixed(3)} -> ${delayed.toFixed(3)} ms; of ${other}: ${baseOther.toFixed(3)} -> ${otherAfter.toFixed(3)} ms`);
      assert.ok(Math.abs(delayed - base - 100) <= 2, `RTT of ${source}: ${delayed} ms after the fire, ${base} ms before: expected + 100 ms (± 2)`);
      assert.ok(Math.abs(otherAfter - baseOther) <= 2, `RTT of ${other}: ${otherAfter} ms after, ${baseOther} ms before: expected unchanged (± 2)`);

      const shown = JSON.parse(al.cli(['policy', 'show', 'slow-down-retransmitters', '--json']).stdout) as ShownPolicy;
      assert.equal(shown.counters.fired, '1');
      assert.equal(shown.activeWindows, 1, 'the source window is on (no `for`: until the policy is removed)');
    } finally {
      const code = await agent.stop('SIGTERM');
      assert.equal(code, 0, agent.stderr());
    }
  });
});
