// The live view on NATS, in a real browser (Debian's chromium, headless, puppeteer-core): a real
// nats-server on a free loopback port, two agents, each inline in a lab of its own, on it. The
// page of the first shows both nodes live; a `bae inject` in its lab shows in the page's event
// stream within a second (measured); `bae top --url` prints the conversation rising, from the bae
// namespace (loopback) and from the client's (beyond loopback: the token). Screenshot: docs/img/.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'puppeteer-core';
import { AgentError, agentRequest } from '../../src/agent';
import { run, tryRun } from '../../src/lab';
import { BAE_BIN, REPO } from '../lib/bae-cli';
import { natsServerAvailable, startNatsServer, type NatsServer } from '../lib/nats-server';
import { forwardIntoNamespace, type NsForward } from '../lib/ns-forward';
import { macOf } from '../reconstruct/inject-lab';
import { CHROMIUM, openLiveView } from './browser';
import { createAgentLab, type AgentLab, type AgentProcess } from '../agent/agent-lab';

/** An injected packet's event must be on the page within this long of the frames leaving (the figure). */
const INJECT_BUDGET_MS = 1000;
const BAE_ADDR = '10.199.78.1';
const PEER_ADDR = '10.199.78.2';
const IMG_DIR = path.join(REPO, 'docs/img');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface TopJson {
  nowNs: string;
  page: { total: number; rows: { a: string; b: string; packets: string; bytes: string }[] };
  datapath: { verdicts: Record<string, string> } | null;
  blocks: unknown[];
}

