// The agent on the bus, end to end with a real nats-server (spawned for this file) and the lab
// (client <-> bae inline <-> server): a BlockCommand published on NATS stops the client's pings;
// the same command_id twice is applied once; a malformed command is answered with its reasons
// and changes nothing; `bae block --nats` reaches the agent; a kernel event reaches a JetStream
// consumer that starts after the agent is gone; SIGTERM leaves the blocks enforcing; a dead
// server stops the start before anything is loaded; ingress mode runs with no delay line.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { NatsBus, SUBJECTS, type BlockCommand } from '../../src/bus';
import { assertFails, BAE_BIN } from '../lib/bae-cli';
import { freePort, natsServerAvailable, startNatsServer, type NatsServer } from '../lib/nats-server';
import { forwardIntoNamespace, type NsForward } from '../lib/ns-forward';
import { pingReplies } from '../lib/ping';
import { createAgentLab, type AgentLab, type AgentProcess } from './agent-lab';

const command = (ip: string, o: Partial<BlockCommand> = {}): BlockCommand => ({
  command_id: randomUUID(),
  ip,
  reason: 'test',
  duration_seconds: 60,
  action: 'block',
  issued_at: new Date().toISOString(),
  source: 'bus.test',
  ...o,
});

/** Polls `bae blocks --json` until `want(addresses)` holds (bounded: 5 s). */
async function waitBlocks(al: AgentLab, want: (addrs: string[]) => boolean): Promise<string[]> {
  let addrs: string[] = [];
  for (let i = 0; i < 50; i++) {
    const res = al.cli(['blocks', '--json']);
    assert.equal(res.status, 0, res.stderr);
    addrs = (JSON.parse(res.stdout) as { address: string }[]).map((b) => b.address);
    if (want(addrs)) return addrs;
    await new Promise((r) => setTimeout(r, 100));
  }
  return addrs;
}

