// The agent as a member of the fleet, end to end: a real nats-server with a user and password
// (spawned here), the lab (client <-> bae inline <-> server), one `bae agent` in the bae namespace
// reaching the server through a forwarder. Its heartbeats make it a live node of `bae nodes`
// (generation and all) until it stops; kernel events emitted while the server is down are held
// and stored once it is back, exact count; `bae events --nats --since` reads them from the stream
// afterwards and --follow gets new ones; credentials that the server stops accepting are logged,
// the datapath keeps enforcing, and reconnects back off (attempts counted in the server's log).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { NatsBus, SUBJECTS } from '../../src/bus';
import { bae, BAE_BIN } from '../lib/bae-cli';
import { storedEventCount } from '../lib/event-stream';
import { natsServerAvailable, startNatsServer, type NatsServer } from '../lib/nats-server';
import { forwardIntoNamespace, type NsForward } from '../lib/ns-forward';
import { pingReplies } from '../lib/ping';
import { createAgentLab, type AgentLab, type AgentProcess } from './agent-lab';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const USER = ['--user', 'fleet', '--pass', 'right-pass'];
const AUTH = ['--nats-user', 'fleet', '--nats-pass', 'right-pass'];

interface NodeJson {
  node: string;
  live: boolean;
  state: string;
  mode: string;
  ifaces: string[];
  generation: number | null;
  intervalMs: number;
  bus: { connected: boolean; buffered: number; dropped: number };
}

/** Echo requests from the client, fast (10 ms apart), bounded; returns how many were sent. */
function pingBurst(al: AgentLab, count: number): number {
  const res = spawnSync('ip', ['netns', 'exec', al.lab.client.ns, 'ping', '-n', '-q', '-c', String(count), '-i', '0.01', '-W', '1', '-I', al.lab.client.ipv4, al.lab.server.ipv4], { encoding: 'utf8', timeout: 10_000 + count * 50 });
  const out = String(res.stdout);
  const m = /(\d+) packets transmitted/.exec(out);
  assert.ok(m, `ping summary: ${out}`);
  return Number(m[1]);
}

/** Events of node f1 and kind `match` that the event stream holds (in its batches). */
async function storedOn(url: string, subject: string): Promise<number> {
  const kind = subject.split('.')[3];
  return (await storedEventCount(url, 'f1', kind, { user: 'fleet', pass: 'right-pass' })).events;
}