describe('the live view of a fleet on NATS, in a browser', { skip: !natsServerAvailable() && process.env.CI !== 'true' && 'nats-server is not installed (under CI=true the tests run and fail)' }, () => {
  let server: NatsServer;
  const labs: AgentLab[] = [];
  const fwds: NsForward[] = [];
  const agents: AgentProcess[] = [];
  let browser: Browser | undefined;
  let page: Page;
  let port: number;
  let token: string;
  let tokenFile: string;

  /** `bae top ...` in a namespace of the first lab, as a plain child (no --pin-dir: it reads the agent). */
  const top = (ns: string, args: readonly string[], env: Record<string, string> = {}) => {
    const res = tryRun(['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'ip', 'netns', 'exec', ns, process.execPath, BAE_BIN, 'top', ...args]);
    return res;
  };

  before(async () => {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/install-deps.sh (Debian's chromium)`);
    server = await startNatsServer();
    const a = createAgentLab('wfa');
    labs.push(a);
    labs.push(createAgentLab('wfb'));
    // A second link, client <-> bae, in the first lab: the non-loopback way to its live view.
    const { lab } = a;
    const la = `bt${process.pid}fa`;
    const lb = `bt${process.pid}fb`;
    run(['ip', 'link', 'add', la, 'netns', lab.ns.client, 'type', 'veth', 'peer', 'name', lb, 'netns', lab.ns.bae]);
    run(['ip', '-n', lab.ns.client, 'addr', 'add', `${PEER_ADDR}/24`, 'dev', la]);
    run(['ip', '-n', lab.ns.bae, 'addr', 'add', `${BAE_ADDR}/24`, 'dev', lb]);
    run(['ip', '-n', lab.ns.client, 'link', 'set', la, 'up']);
    run(['ip', '-n', lab.ns.bae, 'link', 'set', lb, 'up']);
    token = crypto.randomBytes(24).toString('base64url');
    tokenFile = a.write('http-token', token + '\n');
    fs.chmodSync(tokenFile, 0o600);
    for (const [i, al] of labs.entries()) {
      const fwd = await forwardIntoNamespace(al.lab.ns.bae, server.port);
      fwds.push(fwd);
      const web = i === 0 ? ['--http', '0.0.0.0:0', '--http-token', tokenFile] : [];
      agents.push(await al.startAgent(['--nats', `nats://127.0.0.1:${fwd.port}`, '--node', `web-${i + 1}`, '--heartbeat', '500ms', ...web]));
    }
    const m = /live view at http:\/\/[^:]+:(\d+)\//.exec(agents[0]!.stdout());
    assert.ok(m, `the agent names the live view's address: ${agents[0]!.stdout()}`);
    port = Number(m[1]);

    ({ browser, page } = await openLiveView(a, lab.ns.bae, port, 1100));
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      for (const a of agents) await a.stop('SIGTERM');
      for (const f of fwds) await f.stop();
      for (const al of labs) al.teardown();
      await server?.stop();
    }
  });

  it('shows both nodes live, with mode, ports, heartbeat age, generation and blocks', async () => {
    const [a, b] = labs as [AgentLab, AgentLab];
    await page.waitForFunction(`['web-1', 'web-2'].every((n) => document.querySelector('#nodes tr[data-node="' + n + '"] td.status')?.textContent === 'live')`, { timeout: 10_000 });
    const rows = (await page.$$eval('#nodes tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')))) as string[][];
    assert.deepEqual(rows.map((r) => r[0]), ['web-1', 'web-2']);
    assert.deepEqual(rows[0]!.slice(1, 4), ['live', 'inline', `${a.lab.bae.clientPort}, ${a.lab.bae.serverPort}`]);
    assert.deepEqual(rows[1]!.slice(2, 4), ['inline', `${b.lab.bae.clientPort}, ${b.lab.bae.serverPort}`]);
    for (const r of rows) {
      assert.match(r[4]!, /^\d+(\.\d)?s ago$/, `the heartbeat's age: ${r.join(' | ')}`);
      assert.equal(r[6], '0', `no block yet: ${r.join(' | ')}`);
    }
    // Live: a heartbeat every 500 ms keeps the age under 3 periods, read twice a second apart.
    const ages: number[] = [];
    for (let i = 0; i < 3; i++) {
      ages.push(Number(await page.$eval('#nodes tr[data-node="web-2"] td.age', (td) => td.getAttribute('data-ms'))));
      await sleep(700);
    }
    assert.ok(ages.every((ms) => ms >= 0 && ms <= 1500), `web-2's heartbeat stays fresh on the page: ${ages.join(', ')} ms`);
    // The second node's blocks (an address and a prefix, in its own kernel) show with its next heartbeat.
    for (const target of ['192.0.2.9', '198.51.100.0/24']) {
      const res = b.cli(['block', target, '--ttl', '60s']);
      assert.equal(res.status, 0, res.stderr);
    }
    await page.waitForFunction(`document.querySelector('#nodes tr[data-node="web-2"] td.blocks')?.textContent === '2'`, { timeout: 5000 });
    // The API says the same.
    const nodes = (await page.evaluate(`fetch('/api/nodes').then((r) => r.json())`)) as { bus: string; standalone: boolean; nodes: { node: string; live: boolean; blocks: number }[] };
    assert.equal(nodes.bus, 'nats');
    assert.equal(nodes.standalone, false);
    assert.deepEqual(nodes.nodes.map((n) => [n.node, n.live, n.blocks]), [['web-1', true, 0], ['web-2', true, 2]]);
  });

  it(`shows a packet of \`bae inject\` in the page's event stream within ${INJECT_BUDGET_MS} ms, with its reason, filterable`, async (t) => {
    const [a] = labs as [AgentLab];
    const { lab } = a;
    run(['ip', 'netns', 'exec', lab.client.ns, 'ping', '-n', '-c', '3', '-i', '0.2', '-W', '2', lab.server.ipv4]);
    const latencies: number[] = [];
    const parts: string[] = [];
    const serverMac = macOf(lab.server.ns, lab.server.iface);
    for (let i = 0; i < 3; i++) {
      // Stamped in the page the moment one more injected row is in the DOM (the host's clock, as the frame's).
      await page.evaluate(`
        window.injectSeenAt = null;
        window.injectCount = document.querySelectorAll('#events .kind-injected').length;
        new MutationObserver((_, o) => {
          if (document.querySelectorAll('#events .kind-injected').length > window.injectCount) { window.injectSeenAt = Date.now(); o.disconnect(); }
        }).observe(document.body, { subtree: true, childList: true });`);
      const res = a.cli(['inject', '--conversation', `${lab.client.ipv4},${lab.server.ipv4}`, '--kind', 'ip-bad-checksum', '--seed', String(i + 1), '--sport', '40000', '--dport', '9', '--port', lab.bae.serverPort, '--dst-mac', serverMac, '--json']);
      assert.equal(res.status, 0, `bae inject: ${res.stderr}`);
      const sent = JSON.parse(res.stdout) as { sent: number; frames: { tsNs: string }[] };
      assert.equal(sent.sent, 1);
      await page.waitForFunction('window.injectSeenAt !== null', { timeout: 5000 });
      const rowAt = (await page.evaluate('window.injectSeenAt')) as number;
      // The frame's time (wall clock when it left, ns) against the row's stamp.
      const frameMs = Number(BigInt(sent.frames[0]!.tsNs) / 1_000_000n);
      latencies.push(rowAt - frameMs);
      // Where the time went: the command until it built its event, the agent and the page after.
      const ev = ((await page.evaluate(`fetch('/api/events').then((r) => r.json())`)) as { events: { kind: string; time: string }[] }).events.filter((e) => e.kind === 'injected').pop()!;
      parts.push(`${Date.parse(ev.time) - frameMs}+${rowAt - Date.parse(ev.time)}`);
    }
    t.diagnostic(`the frame left, its event was on the page after ${latencies.map((x) => x.toFixed(0)).join(', ')} ms (the command until its event + the agent and the page: ${parts.join(', ')} ms)`);
    for (const ms of latencies) {
      assert.ok(ms > -5, `the row cannot come before the frame (${ms} ms)`);
      assert.ok(ms < INJECT_BUDGET_MS, `the injected packet showed ${ms} ms after it left`);
    }
    // Its reason and sender are on the row; the event on the bus names the node.
    const text = await page.$eval('#events .kind-injected', (d) => d.textContent ?? '');
    assert.match(text, new RegExp(`injected .*${lab.client.ipv4.replace(/\./g, '\\.')} → ${lab.server.ipv4.replace(/\./g, '\\.')} ip-bad-checksum ×1 \\(bae inject\\)`), text);
    const events = (await page.evaluate(`fetch('/api/events').then((r) => r.json())`)) as { events: { subject: string; kind: string; node: string; reason: string; by: string; port: string }[] };
    const injected = events.events.filter((e) => e.kind === 'injected');
    assert.equal(injected.length, 3, JSON.stringify(events.events.slice(-5)));
    assert.deepEqual([injected[0]!.subject, injected[0]!.node, injected[0]!.reason, injected[0]!.by, injected[0]!.port], ['bae.events.web-1.injected', 'web-1', 'ip-bad-checksum', 'bae inject', lab.bae.serverPort]);
    // Filtered by kind like any event: only the injected ones are listed.
    await page.select('#events select', 'injected');
    const kinds = await page.$$eval('#events .events div', (ds) => ds.map((d) => d.className));
    assert.deepEqual(kinds, ['kind-injected', 'kind-injected', 'kind-injected']);
    fs.mkdirSync(IMG_DIR, { recursive: true });
    await page.screenshot({ path: path.join(IMG_DIR, 'live-view-fleet.png'), fullPage: true });
    await page.select('#events select', '');
  });

  it('shows the frames `bae reconstruct` sent again as a reconstructed event, with the policy, reason and count', async () => {
    const [a] = labs as [AgentLab];
    const { lab } = a;
    const policy = a.write('lossy.yaml', `apiVersion: bae/v1
kind: Policy
metadata: { name: lossy-capture }
spec:
  match: { proto: udp, dst: ${lab.server.ipv4}/32, dport: 9300 }
  actions:
    - loss: { probability: 100 }
    - capture: { drops: true, snaplen: 1536 }
`);
    const applied = a.cli(['policy', 'apply', policy]);
    assert.equal(applied.status, 0, `policy apply: ${applied.stderr}`);
    // What the store holds already (the injected packets of the test before).
    const packets = (): number => {
      const info = a.cli(['store', 'info', '--json']);
      return info.status === 0 ? (JSON.parse(info.stdout) as { counts: { packets: number } }).counts.packets : 0;
    };
    const before = packets();
    const send = tryRun(['ip', 'netns', 'exec', lab.client.ns, 'python3', '-c', `import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range(5): s.sendto(bytes([i]) * 100, ('${lab.server.ipv4}', 9300))`]);
    assert.equal(send.status, 0, send.stderr);
    // The agent stores the five captured drops (its store, --db in the lab's run directory).
    let stored = 0;
    for (let i = 0; i < 50 && stored < 5; i++) {
      stored = packets() - before;
      if (stored < 5) await sleep(100);
    }
    assert.equal(stored, 5, 'the agent stored the five dropped datagrams');
    const res = a.cli(['reconstruct', '--policy', 'lossy-capture', '--json']);
    assert.equal(res.status, 0, `bae reconstruct: ${res.stderr}`);
    assert.equal((JSON.parse(res.stdout) as { sent: number }).sent, 5);
    await page.waitForFunction(`document.querySelector('#events .kind-reconstructed')?.textContent.includes('×5 (bae reconstruct)')`, { timeout: 5000 });
    const events = (await page.evaluate(`fetch('/api/events').then((r) => r.json())`)) as { events: { kind: string; policy: string; reason: string; src: string; dst: string; frames: number; port: string }[] };
    const ev = events.events.filter((e) => e.kind === 'reconstructed');
    assert.equal(ev.length, 1, JSON.stringify(ev));
    assert.deepEqual([ev[0]!.policy, ev[0]!.src, ev[0]!.dst, ev[0]!.frames, ev[0]!.port], ['lossy-capture', lab.client.ipv4, lab.server.ipv4, 5, lab.bae.serverPort]);
    assert.ok(ev[0]!.reason.length > 0, `the drop's reason: ${ev[0]!.reason}`);
    const del = a.cli(['policy', 'delete', 'lossy-capture']);
    assert.equal(del.status, 0, del.stderr);
  });

  it('refuses a malformed packet event on the control socket, naming the field; nothing is published', async () => {
    const [a] = labs as [AgentLab];
    const before = ((await page.evaluate(`fetch('/api/events').then((r) => r.json())`)) as { events: unknown[] }).events.length;
    await assert.rejects(
      agentRequest(a.socket, { op: 'event', pinDir: a.pinDir, events: [{ kind: 'injected', time: new Date().toISOString(), by: 'x', reason: 'r', policy: null, src: '', dst: '', sport: 70000, dport: null, proto: null, port: null, frames: 1 }] }),
      (err: unknown) => err instanceof AgentError && /events\[0\]: event\.sport: expected a port/.test(err.message),
    );
    await assert.rejects(agentRequest(a.socket, { op: 'event', pinDir: '/elsewhere', events: [] }), /this agent serves/);
    await sleep(300);
    const afterCount = ((await page.evaluate(`fetch('/api/events').then((r) => r.json())`)) as { events: unknown[] }).events.length;
    assert.equal(afterCount, before);
  });

  it('bae top --url prints the conversation rising; beyond loopback only with the token', async () => {
    const [a] = labs as [AgentLab];
    const { lab } = a;
    const url = `http://127.0.0.1:${port}`;
    const packetsOf = (j: TopJson) => Number(j.page.rows.find((r) => r.a === lab.client.ipv4 && r.b === lab.server.ipv4)?.packets ?? -1);
    const once = () => {
      const res = top(lab.ns.bae, ['--url', url, '--once', '--json', '--filter', `${lab.client.ipv4}/32`]);
      assert.equal(res.status, 0, `bae top --url: ${res.stderr}`);
      return JSON.parse(res.stdout) as TopJson;
    };
    const seen = [packetsOf(once())];
    for (let i = 0; i < 3; i++) {
      run(['ip', 'netns', 'exec', lab.client.ns, 'ping', '-n', '-q', '-c', '5', '-i', '0.05', '-W', '1', lab.server.ipv4]);
      // The agent walks the map at each push (250 ms): a new count is there within a few pushes.
      let n = seen[seen.length - 1]!;
      for (let k = 0; k < 20 && n <= seen[seen.length - 1]!; k++) {
        await sleep(150);
        n = packetsOf(once());
      }
      seen.push(n);
    }
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]! + 10, `the conversation rose by each ping's 10 packets: ${seen.join(' ')}`);
    const j = once();
    assert.match(j.nowNs, /^\d+$/, 'counters and times are decimal strings, as in the local mode');
    assert.ok(j.datapath && Number(j.datapath.verdicts.redirect ?? j.datapath.verdicts.pass ?? 0) >= 0);
    // Text: the same screen as the local mode, with the conversation.
    const text = top(lab.ns.bae, ['--url', url, '--once']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^bae top — \\d+ conversations`));
    assert.match(text.stdout, new RegExp(lab.client.ipv4.replace(/\./g, '\\.') + ' +' + lab.server.ipv4.replace(/\./g, '\\.')));
    // The live screen (not a terminal here: no raw keys) redraws each --interval until SIGTERM, then exits 0.
    const live = spawn('ip', ['netns', 'exec', lab.ns.bae, process.execPath, BAE_BIN, 'top', '--url', url, '--interval', '200'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let screens = '';
    live.stdout!.on('data', (d: Buffer) => (screens += d.toString()));
    const exited = new Promise<number | null>((resolve) => live.on('exit', (c) => resolve(c)));
    const until = Date.now() + 15_000;
    while ((screens.match(/bae top — /g) ?? []).length < 3 && Date.now() < until && live.exitCode === null) await sleep(100);
    live.kill('SIGTERM');
    const timer = setTimeout(() => live.kill('SIGKILL'), 5000);
    assert.equal(await exited, 0, 'bae top --url ends cleanly on SIGTERM');
    clearTimeout(timer);
    const cleared = screens.split('\u001b[H\u001b[2J').filter((x) => /^bae top — \d+ conversations/.test(x));
    assert.ok(cleared.length >= 3, `three screens or more, each after a clear: ${screens.slice(0, 300)}`);
    // From the client's namespace, beyond loopback: 401 without the token (exit 1, BAE_AGENT), served with it.
    const far = `http://${BAE_ADDR}:${port}`;
    const refused = top(lab.ns.client, ['--url', far, '--once']);
    assert.equal(refused.status, 1, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /^bae: the live view at http:\/\/10\.199\.78\.1:\d+ refused \(401\): .*give the token/m);
    const wrong = top(lab.ns.client, ['--url', far, '--once'], { BAE_HTTP_TOKEN: 'not-the-token-at-all' });
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /refused \(403\)/);
    const withFile = top(lab.ns.client, ['--url', far, '--once', '--json', '--token-file', tokenFile]);
    assert.equal(withFile.status, 0, withFile.stderr);
    assert.ok(packetsOf(JSON.parse(withFile.stdout) as TopJson) >= seen[seen.length - 1]!);
    const withEnv = top(lab.ns.client, ['--url', far, '--once', '--json'], { BAE_HTTP_TOKEN: token });
    assert.equal(withEnv.status, 0, withEnv.stderr);
  });

  it('shows a node that stops as stopped; alone on the in-process bus, the page says the node is standalone', async () => {
    const [a] = labs as [AgentLab, AgentLab];
    await agents[1]!.stop('SIGTERM');
    await page.waitForFunction(`document.querySelector('#nodes tr[data-node="web-2"] td.status')?.textContent === 'stopped'`, { timeout: 5000 });
    // A live `bae top --url` of the first agent shows it gone, and goes on asking.
    const live = spawn('ip', ['netns', 'exec', a.lab.ns.bae, process.execPath, BAE_BIN, 'top', '--url', `http://127.0.0.1:${port}`, '--interval', '200'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let screens = '';
    live.stdout!.on('data', (d: Buffer) => (screens += d.toString()));
    const exited = new Promise<number | null>((resolve) => live.on('exit', (c) => resolve(c)));
    try {
      for (let i = 0; i < 150 && !screens.includes('bae top — '); i++) await sleep(100);
      // The first lab's agent again, without NATS: its page has no fleet.
      await agents[0]!.stop('SIGTERM');
      for (let i = 0; i < 50 && (screens.match(/trying again every 200 ms/g) ?? []).length < 2; i++) await sleep(100);
    } finally {
      live.kill('SIGTERM');
    }
    assert.equal(await exited, 0, 'it ends cleanly on SIGTERM');
    assert.match(screens, /bae top: no live view answers at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\).*; trying again every 200 ms/);
    assert.ok((screens.match(/trying again every 200 ms/g) ?? []).length >= 2, 'asked again at each refresh');
    const solo = await a.startAgent(['--node', 'solo', '--http', '127.0.0.1:0']);
    agents.push(solo);
    const m = /live view at http:\/\/[^:]+:(\d+)\//.exec(solo.stdout());
    assert.ok(m, solo.stdout());
    await page.goto(`http://127.0.0.1:${m[1]}/`, { waitUntil: 'load', timeout: 15_000 });
    await page.waitForSelector('#nodes #standalone', { timeout: 10_000 });
    assert.match(await page.$eval('#nodes #standalone', (p) => p.textContent ?? ''), /this node \(solo\) is standalone: embedded bus/);
    // Its own heartbeat (every 2 s) is the one node it lists.
    await page.waitForSelector('#nodes tr[data-node="solo"]', { timeout: 10_000 });
    const fleet = (await page.evaluate(`fetch('/api/nodes').then((r) => r.json())`)) as { bus: string; standalone: boolean; nodes: { node: string }[] };
    assert.deepEqual([fleet.bus, fleet.standalone], ['memory', true]);
    assert.deepEqual(fleet.nodes.map((n) => n.node), ['solo'], 'its own heartbeat on the in-process bus');
  });
});
