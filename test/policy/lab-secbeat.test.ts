// SecBeat's own scenario in the lab (issue 14): bae inline between client and server, an HTTP
// server (python3 -m http.server, bounded by `timeout`) in the server namespace, and
// policies/secbeat.yaml as shipped but on a shorter time scale (a test copy). A client that asks
// for a missing page 60 times, one connection each, gets exactly 50 error responses, then no
// answer; another client is still served; the block lifts at its expiry; the second offence is
// blocked twice as long (escalation); a protected client is never blocked (refused events); a
// monitor-only node blocks nothing and says what it would have blocked.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run } from '../../src/lab';
import { createBaeLab, type BaeLab } from '../lib/bae-lab';
import { runNodeChild } from '../lib/child';
import { repoRoot } from '../lib/fixtures';

const S = 1_000_000_000n;
// The copy's time scale: the ban 10 s instead of 300 s, escalating x2 per repeat offence, and the
// error window 4 s instead of 60 s. The window stays shorter than the ban, as in the original, so
// a client whose ban ended starts with an empty window.
const TTL_S = 10n;
const WINDOW = '4s';
/** A request that has no answer within this long counts as unanswered (a blocked client). Ten
 * of them (requests 51-60) take 4 s, inside the 10 s ban with room for the `bae` calls that read
 * the block while it is in force (each a Node start, 1-2 s on a busy machine). */
const REQUEST_TIMEOUT_MS = 400;
/** A third address of the client, added by this test, for the protected client. */
const PROTECTED = '10.199.0.4';

interface Reply {
  /** HTTP status; 0: no answer within the timeout; -1: a socket error. */
  status: number;
  /** CLOCK_MONOTONIC ns (the kernel's clock) when the request started and when it ended. */
  startNs: string;
  endNs: string;
}

/**
 * Runs in the client namespace: `count` requests for `urlPath` from `local`, one after the other,
 * each its own connection; or with `untilStatus`, requests every 100 ms until one gets that status
 * (or `deadlineMs` passes). Bounded: every request by REQUEST_TIMEOUT_MS, the whole by the
 * child's timeout.
 */
function requests(bl: BaeLab, o: { local: string; urlPath: string; count?: number; untilStatus?: number; deadlineMs?: number; timeoutMs?: number }): Promise<Reply[]> {
  const args = { server: bl.lab.server.ipv4, timeoutMs: REQUEST_TIMEOUT_MS, count: 1, deadlineMs: 0, ...o };
  return runNodeChild<Reply[]>(
    `
    const http = require('node:http');
    const a = ${JSON.stringify(args)};
    const one = () => new Promise((resolve) => {
      const startNs = String(process.hrtime.bigint());
      let settled = false;
      const done = (status) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ status, startNs, endNs: String(process.hrtime.bigint()) });
        req.destroy();
      };
      const req = http.get({ host: a.server, port: 80, path: a.urlPath, localAddress: a.local, agent: false }, (res) => done(res.statusCode));
      req.on('error', () => done(-1));
      const timer = setTimeout(() => done(0), a.timeoutMs);
    });
    const out = [];
    if (a.untilStatus === undefined) {
      for (let i = 0; i < a.count; i++) out.push(await one());
    } else {
      const end = Date.now() + a.deadlineMs;
      while (Date.now() < end) {
        const r = await one();
        out.push(r);
        if (r.status === a.untilStatus) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return out;`,
    { prefix: ['ip', 'netns', 'exec', bl.lab.client.ns], timeoutMs: 60_000, label: `HTTP client ${o.local}` },
  );
}

interface EventView {
  kind: string;
  policy: string;
  src: string;
  value: string;
  timeNs: string;
}

interface BlockView {
  address: string;
  expiryNs: string;
  offences: number;
}

