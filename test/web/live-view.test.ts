// The live view in a real browser: Debian's chromium, headless, driven by puppeteer-core, in the
// inline lab with `bae agent --http` (test/agent/agent-lab.ts). The browser runs in the bae
// namespace (a wrapper enters it with nsenter) and reads the page over loopback; a second link
// between the client and bae namespaces gives a non-loopback address for the token checks.
// Screenshots of the page go to docs/img/ (docs/web.md shows them).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'puppeteer-core';
import { run, tryRun } from '../../src/lab';
import { CHROMIUM, openLiveView } from './browser';
import { createAgentLab, type AgentLab, type AgentProcess } from '../agent/agent-lab';
import { REPO } from '../lib/bae-cli';

/** The block must show on the page within this long after the kernel's event (the figure). */
const BLOCK_BUDGET_MS = 250;
const BAE_ADDR = '10.199.77.1';
const PEER_ADDR = '10.199.77.2';
const IMG_DIR = path.join(REPO, 'docs/img');

const SYN_FLOOD = `apiVersion: bae/v1
kind: Policy
metadata: { name: syn-flood }
spec:
  match: { proto: tcp }
  trigger: { when: tcp.syn > 100, within: 1s, scope: source }
  actions:
    - block: { ttl: 120s }
`;

/** curl in a namespace: the status code and body. */
function curl(ns: string, args: readonly string[]): { status: number; body: string } {
  const res = spawnSync('ip', ['netns', 'exec', ns, 'curl', '-sS', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}', ...args], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(res.status, 0, `curl ${args.join(' ')}: ${res.stderr}`);
  const nl = res.stdout.lastIndexOf('\n');
  return { status: Number(res.stdout.slice(nl + 1)), body: res.stdout.slice(0, nl) };
}

interface BlockView {
  address: string;
}

describe('the live view in a browser, in the lab', () => {
  let al: AgentLab;
  let agent: AgentProcess;
  let browser: Browser | undefined;
  let page: Page;
  let port: number;
  let token: string;
  let clientIp: string;

  before(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      // Not a skip: a machine without the browser fails here (scripts/install-deps.sh installs it).
      throw new Error(`${CHROMIUM} is missing: run scripts/install-deps.sh (Debian's chromium)`);
    }
    al = createAgentLab('web');
    const { lab } = al;
    clientIp = lab.client.ipv4;
    // A second link, client <-> bae, with addresses: the non-loopback way to the live view.
    const a = `bt${process.pid}wa`;
    const b = `bt${process.pid}wb`;
    run(['ip', 'link', 'add', a, 'netns', lab.ns.client, 'type', 'veth', 'peer', 'name', b, 'netns', lab.ns.bae]);
    run(['ip', '-n', lab.ns.client, 'addr', 'add', `${PEER_ADDR}/24`, 'dev', a]);
    run(['ip', '-n', lab.ns.bae, 'addr', 'add', `${BAE_ADDR}/24`, 'dev', b]);
    run(['ip', '-n', lab.ns.client, 'link', 'set', a, 'up']);
    run(['ip', '-n', lab.ns.bae, 'link', 'set', b, 'up']);

    token = crypto.randomBytes(24).toString('base64url');
    const tokenFile = al.write('http-token', token + '\n');
    fs.chmodSync(tokenFile, 0o600);
    agent = await al.startAgent(['--http', '0.0.0.0:0', '--http-admin', '--http-token', tokenFile]);
    const m = /live view at http:\/\/[^:]+:(\d+)\//.exec(agent.stdout());
    assert.ok(m, `the agent names the live view's address: ${agent.stdout()}`);
    port = Number(m[1]);
    const applied = al.cli(['policy', 'apply', al.write('syn-flood.yaml', SYN_FLOOD)]);
    assert.equal(applied.status, 0, `policy apply: ${applied.stderr}`);

    ({ browser, page } = await openLiveView(al, lab.ns.bae, port, 1000));
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await agent?.stop();
      al?.teardown();
    }
  });

  it("shows the client-server conversation's counters rising while traffic flows", async () => {
    const { lab } = al;
    const conv = `tr[data-conv="${lab.client.ipv4} ${lab.server.ipv4}"] td.packets`;
    const ping = spawn('ip', ['netns', 'exec', lab.client.ns, 'timeout', '20', 'ping', '-n', '-q', '-c', '60', '-i', '0.05', '-W', '1', lab.server.ipv4], { stdio: 'ignore' });
    const done = new Promise<number | null>((resolve) => ping.on('exit', (code) => resolve(code)));
    const seen: number[] = [];
    const deadline = Date.now() + 15_000;
    let exit: number | null | undefined;
    void done.then((c) => (exit = c));
    while (Date.now() < deadline && exit === undefined) {
      const v = await page.evaluate(`document.querySelector(${JSON.stringify(conv)})?.dataset.value ?? null`).catch(() => null);
      if (v !== null && v !== undefined) seen.push(Number(v));
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(await done, 0, 'every ping was answered');
    // After the traffic: one more push shows all of it (60 requests and 60 replies).
    await page.waitForFunction(`Number(document.querySelector(${JSON.stringify(conv)})?.dataset.value ?? 0) >= 120`, { timeout: 5000 });
    const distinct = [...new Set(seen)];
    assert.ok(distinct.length >= 4, `the counter took at least 4 values while the traffic flowed: ${seen.join(' ')}`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, `the counter never went down: ${seen.join(' ')}`);

    // The conversation's profile: size histogram and TCP facts, pushed while it is open.
    await page.click(`tr[data-conv="${lab.client.ipv4} ${lab.server.ipv4}"]`);
    await page.waitForSelector('#profile .facts', { timeout: 5000 });
    const facts = await page.$eval('#profile .facts', (el) => el.textContent ?? '');
    assert.match(facts, /A→B\s*6\d packets/, `the profile shows the client's packets: ${facts}`);
    // The inter-arrival histogram: the requests (A->B) and replies (B->A), 50 ms apart, land in
    // 10-100 ms, or 100 ms-1 s between packets of one CPU copy when a CPU was skipped.
    const iatSum = `JSON.parse(document.querySelector('#iat-hist')?.dataset.values ?? '[[],[]]').map((d) => (d[4] ?? 0) + (d[5] ?? 0))`;
    await page.waitForFunction(`${iatSum}.every((n) => n >= 50)`, { timeout: 5000 }).catch(() => undefined);
    const iat = JSON.parse(String(await page.evaluate(`document.querySelector('#iat-hist')?.dataset.values ?? '[]'`))) as number[][];
    for (const [i, name] of ['A→B', 'B→A'].entries()) {
      assert.equal(iat[i]?.length, 8, `${name}: 8 inter-arrival buckets: ${JSON.stringify(iat)}`);
      assert.ok(iat[i]![4]! + iat[i]![5]! >= 50, `${name}: the 60 pings' gaps in 10 ms - 1 s: ${JSON.stringify(iat)}`);
    }
    // Drawn: uPlot paints the bars into its canvas in the series' colours (blue A->B, red B->A).
    const painted = (await page.evaluate(`(() => {
      const canvas = document.querySelector('#iat-hist canvas');
      const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let blue = 0;
      let red = 0;
      for (let i = 0; i < px.length; i += 4) {
        if (px[i + 3] === 0) continue;
        if (px[i + 2] - px[i] > 60) blue++;
        if (px[i] - px[i + 2] > 60) red++;
      }
      return { blue, red };
    })()`)) as { blue: number; red: number };
    assert.ok(painted.blue > 50 && painted.red > 50, `the inter-arrival chart has bars of both directions: ${JSON.stringify(painted)}`);
    await new Promise((r) => setTimeout(r, 1500)); // a few pushes into the profile's charts
    fs.mkdirSync(IMG_DIR, { recursive: true });
    await page.screenshot({ path: path.join(IMG_DIR, 'live-view-profile.png'), fullPage: true });
    await page.click('#profile button');
  });

  it(`shows a SYN flood's block within ${BLOCK_BUDGET_MS} ms of the kernel's event`, async (t) => {
    const { lab } = al;
    // Stamped in the page the moment the row is in the DOM (same host clock as the agent's).
    await page.evaluate(`
      window.blockSeenAt = null;
      new MutationObserver(() => {
        if (window.blockSeenAt === null && document.querySelector('#blocks tr[data-address="${clientIp}"]')) window.blockSeenAt = Date.now();
      }).observe(document.body, { subtree: true, childList: true });`);
    run(['ip', 'netns', 'exec', lab.client.ns, 'ping', '-c', '1', '-W', '2', lab.server.ipv4]);
    const flood = tryRun(['ip', 'netns', 'exec', lab.client.ns, 'timeout', '20', 'hping3', '-q', '-S', '-p', '4444', '-c', '300', '-i', 'u2000', lab.server.ipv4]);
    assert.match(flood.stdout + flood.stderr, /300 packets transmitted/, `hping3: ${flood.stderr}`);
    await page.waitForFunction('window.blockSeenAt !== null', { timeout: 10_000 });
    const seenAt = (await page.evaluate('window.blockSeenAt')) as number;
    const events = (await page.evaluate(`fetch('/api/events').then((r) => r.json())`)) as { events: unknown[] };
    const block = (events.events as { kind: string; src: string; time: string; timeNs: string }[]).find((e) => e.kind === 'block' && e.src === clientIp);
    assert.ok(block, `the agent has the kernel's block event: ${JSON.stringify(events)}`);
    const latencyMs = seenAt - Date.parse(block.time);
    t.diagnostic(`kernel block event at ${block.time}; the page's blocklist row appeared ${latencyMs} ms later`);
    assert.ok(latencyMs > -5, `the row cannot come before the event (${latencyMs} ms)`);
    assert.ok(latencyMs < BLOCK_BUDGET_MS, `the block showed ${latencyMs} ms after the kernel's event`);
    // The history (the agent's store) has the block too.
    const history = (await page.evaluate(`fetch('/api/history?from=' + (Date.now() - 600000)).then((r) => r.json())`)) as { stored: boolean; rows: { kind: string; src: string }[] };
    assert.equal(history.stored, true, 'the agent hands its store to the live view');
    assert.ok(history.rows.some((r) => r.kind === 'block' && r.src === clientIp), `the stored history has the block: ${JSON.stringify(history).slice(0, 500)}`);
    // The events list shows the trigger's fire and the block.
    await page.waitForFunction(`[...document.querySelectorAll('#events .kind-block')].some((d) => d.textContent.includes('${clientIp}'))`, { timeout: 5000 });
    await page.waitForFunction(`document.querySelector('#policies tr[data-policy="syn-flood"] td.fired')?.textContent === '1'`, { timeout: 5000 });
    await page.screenshot({ path: path.join(IMG_DIR, 'live-view.png'), fullPage: true });
  });

  it('refuses a cross-site POST and a POST without the session token; the block stays', async () => {
    // Another site on the same host (a static server on another port: another origin) whose page
    // submits a form to the live view, the classic cross-site request forgery.
    const evilDir = path.join(al.runDir, 'evil');
    fs.mkdirSync(evilDir);
    fs.writeFileSync(
      path.join(evilDir, 'index.html'),
      `<form method="POST" action="http://127.0.0.1:${port}/api/unblock" enctype="text/plain"><input name='{"address":"${clientIp}","x":"' value='"}'></form>` +
        '<script>document.forms[0].submit()</script>',
    );
    // ip netns exec execs python3 (no fork): killing this pid ends the server.
    const site = spawn('ip', ['netns', 'exec', al.lab.ns.bae, 'python3', '-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', evilDir], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const sitePort = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the other site did not start within 10 s')), 10_000);
        site.stdout!.on('data', (d: Buffer) => {
          const m = /port (\d+)/.exec(d.toString());
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
      });
      const other = await browser!.newPage();
      try {
        await other.goto(`http://127.0.0.1:${sitePort}/`, { waitUntil: 'load', timeout: 15_000 });
        await other.waitForNavigation({ timeout: 5000 }).catch(() => undefined);
      } finally {
        await other.close();
      }
    } finally {
      site.kill('SIGKILL');
    }
    const deadline = Date.now() + 5000;
    while (!agent.stderr().includes('cross-site request refused') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(agent.stderr(), /cross-site request refused: Origin http:\/\/127\.0\.0\.1:\d+ is not this server/);
    const ns = al.lab.ns.bae;
    const url = `http://127.0.0.1:${port}/api/unblock`;
    const body = JSON.stringify({ address: clientIp });
    const forged = curl(ns, ['-X', 'POST', '-H', 'Origin: http://evil.example', '-H', 'content-type: application/json', '--data', body, url]);
    assert.equal(forged.status, 403, forged.body);
    assert.match(forged.body, /cross-site request refused/);
    const noCsrf = curl(ns, ['-X', 'POST', '-H', `Origin: http://127.0.0.1:${port}`, '-H', 'content-type: application/json', '--data', body, url]);
    assert.equal(noCsrf.status, 403, noCsrf.body);
    assert.match(noCsrf.body, /X-CSRF-Token/);
    const blocks = JSON.parse(al.cli(['blocks', '--json']).stdout) as BlockView[];
    assert.ok(blocks.some((b) => b.address === clientIp), `the block is still in the kernel: ${JSON.stringify(blocks)}`);
  });

  it('unblocks from the page: the entry leaves the kernel map and the client gets through again', async () => {
    await page.click(`#blocks tr[data-address="${clientIp}"] button.unblock`);
    await page.waitForFunction(`!document.querySelector('#blocks tr[data-address="${clientIp}"]')`, { timeout: 5000 });
    const blocks = JSON.parse(al.cli(['blocks', '--json']).stdout) as BlockView[];
    assert.deepEqual(blocks.map((b) => b.address), [], 'the kernel blocklist is empty');
    const ping = tryRun(['ip', 'netns', 'exec', al.lab.client.ns, 'ping', '-n', '-c', '2', '-W', '2', al.lab.server.ipv4]);
    assert.equal(ping.status, 0, `the client reaches the server again: ${ping.stdout}`);
    assert.match(agent.stderr(), /unblocked from the live view/);
  });

  it('beyond loopback: refused without the token (401) or with a wrong one (403), served with it; no secret in the page', () => {
    const ns = al.lab.ns.client;
    const base = `http://${BAE_ADDR}:${port}`;
    const none = curl(ns, [`${base}/api/blocks`]);
    assert.equal(none.status, 401, none.body);
    assert.match(none.body, /needs the token/);
    assert.equal(curl(ns, [`${base}/`]).status, 401, 'the page itself needs the token');
    assert.equal(curl(ns, ['-H', 'Authorization: Bearer not-the-token-at-all', `${base}/api/blocks`]).status, 403);
    const ok = curl(ns, ['-H', `Authorization: Bearer ${token}`, `${base}/api/blocks`]);
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(JSON.parse(ok.body).blocks, []);
    // The login URL sets a session cookie (and drops the token from the address bar).
    const jar = path.join(al.runDir, 'cookies');
    const login = curl(ns, ['-c', jar, `${base}/login?token=${encodeURIComponent(token)}`]);
    assert.equal(login.status, 303);
    const withCookie = curl(ns, ['-b', jar, `${base}/api/session`]);
    assert.equal(withCookie.status, 200, withCookie.body);
    const session = JSON.parse(withCookie.body) as { csrf: string; admin: boolean };
    assert.equal(session.admin, true);
    assert.equal(curl(ns, [`${base}/login?token=wrong`]).status, 403);
    // Neither the token nor a session's CSRF token is in what the page is made of.
    const html = curl(ns, ['-b', jar, `${base}/`]).body;
    const js = curl(ns, ['-b', jar, `${base}/app.js`]).body;
    assert.match(js, /EventSource/);
    for (const secret of [token, session.csrf]) {
      assert.ok(!html.includes(secret) && !js.includes(secret), 'no secret in the page source');
    }
  });
});
