// Two agents on one host, one per pin directory, each with a lab (namespaces) of its own and one
// run directory between them (as /run/bae on a real host): each has its own control socket (it
// follows the pin directory), both are live nodes, and one BlockCommand published once on a real
// nats-server lands in both kernels' blocklists and is enforced in both labs.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { agentSocketPath } from '../../src/agent/client';
import { NatsBus, SUBJECTS } from '../../src/bus';
import { bae } from '../lib/bae-cli';
import { natsServerAvailable, startNatsServer, type NatsServer } from '../lib/nats-server';
import { forwardIntoNamespace, type NsForward } from '../lib/ns-forward';
import { pingReplies } from '../lib/ping';
import { createAgentLab, type AgentLab, type AgentProcess } from './agent-lab';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('two agents on one host', { skip: !natsServerAvailable() && process.env.CI !== 'true' && 'nats-server is not installed (under CI=true the tests run and fail)' }, () => {
  let server: NatsServer;
  const labs: AgentLab[] = [];
  const fwds: NsForward[] = [];
  const agents: AgentProcess[] = [];
  before(async () => {
    server = await startNatsServer();
    const a = createAgentLab('twa');
    labs.push(a);
    labs.push(createAgentLab('twb', { env: { BAE_RUN_DIR: a.runDir } }));
    for (const [i, al] of labs.entries()) {
      const fwd = await forwardIntoNamespace(al.lab.ns.bae, server.port);
      fwds.push(fwd);
      agents.push(await al.startAgent(['--nats', `nats://127.0.0.1:${fwd.port}`, '--node', `edge-${i + 1}`, '--heartbeat', '500ms']));
    }
  });
  after(async () => {
    for (const a of agents) await a.stop('SIGTERM');
    for (const f of fwds) await f.stop();
    for (const al of labs) al.teardown();
    await server?.stop();
  });

  it('each has the control socket of its pin directory, in one run directory', () => {
    const [a, b] = labs as [AgentLab, AgentLab];
    const sa = JSON.parse(a.cli(['agent', 'status', '--json']).stdout) as { pinDir: string; socket: string; pid: number };
    const sb = JSON.parse(b.cli(['agent', 'status', '--json']).stdout) as { pinDir: string; socket: string; pid: number };
    assert.equal(sa.pinDir, a.pinDir);
    assert.equal(sb.pinDir, b.pinDir);
    assert.notEqual(sa.socket, sb.socket);
    assert.notEqual(sa.pid, sb.pid);
    process.env.BAE_RUN_DIR = a.runDir;
    try {
      assert.deepEqual([sa.socket, sb.socket], [agentSocketPath(a.pinDir), agentSocketPath(b.pinDir)]);
    } finally {
      delete process.env.BAE_RUN_DIR;
    }
  });

  it('a block published once is in both kernels\' blocklists and enforced in both labs', async () => {
    for (const al of labs) assert.equal(pingReplies(al.lab, al.lab.client.ipv4, al.lab.server.ipv4, 2), 2, 'pings pass before');
    const bus = await NatsBus.open({ url: server.url });
    try {
      const command = { command_id: randomUUID(), ip: labs[0]!.lab.client.ipv4, reason: 'two agents', duration_seconds: 60, action: 'block', source: 'two-agents.test' };
      // Every agent that handled it answers; published once.
      const replies = (await bus.requestMany(SUBJECTS.block, command, { timeoutMs: 3000, max: 2 })).map((m) => m.json() as { ok: boolean; node: string; duplicate: boolean });
      assert.deepEqual(replies.map((r) => [r.node, r.ok, r.duplicate]).sort(), [['edge-1', true, false], ['edge-2', true, false]]);
    } finally {
      await bus.close();
    }
    for (const al of labs) {
      const blocks = JSON.parse(al.cli(['blocks', '--json']).stdout) as { address: string; remainingMs: number }[];
      assert.deepEqual(blocks.map((b) => b.address), [al.lab.client.ipv4], `${al.pinDir}`);
      assert.ok(blocks[0]!.remainingMs > 50_000 && blocks[0]!.remainingMs <= 60_000);
      assert.equal(pingReplies(al.lab, al.lab.client.ipv4, al.lab.server.ipv4, 2), 0, 'the blocked client gets no reply');
      assert.equal(pingReplies(al.lab, al.lab.client.ipv4Second, al.lab.server.ipv4, 2), 2, 'its other address does');
    }
  });

  it('both are live nodes', async () => {
    let names: string[] = [];
    for (let i = 0; i < 20 && names.length < 2; i++) {
      const res = bae(['nodes', '--nats', server.url, '--json']);
      assert.equal(res.status, 0, res.stderr);
      names = (JSON.parse(res.stdout) as { node: string; live: boolean; pinDir: string }[]).filter((n) => n.live).map((n) => n.node);
      if (names.length < 2) await sleep(250);
    }
    assert.deepEqual(names, ['edge-1', 'edge-2']);
  });
});
