// The `inject` action in the lab: bae inline between client and server with the agent running;
// a policy whose trigger fires on a live TCP conversation makes the agent inject into it. A RST
// toward the client resets the client's socket (ECONNRESET), a duplicate-ACK storm of 40 toward
// the server arrives there as exactly 40 (dumpcap on the server's interface, counted by tshark),
// and the store holds every injected packet with its policy and reason; a fire that fits several
// flows, and one of a set applied --monitor, are refused. A bad `inject:` is refused
// with the field named and the applied set unchanged; an apply while no agent runs warns. Each
// injection is also a message on a real nats-server (bae.events.<node>.injected / inject-refused).
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NatsBus, type BusMessage } from '../../src/bus';
import { run } from '../../src/lab';
import { Store } from '../../src/store';
import { startNatsServer, type NatsServer } from '../lib/nats-server';
import { forwardIntoNamespace, type NsForward } from '../lib/ns-forward';
import { jsonLines, macOf, makeTempDir, readFrames, startCapture, type JsonLines } from '../reconstruct/inject-lab';
import { createAgentLab, type AgentLab } from './agent-lab';

const SERVER_PORT = 7100;
const RST_PORT = 41001;
const STORM_PORT = 41002;
const WIDE_PORT = 41003;
const MONITOR_PORT = 41004;
const STORM = 40;
/** How long a helper process lives at most (s). */
const CHILD_LIFETIME_S = 120;

function policy(name: string, sport: number, inject: string): string {
  return `apiVersion: bae/v1
kind: Policy
metadata: { name: ${name} }
spec:
  match: { src: 10.199.0.1/32, dst: 10.199.0.2/32, proto: tcp, sport: ${sport}, dport: ${SERVER_PORT} }
  trigger: { when: packets >= 8, within: 30s, scope: conversation }
  actions:
    - inject: ${inject}
`;
}

interface Line {
  ev: string;
  code?: string;
  n?: number;
}

/** A node script in a namespace that prints JSON lines; killed by the test's after(). */
function script(ns: string, code: string): JsonLines<Line> & { lines: Line[] } {
  const j = jsonLines<Line>(ns, code);
  // 15 s unless told: the agent injects after the trigger fired and the fire reached it.
  return { ...j, lines: j.events, waitFor: (pred, what, ms = 15_000) => j.waitFor(pred, what, ms) };
}