describe('the agent on the bus', { skip: !natsServerAvailable() && process.env.CI !== 'true' && 'nats-server is not installed (under CI=true the tests run and fail)' }, () => {
  let server: NatsServer;
  let al: AgentLab;
  let bus: NatsBus;
  let fwd: NsForward;
  /** The server's URL as the agent in the bae namespace reaches it (through fwd). */
  let agentUrl: string;
  before(async () => {
    server = await startNatsServer();
    al = createAgentLab('bus');
    fwd = await forwardIntoNamespace(al.lab.ns.bae, server.port);
    agentUrl = `nats://127.0.0.1:${fwd.port}`;
    bus = await NatsBus.open({ url: server.url });
  });
  afterEach(() => {
    al?.cli(['unload']);
  });
  after(async () => {
    await bus?.close();
    await fwd?.stop();
    al?.teardown();
    await server?.stop();
  });

  it('applies a BlockCommand from NATS once per command_id, answers a malformed one with its reasons, and publishes kernel events to JetStream', async () => {
    const { lab } = al;
    const agent: AgentProcess = await al.startAgent(['--nats', agentUrl, '--node', 'n1']);
    try {
      assert.match(agent.stdout(), /bus NATS nats:\/\/127\.0\.0\.1:\d+ as node n1/);
      assert.equal(pingReplies(lab, lab.client.ipv4, lab.server.ipv4), 3, 'pings pass before');

      // As a SecBeat orchestrator does: a plain publish, no reply expected.
      const cmd = command(lab.client.ipv4);
      const sentNs = process.hrtime.bigint();
      bus.publish(SUBJECTS.block, cmd);
      await bus.flush();
      assert.deepEqual(await waitBlocks(al, (a) => a.length > 0), [lab.client.ipv4]);
      const blockedNs = process.hrtime.bigint();
      // Its event has the agent's CLOCK_MONOTONIC stamp of the map update (the host's clock, every process's).
      const [applied] = await bus.storedEvents({ filter: 'bae.events.n1.command', max: 1, waitMs: 2000 });
      const stamp = (applied?.value as { command: BlockCommand; appliedNs: string } | undefined) ?? { command: undefined, appliedNs: '' };
      assert.equal(stamp.command?.command_id, cmd.command_id);
      assert.match(stamp.appliedNs, /^\d+$/);
      assert.ok(BigInt(stamp.appliedNs) > sentNs && BigInt(stamp.appliedNs) < blockedNs, `${stamp.appliedNs} within [${sentNs}, ${blockedNs}]`);
      assert.equal(pingReplies(lab, lab.client.ipv4, lab.server.ipv4), 0, 'the blocked client gets no reply');
      assert.equal(pingReplies(lab, lab.client.ipv4Second, lab.server.ipv4), 3, 'its other address does');

      // Lifted by hand; the same command again is not applied a second time.
      assert.equal(al.cli(['unblock', lab.client.ipv4]).status, 0);
      const again = (await bus.request(SUBJECTS.block, cmd, { timeoutMs: 3000 })).json();
      assert.deepEqual(again, { ok: true, node: 'n1', command_id: cmd.command_id, duplicate: true });
      assert.deepEqual(await waitBlocks(al, () => true), [], 'the repeated command_id changed nothing (the reply came after the handling)');
      assert.equal(pingReplies(lab, lab.client.ipv4, lab.server.ipv4), 3);

      // Malformed: answered with every reason, nothing changes.
      const bad = (await bus.request(SUBJECTS.block, { command_id: 'bad-1', ip: '10.199.0.1/24', action: 'block', duration_seconds: 0 }, { timeoutMs: 3000 })).json() as {
        ok: boolean;
        errors: string[];
      };
      assert.equal(bad.ok, false);
      assert.ok(bad.errors.some((e) => /duration_seconds/.test(e)) && bad.errors.some((e) => /has host bits set/.test(e)), JSON.stringify(bad.errors));
      const notJson = await bus.request(SUBJECTS.block, 'not a command', { timeoutMs: 3000 });
      assert.match(JSON.stringify(notJson.json()), /a BlockCommand is a JSON object/);
      assert.deepEqual(await waitBlocks(al, () => true), []);

      // An unblock command lifts a block that a command made.
      const b2 = command(lab.client.ipv4);
      assert.deepEqual((await bus.request(SUBJECTS.block, b2, { timeoutMs: 3000 })).json(), { ok: true, node: 'n1', command_id: b2.command_id, duplicate: false });
      assert.equal(pingReplies(lab, lab.client.ipv4, lab.server.ipv4, 2), 0);
      await bus.request(SUBJECTS.block, command(lab.client.ipv4, { action: 'unblock', duration_seconds: 0 }), { timeoutMs: 3000 });
      assert.equal(pingReplies(lab, lab.client.ipv4, lab.server.ipv4), 3);

      // `bae block --nats` from another process reaches the agent.
      const cli = al.cli(['block', lab.client.ipv4Second, '--ttl', '60s', '--nats', agentUrl, '--reason', 'from the cli']);
      assert.equal(cli.status, 0, cli.stderr);
      assert.match(cli.stdout, /published on bae\.commands\.block \(command [0-9a-f-]{36}\)/);
      assert.deepEqual(await waitBlocks(al, (a) => a.length > 0), [lab.client.ipv4Second]);
      assert.equal(pingReplies(lab, lab.client.ipv4Second, lab.server.ipv4, 2), 0);
      assert.equal(al.cli(['unblock', lab.client.ipv4Second, '--nats', agentUrl]).status, 0);
      assert.deepEqual(await waitBlocks(al, (a) => a.length === 0), []);

      // A kernel event: a policy whose block action fires on the client's second address.
      const policy = al.write(
        'block-second.yaml',
        `apiVersion: bae/v1
kind: Policy
metadata: { name: block-second }
spec:
  match: { src: ${lab.client.ipv4Second}/32, proto: icmp }
  actions:
    - block: { ttl: 30s }
`,
      );
      assert.equal(al.cli(['policy', 'apply', policy]).status, 0);
      assert.equal(pingReplies(lab, lab.client.ipv4Second, lab.server.ipv4, 1), 0);
      const status = JSON.parse(al.cli(['agent', 'status', '--json']).stdout) as { extras: { bus: { commands: { applied: number; duplicates: number; refused: number } } } };
      assert.deepEqual(status.extras.bus.commands, { applied: 5, duplicates: 1, refused: 2, failed: 0 });
      assert.match(al.cli(['agent', 'status']).stdout, /\n {2}bus: NATS nats:\/\/127\.0\.0\.1:\d+ \(connected\), node n1, 5 block commands applied/);
    } finally {
      assert.equal(await agent.stop('SIGTERM'), 0, agent.stderr());
    }
    assert.match(agent.stdout(), /bae agent stopped \(SIGTERM\): .*bae left loaded/);

    // The agent is gone: its block stays in force, and the event stream has what it published.
    assert.equal(pingReplies(lab, lab.client.ipv4Second, lab.server.ipv4, 2), 0, 'the block outlives the agent');
    const events = await bus.storedEvents({ filter: 'bae.events.n1.block', max: 10, waitMs: 1000 });
    assert.ok(events.length >= 1, 'the kernel block event is in the stream');
    const e = events[0]!.value as { node: string; kind: string; policy: string; src: string };
    assert.deepEqual([e.node, e.kind, e.policy, e.src], ['n1', 'block', 'block-second', lab.client.ipv4Second]);
    const commands = await bus.storedEvents({ filter: 'bae.events.n1.command', max: 10, waitMs: 1000 });
    assert.equal(commands.length, 5, 'one command event per applied command');
    assert.equal(al.cli(['unload']).status, 0);
  });

  it('escalates repeat offenders of BlockCommands with `escalate`, the ones of `bae block --nats --escalate` in the same history', async () => {
    const { lab } = al;
    const agent: AgentProcess = await al.startAgent(['--nats', agentUrl, '--node', 'n1']);
    try {
      const escalate = { factor: 2, max_seconds: 3600, forget_seconds: 3600 };
      const listed = () => (JSON.parse(al.cli(['blocks', '--json']).stdout) as { address: string; expiryNs: string; offences: number }[]).find((b) => b.address === lab.client.ipv4);
      // The block's TTL lies between its kernel expiry minus the clock after the command was
      // handled and minus the clock before it was sent (CLOCK_MONOTONIC, the kernel's clock).
      const S = 1_000_000_000n;
      const check = (before: bigint, after: bigint, ttlS: bigint, offences: number, what: string) => {
        const b = listed();
        assert.equal(b?.offences, offences, what);
        const expiry = BigInt(b!.expiryNs);
        assert.ok(expiry - after <= ttlS * S && ttlS * S <= expiry - before, `${what}: ${ttlS} s within [${(expiry - after) / 1_000_000n}, ${(expiry - before) / 1_000_000n}] ms`);
      };
      // The agent answers once it has subscribed (bounded: 5 s).
      const request = async (c: BlockCommand) => {
        for (let i = 0; ; i++) {
          try {
            return (await bus.request(SUBJECTS.block, c, { timeoutMs: 3000 })).json() as { ok: boolean };
          } catch (err) {
            if (i >= 50 || !/no subscriber/.test((err as Error).message)) throw err;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      };
      for (const [ttlS, n] of [[60n, 1], [120n, 2]] as const) {
        const before = process.hrtime.bigint();
        const reply = await request(command(lab.client.ipv4, { duration_seconds: 60, escalate }));
        const after = process.hrtime.bigint();
        assert.equal(reply.ok, true, JSON.stringify(reply));
        check(before, after, ttlS, n, `command ${n}`);
      }
      const before = process.hrtime.bigint();
      const cli = al.cli(['block', lab.client.ipv4, '--ttl', '60s', '--escalate', '2', '--max-ttl', '1h', '--forget', '1h', '--nats', agentUrl]);
      assert.equal(cli.status, 0, cli.stderr);
      await waitBlocks(al, () => (listed()?.offences ?? 0) >= 3);
      check(before, process.hrtime.bigint(), 240n, 3, '`bae block --nats --escalate 2` after two commands: x4');
      assert.equal(pingReplies(lab, lab.client.ipv4, lab.server.ipv4, 1), 0, 'enforced');
    } finally {
      assert.equal(await agent.stop('SIGTERM'), 0, agent.stderr());
    }
  });

  it('applies policy files sent by `bae policy apply --nats` to one node or all, and answers with the generation or the error', async () => {
    const agent = await al.startAgent(['--nats', agentUrl, '--node', 'n2']);
    try {
      const count = al.write('count-icmp.yaml', `apiVersion: bae/v1\nkind: Policy\nmetadata: { name: count-icmp }\nspec:\n  match: { proto: icmp }\n  actions:\n    - count: {}\n`);
      const one = al.cli(['policy', 'apply', count, '--nats', agentUrl, '--node', 'n2', '--json']);
      assert.equal(one.status, 0, one.stderr);
      const replies = JSON.parse(one.stdout) as { ok: boolean; node: string; generation: number; policies: string[]; added: string[] }[];
      assert.equal(replies.length, 1);
      assert.deepEqual([replies[0]!.ok, replies[0]!.node, replies[0]!.policies, replies[0]!.added], [true, 'n2', ['count-icmp'], ['count-icmp']]);
      assert.ok(replies[0]!.generation >= 1);
      const list = JSON.parse(al.cli(['policy', 'list', '--json']).stdout) as { name: string }[];
      assert.deepEqual(list.map((p) => p.name), ['count-icmp'], 'the node applied it');

      const all = al.cli(['policy', 'apply', count, '--nats', agentUrl, '--all', '--timeout', '1500']);
      assert.equal(all.status, 0, all.stderr);
      assert.match(all.stdout, /^n2: 1 policy active \(generation \d+\)\n$/);

      // Refused on the node (its interface does not exist there): the node's error, exit 2, nothing changed.
      const badIface = al.write('bad-iface.yaml', `apiVersion: bae/v1\nkind: Policy\nmetadata: { name: bad-iface }\nspec:\n  match: { iface: nosuch0 }\n  actions:\n    - drop: {}\n`);
      assertFails(al.cli(['policy', 'apply', badIface, '--nats', agentUrl, '--node', 'n2']), 2, /^bae: node n2: bad-iface\.yaml:\d+:\d+: policy 'bad-iface': .*nosuch0/);
      // Refused here, before anything is sent.
      const broken = al.write('broken.yaml', 'apiVersion: bae/v1\nkind: Policy\nmetadata: { name: broken }\nspec:\n  actions:\n    - explode: {}\n');
      assertFails(al.cli(['policy', 'apply', broken, '--nats', agentUrl, '--node', 'n2']), 2, /^bae: .*broken\.yaml:6:7/);
      assertFails(al.cli(['policy', 'apply', count, '--nats', agentUrl, '--node', 'nobody']), 1, /^bae: no one answers on bae\.commands\.policy\.nobody/);
      assertFails(al.cli(['policy', 'apply', count, '--nats', agentUrl]), 2, /--node NAME\) or every node \(--all\)/);
      assert.deepEqual((JSON.parse(al.cli(['policy', 'list', '--json']).stdout) as { name: string }[]).map((p) => p.name), ['count-icmp']);
      const st = JSON.parse(al.cli(['agent', 'status', '--json']).stdout) as { extras: { bus: { policy: { applied: number; refused: number } } } };
      assert.deepEqual(st.extras.bus.policy, { applied: 2, refused: 1 });
    } finally {
      assert.equal(await agent.stop('SIGTERM'), 0, agent.stderr());
    }
  });

  it('refuses to start on a NATS server that does not answer, naming it, before anything is loaded', async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const t0 = Date.now();
    await assert.rejects(al.startAgent(['--nats', url]), (err: Error) => {
      assert.match(err.message, new RegExp(`exited \\(1\\) before it was ready: bae: cannot connect to NATS at ${url.replace(/\./g, '\\.')}: connection refused`));
      return true;
    });
    assert.ok(Date.now() - t0 < 10_000, `within the bound (${Date.now() - t0} ms)`);
    assert.match(al.cli(['status']).stdout, /not loaded/);
  });

  it('runs in ingress mode with no delay line, on the in-process bus, and leaves bae loaded', async () => {
    const agent = await al.startCommand([process.execPath, BAE_BIN, 'agent', '--iface', al.lab.bae.clientPort, '--pin-dir', al.pinDir, '--node', 'ing']);
    try {
      assert.match(agent.stdout(), /bae agent running in ingress mode on to-client; .*bus in-process as node ing/);
      const st = al.cli(['agent', 'status']);
      assert.equal(st.status, 0, st.stderr);
      assert.match(st.stdout, /in ingress mode on to-client(.*\n)* {2}delay line: none in ingress mode/);
      assert.match(st.stdout, /bus: in-process, node ing/);
      const file = al.write('slow.yaml', `apiVersion: bae/v1\nkind: Policy\nmetadata: { name: slow }\nspec:\n  match: { proto: icmp }\n  actions:\n    - delay: { time: 10ms }\n`);
      assertFails(al.cli(['policy', 'apply', file]), 2, /needs bae inline/);
    } finally {
      assert.equal(await agent.stop('SIGTERM'), 0, agent.stderr());
    }
    assert.match(al.cli(['status']).stdout, /bae is loaded, ingress mode/);
    assert.equal(al.cli(['unload']).status, 0);
  });
});
