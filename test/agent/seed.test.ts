// The seed's example end to end: "If TCP retransmissions from 192.168.1.100 exceed 5 in 10
// seconds, introduce 100ms latency on all subsequent packets" (policies/slow-retransmitters.yaml
// with the address changed to the lab client's). bae runs inline under `bae agent`; the client's
// TCP upload retransmits for real because a second policy, `loss` of 20 % on that flow, drops its
// segments; the trigger fires (an event) at the 6th retransmission;
// the RTT of that source's later TCP packets rises by 100 ms (± 2) and that of the client's other
// address stays as it was, both against baselines measured in the same run.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO } from '../lib/bae-cli';
import { createAgentLab, median, tcpRtts, uploadFor, type AgentLab } from './agent-lab';

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

      // Loss on the client's upload to port 5400 (above the seed policy, so its window still
      // counts every segment): the client's TCP retransmits what was lost.
      const lossy = al.write(
        'lossy-upload.yaml',
        `apiVersion: bae/v1\nkind: Policy\nmetadata: { name: lossy-upload }\nspec:\n  priority: 200\n  match: { src: ${source}/32, proto: tcp, dport: 5400 }\n  actions:\n    - loss: { probability: 20 }\n`,
      );
      const withLoss = al.cli(['policy', 'apply', lossy]);
      assert.equal(withLoss.status, 0, withLoss.stderr);
      const sent = await uploadFor(al.lab, 5400, 2);
      assert.ok(sent > 0, 'the upload sent data');
      assert.equal(al.cli(['policy', 'delete', 'lossy-upload']).status, 0);

      const events = al.cli(['events', '--json']);
      assert.equal(events.status, 0, events.stderr);
      const fires = events.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { kind: string; policy: string; src: string; scope: string; value: string });
      assert.deepEqual(
        fires.map((e) => [e.kind, e.policy, e.src, e.scope, e.value]),
        [['fire', 'slow-down-retransmitters', source, 'source', '6']],
        'one trigger fire, at the 6th retransmission of the source',
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
