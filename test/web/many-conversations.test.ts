// The live view with 100k conversations in the kernel's map (filled directly, in bounded batches):
// the page's first API call and every push stay under 200 ms on the server side, measured in the
// server (the Server-Timing header of the API, `serverMs` of each pushed view), and `bae top
// --once --json` reads the same map.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LAYOUTS, MAPS, numPossibleCpus, openPinnedMap, perCpuStride, type ConvDir } from '../../src/datapath';
import { encodeConvDir } from '../../src/datapath/layout';
import { WebServer } from '../../src/web';
import { REPO } from '../lib/bae-cli';
import { createBaeLab, type BaeLab } from '../lib/bae-lab';

const CONVERSATIONS = 100_000;
const BUDGET_MS = 200;

function dir(packets: number, bytes: number, retransmits: number): ConvDir {
  return {
    packets: BigInt(packets), bytes: BigInt(bytes), firstSeenNs: 1_000_000n, lastSeenNs: 2_000_000n, sizeSumSq: 0n, iatSumNs: 0n, iatSumSq1024ns: 0n,
    sizeHist: Array(8).fill(0n), iatHist: Array(8).fill(0n), tcpFlags: Array(8).fill(0n), retransmits: BigInt(retransmits), outOfOrder: 0n, zeroWindow: 0n,
    httpRequests: 0n, httpResponses: 0n, httpErrors: 0n, http5xx: 0n, sizeMin: 60, sizeMax: 1500, ttlMin: 64, ttlMax: 64, ttlLast: 64, iatCount: 0n,
  };
}

/** Conversation i: 10.(i>>16).(i>>8).(i&255) <-> 172.16.0.1, i+1 packets of 100 bytes on CPU 0, i%7 retransmissions. */
function fill(pinDir: string, n: number): void {
  const map = openPinnedMap(path.join(pinDir, MAPS.convs));
  try {
    const keySize = LAYOUTS.bae_conv_key!.size;
    const valueSize = LAYOUTS.bae_conv!.size;
    const stride = perCpuStride(valueSize);
    const cpus = map.isPerCpu ? numPossibleCpus() : 1;
    const chunk = 10_000;
    for (let start = 0; start < n; start += chunk) {
      const count = Math.min(chunk, n - start);
      const keys = Buffer.alloc(count * keySize);
      const values = Buffer.alloc(count * stride * cpus);
      for (let j = 0; j < count; j++) {
        const i = start + j;
        const k = j * keySize;
        keys[k + LAYOUTS.bae_conv_key!.fields.family!.offset] = 2; // AF_INET
        const a = k + LAYOUTS.bae_conv_key!.fields.addr_a!.offset;
        keys.set([10, (i >> 16) & 255, (i >> 8) & 255, i & 255], a);
        keys.set([172, 16, 0, 1], k + LAYOUTS.bae_conv_key!.fields.addr_b!.offset);
        const v = j * stride * cpus;
        encodeConvDir(dir(i + 1, (i + 1) * 100, i % 7), values, v);
        encodeConvDir(dir(0, 0, 0), values, v + LAYOUTS.bae_conv_dir!.size);
      }
      map.updateBatchFlat(keys, values);
    }
  } finally {
    map.close();
  }
}

function get(url: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    }).on('error', reject);
  });
}

/** The first `count` pushed views of /api/stream (bounded by 20 s). */
function views(url: string, count: number): Promise<{ serverMs: number; readMs: number; batchMs: number; conversations: { total: number; rows: { a: string }[] } }[]> {
  return new Promise((resolve, reject) => {
    const got: { serverMs: number; readMs: number; batchMs: number; conversations: { total: number; rows: { a: string }[] } }[] = [];
    const req = http.get(url, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const msg = buf.slice(0, end);
          buf = buf.slice(end + 2);
          if (!msg.startsWith('event: view\n')) continue;
          got.push(JSON.parse(msg.slice(msg.indexOf('data: ') + 6)));
          if (got.length >= count) {
            clearTimeout(timer);
            req.destroy();
            resolve(got);
          }
        }
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`only ${got.length} views in 20 s`));
    }, 20_000);
    req.on('error', (err) => {
      if (got.length < count) reject(err);
    });
  });
}