describe('the agent in the fleet', { skip: !natsServerAvailable() && process.env.CI !== 'true' && 'nats-server is not installed (under CI=true the tests run and fail)' }, () => {
  let server: NatsServer;
  let al: AgentLab;
  let fwd: NsForward;
  let agentUrl: string;
  let agent: AgentProcess | undefined;
  const matchSubject = SUBJECTS.event('f1', 'match');
  before(async () => {
    server = await startNatsServer({ args: USER });
    al = createAgentLab('flt');
    fwd = await forwardIntoNamespace(al.lab.ns.bae, server.port);
    agentUrl = `nats://127.0.0.1:${fwd.port}`;
    // The password through the environment, as a unit file would pass it.
    agent = await al.startCommand(
      [process.execPath, BAE_BIN, 'agent', '--iface', al.lab.bae.clientPort, '--peer', al.lab.bae.serverPort, '--pin-dir', al.pinDir, '--nats', agentUrl, '--nats-user', 'fleet', '--node', 'f1', '--heartbeat', '1s'],
      { BAE_NATS_PASS: 'right-pass' },
    );
    const policy = al.write('event-icmp.yaml', `apiVersion: bae/v1\nkind: Policy\nmetadata: { name: event-icmp }\nspec:\n  match: { src: ${al.lab.client.ipv4}/32, proto: icmp }\n  actions:\n    - event: {}\n`);
    const applied = al.cli(['policy', 'apply', policy]);
    assert.equal(applied.status, 0, applied.stderr);
  });
  after(async () => {
    await agent?.stop('SIGTERM');
    await fwd?.stop();
    al?.teardown();
    await server?.stop();
  });

  it('is a live node of `bae nodes` with its mode, ports and policy generation', async () => {
    let nodes: NodeJson[] = [];
    for (let i = 0; i < 20; i++) {
      const res = bae(['nodes', '--nats', server.url, ...AUTH, '--json']);
      assert.equal(res.status, 0, res.stderr);
      nodes = JSON.parse(res.stdout) as NodeJson[];
      if (nodes.some((n) => n.generation !== null && n.generation > 0)) break;
      await sleep(250);
    }
    assert.equal(nodes.length, 1, JSON.stringify(nodes));
    const n = nodes[0]!;
    assert.deepEqual([n.node, n.live, n.state, n.mode, n.ifaces, n.intervalMs, n.bus.connected], ['f1', true, 'running', 'inline', ['to-client', 'to-server'], 1000, true]);
    assert.ok(n.generation !== null && n.generation >= 1, `generation ${n.generation}`);
    const text = bae(['nodes', '--nats', server.url, ...AUTH]);
    assert.match(text.stdout, /^f1 +live +inline +to-client,to-server +gen \d+/);
  });

  it('holds the kernel events of an outage and stores each once the server is back; bae events --since reads them', async () => {
    const t0 = new Date();
    const before = pingBurst(al, 100);
    for (let i = 0; i < 100 && (await storedOn(server.url, matchSubject)) < before; i++) await sleep(100);
    assert.equal(await storedOn(server.url, matchSubject), before, 'the events before the outage');
    await sleep(50);
    const t1 = new Date();

    await server.kill();
    const during = pingBurst(al, 300);
    // Down for a while more: the agent keeps enforcing and holding.
    await sleep(1000);
    await server.start();
    let stored = 0;
    for (let i = 0; i < 150 && stored < before + during; i++) {
      await sleep(200);
      stored = await storedOn(server.url, matchSubject).catch(() => 0);
    }
    await sleep(500); // nothing more arrives afterwards (no duplicate)
    assert.equal(await storedOn(server.url, matchSubject), before + during, `every event of the outage stored once (${before} before, ${during} during)`);
    const st = JSON.parse(al.cli(['agent', 'status', '--json']).stdout) as { extras: { bus: { bus: { eventsDropped: number; eventsBuffered: number } } } };
    assert.equal(st.extras.bus.bus.eventsDropped, 0);

    // The stream from a start time: all of them from t0, only the outage's from t1.
    const all = bae(['events', '--nats', server.url, ...AUTH, '--since', t0.toISOString(), '--node', 'f1', '--json']);
    assert.equal(all.status, 0, all.stderr);
    const lines = all.stdout.trim().split('\n').map((l) => JSON.parse(l) as { subject: string; event: { kind: string; src: string } });
    assert.equal(lines.filter((l) => l.subject === matchSubject).length, before + during);
    assert.ok(lines.every((l) => l.subject !== matchSubject || (l.event.kind === 'match' && l.event.src === al.lab.client.ipv4)));
    const since = bae(['events', '--nats', server.url, ...AUTH, '--since', t1.toISOString(), '--node', 'f1', '--json']);
    assert.equal(since.stdout.trim().split('\n').filter((l) => l.includes(matchSubject)).length, during);
    const text = bae(['events', '--nats', server.url, ...AUTH, '--since', '1h', '--node', 'f1']);
    assert.match(text.stdout, new RegExp(`^\\S+ #\\d+ f1 match event-icmp ${al.lab.client.ipv4.replace(/\./g, '\\.')} -> `, 'm'));
  });

  it('bae events --nats --follow prints new events until SIGTERM', async () => {
    const child = spawn(process.execPath, [BAE_BIN, 'events', '--nats', server.url, ...AUTH, '--since', new Date().toISOString(), '--node', 'f1', '--follow', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await sleep(1000);
      const sent = pingBurst(al, 20);
      // Up to 20 s: the child reads from its start time on, so a slow start (node, the connection,
      // the consumer) on a loaded machine delays the lines but loses none.
      for (let i = 0; i < 200 && out.split('\n').filter((l) => l.includes(matchSubject)).length < sent; i++) await sleep(100);
      assert.equal(out.split('\n').filter((l) => l.includes(matchSubject)).length, sent);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });

  it('credentials the server stops accepting: logged, still enforcing, reconnects back off, and back once they match', async () => {
    // A block from the bus first: it must hold through what follows.
    const bus = await NatsBus.open({ url: server.url, auth: { user: 'fleet', pass: 'right-pass' } });
    try {
      const reply = (await bus.request(SUBJECTS.block, { command_id: randomUUID(), ip: al.lab.client.ipv4Second, action: 'block', duration_seconds: 120 }, { timeoutMs: 3000 })).json();
      assert.deepEqual((reply as { ok: boolean }).ok, true);
    } finally {
      await bus.close();
    }
    await server.kill();
    await server.start(['--user', 'fleet', '--pass', 'rotated']);
    const from = server.log().length;
    const windowMs = 7000;
    await sleep(windowMs);
    const refusals = (server.log().slice(from).match(/authentication error/g) ?? []).length;
    // The back-off makes about 4 (0.5, 1, 2, 4 s); each attempt through the forwarder starts a
    // process, so a loaded machine gets fewer through. A fixed 0.5 s retry would make 14.
    assert.ok(refusals >= 1 && refusals <= 6, `${refusals} refused attempts in ${windowMs} ms (back-off: about 4)`);
    assert.equal(agent!.child.exitCode, null, 'the agent still runs');
    assert.match(agent!.stderr(), /authorization violation/);
    assert.equal(pingReplies(al.lab, al.lab.client.ipv4Second, al.lab.server.ipv4, 2), 0, 'the block is still enforced');
    assert.equal(pingReplies(al.lab, al.lab.client.ipv4, al.lab.server.ipv4, 2), 2, 'other traffic passes');
    const st = JSON.parse(al.cli(['agent', 'status', '--json']).stdout) as { extras: { bus: { bus: { connected: boolean } } } };
    assert.equal(st.extras.bus.bus.connected, false);

    await server.kill();
    await server.start(USER);
    let connected = false;
    for (let i = 0; i < 100 && !connected; i++) {
      await sleep(200);
      connected = (JSON.parse(al.cli(['agent', 'status', '--json']).stdout) as { extras: { bus: { bus: { connected: boolean } } } }).extras.bus.bus.connected;
    }
    assert.equal(connected, true, 'reconnected once the credentials match');
    const cli = bae(['unblock', al.lab.client.ipv4Second, '--nats', server.url, ...AUTH]);
    assert.equal(cli.status, 0, cli.stderr);
    let passes = 0;
    for (let i = 0; i < 10 && passes === 0; i++) passes = pingReplies(al.lab, al.lab.client.ipv4Second, al.lab.server.ipv4, 1);
    assert.equal(passes, 1, 'a command after the reconnect is applied');
  });

  it('leaves `bae nodes` at its stop (its last heartbeat says so)', async () => {
    assert.equal(await agent!.stop('SIGTERM'), 0, agent!.stderr());
    agent = undefined;
    const live = bae(['nodes', '--nats', server.url, ...AUTH, '--json']);
    assert.deepEqual(JSON.parse(live.stdout), []);
    const all = JSON.parse(bae(['nodes', '--nats', server.url, ...AUTH, '--all', '--json']).stdout) as NodeJson[];
    assert.deepEqual(all.map((n) => [n.node, n.live, n.state]), [['f1', false, 'stopped']]);
    const wrong = bae(['nodes', '--nats', server.url, '--nats-user', 'fleet', '--nats-pass', 'nope']);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, new RegExp(`^bae: cannot connect to NATS at ${server.url.replace(/\./g, '\\.')}: the server refused the credentials \\(authorization violation\\)`));
  });
});