describe('the inject action of a policy, carried out by the agent', () => {
  let al: AgentLab;
  const children: ChildProcess[] = [];
  const tmp = makeTempDir();

  // A real nats-server: the agent publishes each injection on bae.events.<node>.<kind>.
  let nats: NatsServer;
  let fwd: NsForward;
  let bus: NatsBus;
  const published: { subject: string; value: Record<string, unknown> }[] = [];

  before(async () => {
    al = createAgentLab('ia');
    nats = await startNatsServer();
    fwd = await forwardIntoNamespace(al.lab.ns.bae, nats.port);
    bus = await NatsBus.open({ url: nats.url });
    bus.subscribe('bae.events.ia1.>', (m: BusMessage) => {
      published.push({ subject: m.subject, value: m.json() as Record<string, unknown> });
    });
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await bus?.close();
    await fwd?.stop();
    al?.teardown();
    await nats?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** A client from `sport` that sends one byte every 100 ms (at most 100), reporting errors. */
  function client(sport: number) {
    const c = script(
      al.lab.client.ns,
      `const net = require('net');
       const out = (e) => process.stdout.write(JSON.stringify(e) + '\\n');
       const s = net.connect({ port: ${SERVER_PORT}, host: '${al.lab.server.ipv4}', localAddress: '${al.lab.client.ipv4}', localPort: ${sport} }, () => {
         s.setNoDelay(true); out({ ev: 'connected' });
         let n = 0;
         const t = setInterval(() => { if (++n > 100 || s.destroyed) { clearInterval(t); return; } s.write('x'); out({ ev: 'sent', n }); }, 100);
       });
       s.on('error', (e) => out({ ev: 'error', code: e.code }));
       s.on('close', () => out({ ev: 'close' }));
       setTimeout(() => process.exit(0), ${CHILD_LIFETIME_S * 1000});`,
    );
    children.push(c.child);
    return c;
  }

  it('refuses a bad inject spec with the field named and leaves the applied set as it was; warns while no agent runs', async () => {
    const load = al.cli(['load', '--iface', al.lab.bae.clientPort, '--peer', al.lab.bae.serverPort]);
    assert.equal(load.status, 0, load.stderr);
    const good = al.cli(['policy', 'apply', al.write('rst.yaml', policy('rst-client', RST_PORT, '{ kind: tcp-rst, toward: source }'))]);
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stderr, /bae: warning: policy 'rst-client' has 'inject', which only a running agent carries out, and none answers on .*: start `bae agent/);
    const before = al.cli(['policy', 'list', '--json']);
    assert.equal(before.status, 0, before.stderr);

    const bad: [string, RegExp][] = [
      ['{ kind: tcp-rst, count: 0 }', /bad\.yaml:8:\d+: policy 'bad': inject\.count 0 is out of range \(1\.\.100000\)/],
      ['{ kind: rst }', /policy 'bad': inject\.kind: 'rst' is not one of tcp-rst, tcp-dup-ack-storm, /],
      ['{ kind: tcp-rst, toward: sideways }', /policy 'bad': inject\.toward: 'sideways' is not one of source, destination/],
      ['{ count: 3 }', /policy 'bad': action 'inject' needs 'kind'/],
      ['{ kind: tcp-dup-ack-storm, count: 100000, rate: 10 }', /policy 'bad': inject: 100000 packets at 10\/s take 10000 s, more than the 60 s/],
      ['{ kind: udp-bad-checksum }', /policy 'bad': inject\.kind: 'udp-bad-checksum' is not one of /],
    ];
    for (const [spec, want] of bad) {
      const res = al.cli(['policy', 'apply', al.write('bad.yaml', policy('bad', RST_PORT, spec))]);
      assert.equal(res.status, 2, `${spec}: ${res.stderr}`);
      assert.match(res.stderr, want, spec);
    }
    const noTrigger = al.cli(['policy', 'apply', al.write('bad.yaml', `apiVersion: bae/v1
kind: Policy
metadata: { name: bad }
spec:
  actions:
    - inject: { kind: tcp-rst }
`)]);
    assert.equal(noTrigger.status, 2, noTrigger.stderr);
    assert.match(noTrigger.stderr, /bad\.yaml:6:7: policy 'bad': action 'inject' needs a trigger: the agent injects once per fire/);
    const afterList = al.cli(['policy', 'list', '--json']);
    assert.equal(afterList.stdout, before.stdout, 'the applied set is unchanged');
  });

  it('a fire on a live conversation resets the client with a RST, a storm of 40 duplicate ACKs arrives as 40, and a fire that fits several flows is refused', async () => {
    // bae inline has no address: the neighbour entries tell the agent where each host is.
    const clientMac = macOf(al.lab.client.ns, al.lab.client.iface);
    const serverMac = macOf(al.lab.server.ns, al.lab.server.iface);
    run(['ip', '-n', al.lab.ns.bae, 'neigh', 'replace', al.lab.client.ipv4, 'lladdr', clientMac, 'dev', al.lab.bae.clientPort, 'nud', 'permanent']);
    run(['ip', '-n', al.lab.ns.bae, 'neigh', 'replace', al.lab.server.ipv4, 'lladdr', serverMac, 'dev', al.lab.bae.serverPort, 'nud', 'permanent']);
    const server = script(
      al.lab.server.ns,
      `const net = require('net');
       const out = (e) => process.stdout.write(JSON.stringify(e) + '\\n');
       const srv = net.createServer((s) => { s.on('data', () => {}); s.on('error', (e) => out({ ev: 'error', code: e.code })); });
       srv.listen(${SERVER_PORT}, '${al.lab.server.ipv4}', () => out({ ev: 'listening' }));
       setTimeout(() => process.exit(0), ${CHILD_LIFETIME_S * 1000});`,
    );
    children.push(server.child);
    await server.waitFor((l) => l.ev === 'listening', 'server listening');

    const agent = await al.startAgent(['--nats', `nats://127.0.0.1:${fwd.port}`, '--node', 'ia1']);
    const storm = al.cli(['policy', 'apply', al.write('storm.yaml', policy('storm-server', STORM_PORT, `{ kind: tcp-dup-ack-storm, count: ${STORM}, rate: 2000, toward: destination }`))]);
    assert.equal(storm.status, 0, storm.stderr);
    assert.doesNotMatch(storm.stderr, /warning/, 'an agent runs: no warning');

    // RST: the 8th packet of the client fires the trigger; the agent resets the client.
    const rst = client(RST_PORT);
    await rst.waitFor((l) => l.ev === 'connected', 'client connected');
    const reset = await rst.waitFor((l) => l.ev === 'error', 'an error on the client socket');
    assert.equal(reset.code, 'ECONNRESET');
    const sentBefore = rst.lines.filter((l) => l.ev === 'sent').length;
    assert.ok(sentBefore >= 5 && sentBefore <= 30, `reset after the trigger fired (${sentBefore} bytes sent)`);

    // Storm: dumpcap on the server counts the duplicate ACKs from bae's server-facing port.
    const portMac = macOf(al.lab.ns.bae, al.lab.bae.serverPort);
    const cap = await startCapture(al.lab, path.join(tmp, 'storm.pcapng'));
    try {
      const c = client(STORM_PORT);
      await c.waitFor((l) => l.ev === 'connected', 'storm client connected');
      await c.waitFor((l) => (l.n ?? 0) >= 12, 'the storm client past its trigger');
      // 40 frames at 2000/s: 20 ms; wait for the agent to say it is done.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const st = JSON.parse(al.cli(['agent', 'status', '--json']).stdout) as { extras: { inject: { injected: number } } };
        if (st.extras.inject.injected >= 2) break;
        assert.ok(Date.now() < deadline, `the agent did not inject twice: ${JSON.stringify(st.extras.inject)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      c.child.kill('SIGKILL');
    } finally {
      await cap.stop();
    }
    const rows = readFrames(cap.file, portMac, ['tcp.srcport', 'tcp.dstport', 'tcp.flags', 'tcp.len']);
    assert.equal(rows.length, STORM, `exactly ${STORM} frames from bae's port: ${JSON.stringify(rows.slice(0, 3))}`);
    assert.ok(rows.every((r) => r['tcp.srcport'] === String(STORM_PORT) && r['tcp.dstport'] === String(SERVER_PORT) && r['tcp.flags'] === '0x0010' && r['tcp.len'] === '0'));

    // A policy that does not name the client's port: three flows between the two fit it, and the
    // fire event names no ports, so the agent refuses and says how to narrow it.
    const wide = al.cli(['policy', 'apply', al.write('wide.yaml', policy('wide', 0, '{ kind: tcp-rst }').replace('sport: 0, ', ''))]);
    assert.equal(wide.status, 0, wide.stderr);
    const w = client(WIDE_PORT);
    await w.waitFor((l) => (l.n ?? 0) >= 8, 'the third client past the trigger');
    type InjectStatus = { enabled: boolean; why: string | null; fires: number; injected: number; refused: number; frames: number; running: number; recent: { outcome: string; policy: string; reason?: string }[] };
    const injectStatus = () => (JSON.parse(al.cli(['agent', 'status', '--json']).stdout) as { extras: { inject: InjectStatus } }).extras.inject;
    for (const deadline = Date.now() + 10_000; injectStatus().refused === 0; ) {
      assert.ok(Date.now() < deadline, 'the wide policy\'s fire was not refused');
      await new Promise((r) => setTimeout(r, 100));
    }
    w.child.kill('SIGKILL');
    const status = injectStatus();
    assert.deepEqual({ ...status, recent: undefined }, { enabled: true, why: null, fires: 3, injected: 2, refused: 1, frames: 1 + STORM, running: 0, recent: undefined });
    const refusal = status.recent.at(-1)!;
    assert.equal(refusal.policy, 'wide');
    assert.match(refusal.reason!, /^3 TCP flows between 10\.199\.0\.1 and 10\.199\.0\.2 fit the policy's match \(.*41003->7100.*\), and a fire event names no ports: narrow match\.sport or match\.dport$/);
    assert.match(al.cli(['agent', 'status']).stdout, /inject actions: 3 fires, 2 injected \(41 frames\), 1 refused, 0 running; last: refused tcp-rst of 'wide'/);

    // `bae policy apply --monitor` makes every rule monitor-only in the kernel: a fire injects nothing.
    const mon = al.cli(['policy', 'apply', '--monitor', al.write('mon.yaml', policy('mon', MONITOR_PORT, '{ kind: tcp-rst }'))]);
    assert.equal(mon.status, 0, mon.stderr);
    const m = client(MONITOR_PORT);
    for (const deadline = Date.now() + 10_000; injectStatus().refused < 2; ) {
      assert.ok(Date.now() < deadline, 'the monitor-only fire was not refused');
      await new Promise((r) => setTimeout(r, 100));
    }
    await m.waitFor((l) => (l.n ?? 0) >= 15, 'the monitored client well past its trigger');
    assert.deepEqual(m.lines.filter((l) => l.ev === 'error' || l.ev === 'close'), [], 'the monitored client was not reset');
    m.child.kill('SIGKILL');
    const monStatus = injectStatus();
    assert.equal(monStatus.fires, 4);
    assert.equal(monStatus.injected, 2);
    assert.match(monStatus.recent.at(-1)!.reason!, /^the set was applied monitor-only \(bae policy apply --monitor\): nothing is injected$/);

    // On the bus: one message per injection, done or refused, in the kernel events' shape.
    const injections = published.filter((p) => /^bae\.events\.ia1\.inject(ed|-refused)$/.test(p.subject));
    assert.deepEqual(
      injections.map((p) => `${p.subject} ${String(p.value.policy)} ${String(p.value.value)}`),
      ['bae.events.ia1.injected rst-client 1', `bae.events.ia1.injected storm-server ${STORM}`, 'bae.events.ia1.inject-refused wide 0', 'bae.events.ia1.inject-refused mon 0'],
    );
    assert.deepEqual((injections[1]!.value.inject as Record<string, unknown>).sport, STORM_PORT);

    assert.equal(await agent.stop(), 0);
    // The store: every packet with the policy, the action and the reason.
    const store = Store.open(al.env.BAE_DB!, { readonly: true });
    try {
      const rstRows = [...store.packets({ kind: 'injected', policy: 'rst-client' })];
      const stormRows = [...store.packets({ kind: 'injected', policy: 'storm-server' })];
      assert.equal(rstRows.length, 1);
      assert.equal(stormRows.length, STORM);
      assert.match(rstRows[0]!.reason!, /^tcp-rst toward source: packets >= 8 fired \(8\)$/);
      assert.ok(stormRows.every((r) => r.action === 'inject' && /^tcp-dup-ack-storm toward destination: packets >= 8 fired/.test(r.reason!)));
      assert.equal(stormRows[0]!.data.toString('hex'), stormRows[STORM - 1]!.data.toString('hex'));
      const events = store.events({ limit: 1000 }).filter((e) => e.kind === 'injected' || e.kind === 'inject-refused');
      assert.deepEqual(events.map((e) => `${e.kind} ${e.policy}`).sort(), ['inject-refused mon', 'inject-refused wide', 'injected rst-client', 'injected storm-server']);
    } finally {
      store.close();
    }
    // `bae events` reads them from the store beside the kernel's fires.
    const ev = al.cli(['events', '--db', al.env.BAE_DB!]);
    assert.equal(ev.status, 0, ev.stderr);
    assert.match(ev.stdout, /injected storm-server 10\.199\.0\.1 -> 10\.199\.0\.2 scope=conversation: injected 40 frame\(s\) of tcp-dup-ack-storm \(ports 41002 -> 7100\) out of to-server/);
    assert.match(ev.stdout, /injected rst-client 10\.199\.0\.2 -> 10\.199\.0\.1 scope=conversation: injected 1 frame\(s\) of tcp-rst \(ports 7100 -> 41001\) out of to-client/);
    assert.match(ev.stdout, /fire +rst-client 10\.199\.0\.1 -> 10\.199\.0\.2/);
  });
});
