// test-unit: needs no root and no kernel (make test-unit).
// `bae top --url` as a client of an agent's live view: the view's JSON turned back into the
// screen, and every way the other end can fail named (nothing listens, no answer in time, a
// refusal, something that is not bae), against a real HTTP server on loopback; bad arguments.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { BaeError } from '../../src/errors';
import { toJson } from '../../src/json';
import { fetchView, parseViewUrl, renderTop, topFrameOf, type RemoteView } from '../../src/web';
import { assertFails, bae } from '../lib/bae-cli';
import { freePort } from '../lib/nats-server';

const VIEW = {
  nowNs: 5_000_000_000n,
  node: 'edge-1',
  conversations: {
    total: 2,
    matched: 1,
    offset: 0,
    sort: 'bytes',
    filter: '10.0.0.0/24',
    readAtNs: 4_900_000_000n,
    rows: [{ family: 'ipv4', a: '10.0.0.1', b: '10.0.0.2', packets: 12345n, bytes: 2n ** 60n, retransmits: 3n, aToB: { packets: 7n, bytes: 700n }, bToA: { packets: 5n, bytes: 500n }, firstSeenNs: 1n, lastSeenNs: 3_000_000_000n }],
  },
  datapath: { verdicts: { pass: 0n, redirect: 99n, drop: 1n } },
  blocks: [{ address: '192.0.2.7', version: 4, expiryNs: 65_000_000_000n, remainingNs: 60_000_000_000n, offences: 1 }],
};

describe('bae top --url, the client', () => {
  let server: http.Server;
  let base: URL;
  const asked: { url: string; auth: string | undefined }[] = [];
  before(async () => {
    server = http.createServer((req, res) => {
      asked.push({ url: req.url ?? '', auth: req.headers.authorization });
      const u = new URL(req.url ?? '/', 'http://x');
      const mode = u.searchParams.get('filter');
      if (mode === '10.9.9.9/32') return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"beyond loopback the live view needs the token"}');
      if (mode === '10.8.8.8/32') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>a router</html>');
      if (mode === '10.7.7.7/32') return; // never answers
      if (mode === '10.6.6.6/32') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"hello":1}');
      res.writeHead(200, { 'content-type': 'application/json' }).end(toJson(VIEW));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('asks /api/view with the query and the bearer token, and draws what it answers as the local screen', async () => {
    const v = await fetchView(base, { sort: 'bytes', filter: '10.0.0.0/24', limit: 20 }, 'a-token-of-24-characters');
    const last = asked[asked.length - 1]!;
    assert.equal(last.url, '/api/view?sort=bytes&filter=10.0.0.0%2F24&limit=20');
    assert.equal(last.auth, 'Bearer a-token-of-24-characters');
    const f = topFrameOf(v);
    assert.equal(f.nowNs, 5_000_000_000n);
    assert.equal(f.page.rows[0]!.bytes, 2n ** 60n, 'a 64-bit counter keeps every digit');
    assert.equal(f.page.rows[0]!.aToB.packets, 7n);
    assert.equal(f.blocks[0]!.remainingNs, 60_000_000_000n);
    const screen = renderTop(f, 200);
    assert.match(screen, /^bae top — 2 conversations, 1 in 10\.0\.0\.0\/24, sorted by bytes; verdicts: redirect 99, drop 1; 1 blocked/);
    assert.match(screen, /\n10\.0\.0\.1 +10\.0\.0\.2 +12k +1153P +700 +500 +3 +2s\n/, 'the row, idle 2 s (the agent\'s now less its last-seen)');
    assert.match(screen, /BLOCKED\n {2}192\.0\.2\.7 +1m00s left/);
    // Without a token, no Authorization header at all.
    await fetchView(base, {});
    assert.equal(asked[asked.length - 1]!.auth, undefined);
  });

  it('names what went wrong: nothing listens, no answer in time, a refusal, not bae', async () => {
    const port = await freePort();
    const code = async (p: Promise<RemoteView>, c: string, re: RegExp) =>
      assert.rejects(p, (err: unknown) => {
        assert.ok(err instanceof BaeError, String(err));
        assert.equal(err.code, c);
        assert.match(err.message, re);
        return true;
      });
    await code(fetchView(new URL(`http://127.0.0.1:${port}`), {}), 'BAE_NO_AGENT', new RegExp(`^no live view answers at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
    await code(fetchView(base, { filter: '10.7.7.7/32' }, undefined, 300), 'BAE_NO_AGENT', /no answer within 300 ms/);
    await code(fetchView(base, { filter: '10.9.9.9/32' }), 'BAE_AGENT', /refused \(401\): beyond loopback the live view needs the token \(give the token: --token T, --token-file FILE or BAE_HTTP_TOKEN\)/);
    await code(fetchView(base, { filter: '10.8.8.8/32' }), 'BAE_AGENT', /answered 200 with something that is not bae's JSON/);
    await code(fetchView(base, { filter: '10.6.6.6/32' }), 'BAE_AGENT', /answered without a view/);
  });

  it('takes http(s)://HOST:PORT only', () => {
    assert.equal(parseViewUrl('http://[::1]:8080').port, '8080');
    assert.throws(() => parseViewUrl('ws://127.0.0.1:8080'), /expected http:\/\/ or https:\/\//);
    assert.throws(() => parseViewUrl('127.0.0.1:8080'), /not a URL/);
    assert.throws(() => parseViewUrl('not a url'), /not a URL/);
    assert.throws(() => parseViewUrl('http://u:p@h:1'), /no credentials in the URL/);
    assert.throws(() => parseViewUrl('http://h:1/api/view'), /no path or query/);
  });

  it('the command: exit 1 when no agent answers, 2 for bad arguments; nothing else happens', async () => {
    const port = await freePort();
    assertFails(bae(['top', '--url', `http://127.0.0.1:${port}`, '--once']), 1, new RegExp(`^bae: no live view answers at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
    assertFails(bae(['top', '--url', 'ftp://127.0.0.1:1', '--once']), 2, /--url 'ftp:\/\/127\.0\.0\.1:1': expected http:\/\/ or https:\/\//);
    assertFails(bae(['top', '--token', 'x'.repeat(20), '--once']), 2, /--token needs --url/);
    assertFails(bae(['top', '--url', 'http://127.0.0.1:1', '--token', 'short', '--once']), 2, /--token: a token has at least 16 characters/);
    assertFails(bae(['top', '--url', 'http://127.0.0.1:1', '--token-file', '/nonexistent/t', '--once']), 2, /--token-file \/nonexistent\/t: cannot read it \(ENOENT\)/);
  });
});