describe('the live view with 100k conversations', () => {
  let bl: BaeLab;
  let web: WebServer | undefined;
  before(() => {
    bl = createBaeLab('wp');
    const loaded = bl.cli(['load', '--iface', bl.lab.bae.clientPort, '--max-conversations', '131072']);
    assert.equal(loaded.status, 0, `bae load: ${loaded.stderr}`);
    const t = performance.now();
    fill(bl.pinDir, CONVERSATIONS);
    console.log(`# filled ${CONVERSATIONS} conversations in ${(performance.now() - t).toFixed(0)} ms`);
  });
  after(async () => {
    await web?.close();
    bl?.teardown();
  });

  it(`answers the first page load and every push in under ${BUDGET_MS} ms on the server side`, async (t) => {
    web = await WebServer.start({ listen: { host: '127.0.0.1', port: 0 }, sources: { pinDir: bl.pinDir } });
    // A server walks the map in steps from its start on (and on, slower, while nobody watches):
    // a page finds a complete walk. Only a request before the very first one would wait for it.
    const deadline = Date.now() + 60_000;
    while (web.state.conversations.walks === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(web.state.conversations.walks > 0, 'the server walked the map within 60 s');
    const first = await get(`${web.url}api/conversations?sort=bytes&limit=25`);
    assert.equal(first.status, 200, first.body);
    const firstMs = Number(/app;dur=([\d.]+)/.exec(String(first.headers['server-timing']))![1]);
    const page = JSON.parse(first.body) as { total: number; matched: number; rows: { a: string; bytes: string; packets: string }[] };
    assert.ok(page.total >= CONVERSATIONS && page.total < CONVERSATIONS + 50, `${page.total} conversations: ours and the few the lab itself made (neighbour discovery)`);
    assert.equal(page.rows.length, 25);
    assert.equal(page.rows[0]!.a, '10.1.134.159', 'the largest conversation (i = 99999) comes first');
    assert.equal(page.rows[0]!.bytes, String(CONVERSATIONS * 100));
    const filtered = await get(`${web.url}api/conversations?sort=retrans&filter=10.0.1.0/24&limit=25`);
    const filteredMs = Number(/app;dur=([\d.]+)/.exec(String(filtered.headers['server-timing']))![1]);
    const fp = JSON.parse(filtered.body) as { matched: number; rows: { a: string; retransmits: string }[] };
    assert.equal(fp.matched, 256, 'a /24 holds 256 of them');
    assert.equal(fp.rows[0]!.retransmits, '6');

    const pushed = await views(`${web.url}api/stream?sort=packets&limit=25`, 12);
    const pushMs = pushed.map((v) => v.serverMs);
    for (const v of pushed) assert.ok(v.conversations.total >= CONVERSATIONS);
    t.diagnostic(`first page load (bytes, 25 rows): ${firstMs.toFixed(1)} ms; filtered by a /24, sorted by retransmissions: ${filteredMs.toFixed(1)} ms`);
    t.diagnostic(`pushes (server ms, each with its step of the map walk): ${pushMs.map((m) => m.toFixed(1)).join(' ')}; a whole walk of the map (spread over the pushes) took ${pushed.at(-1)!.readMs.toFixed(0)} ms, of which the kernel's batch lookups ${pushed.at(-1)!.batchMs.toFixed(0)} ms`);
    assert.ok(firstMs < BUDGET_MS, `first page load took ${firstMs} ms`);
    assert.ok(filteredMs < BUDGET_MS, `filtered page took ${filteredMs} ms`);
    assert.ok(Math.max(...pushMs) < BUDGET_MS, `a push took ${Math.max(...pushMs)} ms`);
  });

  it('bae top --once --json shows the same map, sorted and filtered', () => {
    const res = bl.cli(['top', '--once', '--json', '--sort', 'packets', '--rows', '3', '--filter', '10.0.0.0/24']);
    assert.equal(res.status, 0, res.stderr);
    const f = JSON.parse(res.stdout) as { page: { total: number; matched: number; sort: string; rows: { a: string; b: string; packets: string }[] }; datapath: unknown; blocks: unknown[] };
    assert.ok(f.page.total >= CONVERSATIONS);
    assert.equal(f.page.matched, 256);
    assert.deepEqual(f.page.rows.map((r) => [r.a, r.b, r.packets]), [['10.0.0.255', '172.16.0.1', '256'], ['10.0.0.254', '172.16.0.1', '255'], ['10.0.0.253', '172.16.0.1', '254']]);
    assert.deepEqual(f.blocks, []);
    const bad = bl.cli(['top', '--once', '--filter', '10.0.0.300']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^bae: filter: '10\.0\.0\.300' is not an IPv4 or IPv6 address or prefix/);
    const json = bl.cli(['top', '--json']);
    assert.equal(json.status, 2);
    assert.match(json.stderr, /--json needs --once/);
  });

  it('bae top on a terminal refreshes the table and quits on q', async () => {
    // A pseudo-terminal from script(1), in the bae namespace; q typed after a few refreshes.
    const cmd = `${process.execPath} ${path.join(REPO, 'bin/bae')} top --pin-dir ${bl.pinDir} --interval 200 --rows 5`;
    const child = spawn('nsenter', [`--net=/run/netns/${bl.lab.ns.bae}`, '--', 'script', '-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...bl.env, TERM: 'xterm' } });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      const deadline = Date.now() + 15_000;
      while ((out.match(/bae top — /g) ?? []).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.ok((out.match(/bae top — /g) ?? []).length >= 3, `three screens drawn: ${out.slice(-500)}`);
      assert.match(out, /10\.1\.134\.159 +172\.16\.0\.1/, 'the largest conversation on the screen');
      child.stdin!.write('q');
      assert.equal(await exited, 0, `bae top quit on q: ${out.slice(-300)}`);
    } finally {
      clearTimeout(killer);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