describe("SecBeat's scenario in the lab", () => {
  let bl: BaeLab;
  let server: ChildProcess | undefined;
  /** Every event `bae events` handed out so far (it drains the ring). */
  const events: EventView[] = [];
  const drainEvents = () => {
    const res = bl.cli(['events', '--json']);
    assert.equal(res.status, 0, `bae events: ${res.stderr}`);
    for (const l of res.stdout.split('\n')) if (l.trim()) events.push(JSON.parse(l) as EventView);
  };
  const blocks = (): BlockView[] => {
    const res = bl.cli(['blocks', '--json']);
    assert.equal(res.status, 0, `bae blocks: ${res.stderr}`);
    return JSON.parse(res.stdout) as BlockView[];
  };
  const statuses = (replies: Reply[]) => replies.map((r) => r.status);

  before(async () => {
    bl = createBaeLab('sb');
    const { lab } = bl;
    const loaded = bl.cli(['load', '--iface', lab.bae.clientPort, '--peer', lab.bae.serverPort]);
    assert.equal(loaded.status, 0, `bae load: ${loaded.stderr}`);
    // A third client address for the protected client (the lab's namespaces are this test's).
    run(['ip', '-n', lab.client.ns, 'addr', 'add', `${PROTECTED}/${lab.ipv4PrefixLen}`, 'dev', lab.client.iface]);
    const www = path.join(bl.runDir, 'www');
    fs.mkdirSync(www);
    fs.writeFileSync(path.join(www, 'index.html'), 'served\n');
    server = spawn('ip', ['netns', 'exec', lab.server.ns, 'timeout', '180', 'python3', '-m', 'http.server', '80', '--bind', lab.server.ipv4, '--directory', www], {
      stdio: 'ignore',
    });
    // Up when it answers (neighbours resolved on the way); at most 10 s.
    const up = await requests(bl, { local: lab.client.ipv4Second, urlPath: '/', untilStatus: 200, deadlineMs: 10_000 });
    assert.equal(up.at(-1)?.status, 200, `the HTTP server did not come up: ${JSON.stringify(statuses(up))}`);
  });
  after(() => {
    if (server?.pid !== undefined && server.exitCode === null) server.kill('SIGTERM');
    bl?.teardown();
  });

  it('50 errors, then no answer; another client served; the block lifts at its expiry; the second offence lasts twice as long', async () => {
    const { lab } = bl;
    const shipped = fs.readFileSync(path.join(repoRoot, 'policies/secbeat.yaml'), 'utf8');
    const copy = shipped
      .replaceAll('block: { ttl: 300s }', `block: { ttl: ${TTL_S}s, escalate: 2, maxTtl: 1h }`)
      .replaceAll('for: 300s', `for: ${TTL_S}s`)
      .replaceAll('within: 60s', `within: ${WINDOW}`);
    assert.equal(copy.split(`ttl: ${TTL_S}s, escalate: 2`).length - 1, 2, 'the copy changed both policies');
    const applied = bl.cli(['policy', 'apply', bl.write('secbeat.yaml', copy)]);
    assert.equal(applied.status, 0, `policy apply: ${applied.stderr}`);
    const client = lab.client.ipv4;

    const first = await requests(bl, { local: client, urlPath: '/missing', count: 60 });
    assert.deepEqual(statuses(first), [...new Array(50).fill(404), ...new Array(10).fill(0)], 'exactly 50 error responses, then no answer');
    const listed = blocks();
    const served = await requests(bl, { local: lab.client.ipv4Second, urlPath: '/', count: 1 });
    assert.deepEqual(statuses(served), [200], 'the other client is still served');

    drainEvents();
    const block1 = events.filter((e) => e.kind === 'block' && e.src === client);
    assert.equal(block1.length, 1, `one block of the client: ${JSON.stringify(events)}`);
    assert.equal(block1[0]!.policy, 'secbeat-http-errors');
    const entry1 = listed.find((b) => b.address === client);
    assert.ok(entry1, `the client is on the blocklist (${JSON.stringify(listed)}, the burst ended ${Number(BigInt(first.at(-1)!.endNs) - BigInt(block1[0]!.timeNs)) / 1e6} ms after the block)`);
    assert.equal(entry1.expiryNs, block1[0]!.value, 'the kernel entry holds the expiry the event named');
    assert.equal(entry1.offences, 1);
    const expiry1 = BigInt(entry1.expiryNs);
    assert.equal(expiry1 - BigInt(block1[0]!.timeNs), TTL_S * S, 'the first block lasts the ttl');
    // The unanswered requests all fell inside the block.
    for (const r of first.slice(50)) assert.ok(BigInt(r.endNs) < expiry1, 'an unanswered request ended before the expiry');

    // The block lifts at its expiry: requests for a page that exists (no error) until one is served.
    const lift = await requests(bl, { local: client, urlPath: '/', untilStatus: 200, deadlineMs: Number(TTL_S) * 1000 + 10_000, timeoutMs: 200 });
    const ok = lift.at(-1)!;
    assert.equal(ok.status, 200, `served again: ${JSON.stringify(statuses(lift))}`);
    assert.ok(BigInt(ok.endNs) >= expiry1, 'not before the expiry');
    // Probes are 100 ms apart plus a 200 ms timeout each: the first one after the expiry answers.
    const lateMs = Number(BigInt(ok.endNs) - expiry1) / 1e6;
    assert.ok(lateMs < 1500, `served ${lateMs.toFixed(0)} ms after the expiry`);
    // Every probe before went unanswered. One that started after the expiry may have, too: a
    // loaded machine can take longer than its 200 ms to answer (lateMs above bounds how long).
    assert.ok(lift.slice(0, -1).every((r) => r.status === 0), `every probe before the one served went unanswered: ${JSON.stringify(statuses(lift))}`);

    // Second offence: the same again, blocked twice as long.
    const second = await requests(bl, { local: client, urlPath: '/missing', count: 60 });
    assert.deepEqual(statuses(second), [...new Array(50).fill(404), ...new Array(10).fill(0)], 'again exactly 50 error responses, then no answer');
    drainEvents();
    const block2 = events.filter((e) => e.kind === 'block' && e.src === client);
    assert.equal(block2.length, 2);
    const entry2 = blocks().find((b) => b.address === client)!;
    assert.equal(entry2.expiryNs, block2[1]!.value);
    assert.equal(entry2.offences, 2, 'bae blocks counts the offences');
    const expiry2 = BigInt(entry2.expiryNs);
    assert.equal(expiry2 - BigInt(block2[1]!.timeNs), 2n * TTL_S * S, 'the second offence: twice the ttl');
    // Past where the first ttl would have ended, the client is still blocked.
    const beyond = BigInt(block2[1]!.timeNs) + TTL_S * S + S / 2n;
    const waitMs = Number(beyond - process.hrtime.bigint()) / 1e6;
    if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    const still = await requests(bl, { local: client, urlPath: '/', count: 1 });
    assert.ok(BigInt(still[0]!.startNs) > beyond - S / 2n && BigInt(still[0]!.endNs) < expiry2);
    assert.deepEqual(statuses(still), [0], 'still blocked after one ttl');
    process.stderr.write(`secbeat lab: ban 1 ${Number(expiry1 - BigInt(block1[0]!.timeNs)) / 1e9} s, served again ${lateMs.toFixed(0)} ms after its expiry; ban 2 ${Number(expiry2 - BigInt(block2[1]!.timeNs)) / 1e9} s\n`);
  });

  it('never blocks a protected client: every error reaches it and the refusal is an event', async () => {
    const prot = bl.cli(['protect', 'add', PROTECTED]);
    assert.equal(prot.status, 0, `bae protect add: ${prot.stderr}`);
    const replies = await requests(bl, { local: PROTECTED, urlPath: '/missing', count: 60 });
    assert.deepEqual(statuses(replies), new Array(60).fill(404), 'all 60 errors reach it');
    drainEvents();
    assert.equal(events.filter((e) => e.kind === 'block' && e.src === PROTECTED).length, 0);
    const refused = events.filter((e) => e.kind === 'refused' && e.src === PROTECTED);
    // The first when the 50th error fired the trigger; while it stays on, each later packet to the
    // client asks again and is refused again.
    assert.ok(refused.length >= 1, 'the refusal is an event');
    assert.equal(refused[0]!.policy, 'secbeat-http-errors');
    assert.ok(!blocks().some((b) => b.address === PROTECTED), 'not on the blocklist');
  });

  it('a monitor-only node blocks nothing and reports what it would have blocked', async () => {
    const { lab } = bl;
    const applied = bl.cli(['policy', 'apply', '--monitor', path.join(bl.runDir, 'secbeat.yaml')]);
    assert.equal(applied.status, 0, `policy apply --monitor: ${applied.stderr}`);
    const other = lab.client.ipv4Second;
    const replies = await requests(bl, { local: other, urlPath: '/missing', count: 60 });
    assert.deepEqual(statuses(replies), new Array(60).fill(404), 'all 60 errors reach it');
    assert.deepEqual(statuses(await requests(bl, { local: other, urlPath: '/', count: 1 })), [200], 'and it is still served');
    drainEvents();
    assert.equal(events.filter((e) => e.kind === 'block' && e.src === other).length, 0, 'no block');
    const would = events.filter((e) => e.kind === 'would-block' && e.src === other);
    assert.ok(would.length >= 1, `a would-block event: ${JSON.stringify(events.filter((e) => e.src === other))}`);
    assert.equal(would[0]!.policy, 'secbeat-http-errors');
    assert.ok(!blocks().some((b) => b.address === other), 'not on the blocklist');
  });
});
