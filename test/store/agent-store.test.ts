// The agent stores (bae agent --db, the default): with an agent running inline in the lab, the
// kernel's events of a policy (an `event` on every ICMP packet) land in its store, `bae events`
// reads them there (twice the same: the store keeps them, the ring would not), --since selects
// by time, `bae agent status` counts them, and after the agent stops the store holds the
// events, the applied policy set's YAML as version 1, and profile snapshots.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Store } from '../../src/store';
import { bae } from '../lib/bae-cli';
import { pingReplies } from '../lib/ping';
import { createAgentLab, type AgentLab } from '../agent/agent-lab';

const POLICY = `apiVersion: bae/v1
kind: Policy
metadata: { name: ping-events }
spec:
  match: { proto: icmp }
  actions: [event]
`;

interface EventJson {
  kind: string;
  policy: string;
  src: string;
  dst: string;
  timeNs: string;
}

describe('the agent stores', () => {
  let al: AgentLab;
  before(() => {
    al = createAgentLab('st');
  });
  after(() => al?.teardown());

  it('kernel events, the applied policy version and profile snapshots, and bae events reads them from the store', async () => {
    const db = al.env.BAE_DB!;
    assert.equal(path.dirname(db), al.runDir);
    const agent = await al.startAgent(['--snapshot-interval', '1s']);
    try {
      const applied = al.cli(['policy', 'apply', al.write('ping.yaml', POLICY)]);
      assert.equal(applied.status, 0, applied.stderr);
      assert.equal(pingReplies(al.lab, al.lab.client.ipv4, al.lab.server.ipv4), 3);

      const read = (args: string[] = []) => {
        const res = al.cli(['events', '--json', ...args]);
        assert.equal(res.status, 0, res.stderr);
        return res.stdout.trim() === '' ? [] : res.stdout.trim().split('\n').map((l) => JSON.parse(l) as EventJson);
      };
      let events: EventJson[] = [];
      for (let i = 0; i < 50 && events.length < 6; i++) {
        events = read();
        await new Promise((r) => setTimeout(r, 100));
      }
      // Three echo requests and three replies pass the policy stage.
      assert.equal(events.length, 6, JSON.stringify(events));
      assert.ok(events.every((e) => e.kind === 'match' && e.policy === 'ping-events'));
      assert.deepEqual(new Set(events.map((e) => e.src)), new Set([al.lab.client.ipv4, al.lab.server.ipv4]));
      assert.deepEqual(read(), events, 'read again: the store keeps them');
      assert.deepEqual(read(['--since', '1h']), events);
      assert.deepEqual(read(['--since', new Date(Date.now() + 3_600_000).toISOString()]), []);
      const human = al.cli(['events']);
      assert.match(human.stdout, /match ping-events .* -> .* scope=\S+: matched \(\d+ bytes\)/);

      // A snapshot or two, and the policy poll: polled (1 s snapshots, later on a loaded machine),
      // the line as it must read in the end.
      const want = new RegExp(`store: ${db.replace(/[.]/g, '\\.')}: 6 events, [1-9]\\d* profile snapshots, 1 policy versions`);
      let st = al.cli(['agent', 'status']);
      for (const end = Date.now() + 20_000; st.status === 0 && !want.test(st.stdout) && Date.now() < end; ) {
        await new Promise((r) => setTimeout(r, 250));
        st = al.cli(['agent', 'status']);
      }
      assert.equal(st.status, 0, st.stderr);
      assert.match(st.stdout, want);
    } finally {
      assert.equal(await agent.stop(), 0, agent.stderr());
    }

    const s = Store.open(db, { readonly: true });
    try {
      assert.equal(s.events().length, 6);
      const versions = s.policyVersions();
      assert.equal(versions.length, 1);
      assert.equal(versions[0]!.generation, 1);
      assert.match(versions[0]!.yaml, /name: ping-events/);
      assert.match(versions[0]!.yaml, /proto:\s+- icmp/);
      const snap = s.latestSnapshot();
      assert.ok(snap && snap.conversations >= 1, 'a profile snapshot with the pinged conversation');
      assert.match(snap.body, new RegExp(al.lab.client.ipv4.replace(/[.]/g, '\\.')));
    } finally {
      s.close();
    }
    // No agent now: --db reads the store all the same.
    const res = bae(['events', '--db', db, '--json', '--pin-dir', al.pinDir]);
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.stdout.trim().split('\n').length, 6);
  });
});
