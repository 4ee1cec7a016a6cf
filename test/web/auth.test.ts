// test-unit: needs no root and no kernel (make test-unit).
// The live view's guards without a kernel: who may read (loopback, bearer token, session cookie),
// who may act (admin, Origin, CSRF token), the token file, bad addresses and parameters, and the
// server's answers to bad requests (400 naming the parameter, 404, 403 read-only, 503 when bae is
// not there), and `bae agent`'s --http options refused before anything starts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BaeError } from '../../src/errors';
import { MAX_SESSIONS, WebAuth, WebServer, isLoopback, loadToken, parseHttpListen } from '../../src/web';
import { bae } from '../lib/bae-cli';

const TOKEN = 'a-token-of-more-than-16-chars';

/** A request as WebAuth sees it. */
function req(o: { remote: string; headers?: Record<string, string> }): http.IncomingMessage {
  return { headers: o.headers ?? {}, socket: { remoteAddress: o.remote } } as unknown as http.IncomingMessage;
}

function call(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    r.on('error', reject);
    r.end(opts.body);
  });
}

describe('the live view guards', () => {
  it('tells loopback addresses from others', () => {
    for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
    for (const a of ['10.0.0.1', '::ffff:10.0.0.1', 'fe80::1', '0.0.0.0', '', undefined]) assert.equal(isLoopback(a), false, String(a));
  });

  it('parses --http and names a bad one', () => {
    assert.deepEqual(parseHttpListen('8080'), { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(parseHttpListen('0.0.0.0:0'), { host: '0.0.0.0', port: 0 });
    assert.deepEqual(parseHttpListen('[::1]:9000'), { host: '::1', port: 9000 });
    for (const bad of ['', 'host', '1.2.3.4:70000', ':80', '99999']) assert.throws(() => parseHttpListen(bad), (e: BaeError) => e.code === 'BAE_USAGE' && e.message.includes(`--http '${bad}'`));
  });

  it('lets loopback read without a token, and asks anyone else for it', () => {
    const auth = new WebAuth({ token: TOKEN, admin: false });
    assert.equal(auth.authenticate(req({ remote: '127.0.0.1' })).ok, true);
    const none = auth.authenticate(req({ remote: '10.0.0.2' }));
    assert.equal(none.ok, false);
    assert.equal(!none.ok && none.status, 401);
    const wrong = auth.authenticate(req({ remote: '10.0.0.2', headers: { authorization: 'Bearer nope' } }));
    assert.equal(!wrong.ok && wrong.status, 403);
    const right = auth.authenticate(req({ remote: '10.0.0.2', headers: { authorization: `Bearer ${TOKEN}` } }));
    assert.deepEqual(right, { ok: true, session: undefined, bearer: true });
    const s = auth.newSession();
    const cookie = auth.authenticate(req({ remote: '10.0.0.2', headers: { cookie: `x=1; bae_session=${s.id}` } }));
    assert.equal(cookie.ok && cookie.session?.id, s.id);
    // Without a token (a loopback-only server) nobody is asked.
    assert.equal(new WebAuth({ token: undefined, admin: false }).authenticate(req({ remote: '10.0.0.2' })).ok, true);
  });

  it('lets act only an admin server, from its own page with the session token, or a script with the bearer token', () => {
    const ro = new WebAuth({ token: TOKEN, admin: false });
    const r0 = req({ remote: '127.0.0.1', headers: { authorization: `Bearer ${TOKEN}` } });
    const a0 = ro.authenticate(r0);
    assert.ok(a0.ok);
    assert.match((ro.authorizeAction(r0, a0) as { reason: string }).reason, /read-only: start the agent with --http-admin/);

    const auth = new WebAuth({ token: TOKEN, admin: true });
    const script = req({ remote: '10.0.0.2', headers: { authorization: `Bearer ${TOKEN}` } });
    const as = auth.authenticate(script);
    assert.ok(as.ok);
    assert.deepEqual(auth.authorizeAction(script, as), { ok: true });

    const s = auth.newSession();
    const page = (headers: Record<string, string>) => {
      const r = req({ remote: '127.0.0.1', headers: { host: '127.0.0.1:8080', cookie: `bae_session=${s.id}`, ...headers } });
      const a = auth.authenticate(r);
      assert.ok(a.ok);
      return auth.authorizeAction(r, a);
    };
    assert.deepEqual(page({ origin: 'http://127.0.0.1:8080', 'x-csrf-token': s.csrf }), { ok: true });
    assert.match((page({ origin: 'http://evil.example', 'x-csrf-token': s.csrf }) as { reason: string }).reason, /cross-site request refused: Origin http:\/\/evil\.example/);
    assert.match((page({ 'x-csrf-token': s.csrf }) as { reason: string }).reason, /Origin \(none\)/);
    assert.match((page({ origin: 'http://127.0.0.1:8080' }) as { reason: string }).reason, /X-CSRF-Token/);
    assert.match((page({ origin: 'http://127.0.0.1:8080', 'x-csrf-token': 'x'.repeat(s.csrf.length) }) as { reason: string }).reason, /X-CSRF-Token/);
  });

  it(`keeps at most ${MAX_SESSIONS} sessions, the oldest going first`, () => {
    const auth = new WebAuth({ token: TOKEN, admin: false });
    const first = auth.newSession();
    for (let i = 0; i < MAX_SESSIONS; i++) auth.newSession();
    assert.equal(auth.session(req({ remote: '10.0.0.2', headers: { cookie: `bae_session=${first.id}` } })), undefined);
  });

  it('reads a token file, refuses a bad one by name, and writes a new one 0600', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-test-web-'));
    try {
      const good = path.join(dir, 'good');
      fs.writeFileSync(good, `${TOKEN}\nignored\n`);
      assert.equal(loadToken({ file: good }), TOKEN);
      const short = path.join(dir, 'short');
      fs.writeFileSync(short, 'abc\n');
      assert.throws(() => loadToken({ file: short }), (e: BaeError) => e.code === 'BAE_USAGE' && e.message.includes(short) && /at least 16/.test(e.message));
      assert.throws(() => loadToken({ file: path.join(dir, 'missing') }), (e: BaeError) => e.code === 'BAE_USAGE' && /cannot read it \(ENOENT\)/.test(e.message));
      const at = path.join(dir, 'sub', 'agent.http-token');
      const made = loadToken({ generateAt: at });
      assert.ok(made.length >= 40);
      assert.equal(fs.readFileSync(at, 'utf8'), made + '\n');
      assert.equal(fs.statSync(at).mode & 0o777, 0o600);
      assert.notEqual(loadToken({ generateAt: at }), made, 'a new one at each start');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers bad requests by name, and says when bae is not there', async () => {
    const pinDir = path.join(os.tmpdir(), `bae-test-${process.pid}-nothing-here`);
    await assert.rejects(WebServer.start({ listen: { host: '0.0.0.0', port: 0 }, sources: { pinDir } }), (e: BaeError) => e.code === 'BAE_USAGE' && /needs a token/.test(e.message));
    const web = await WebServer.start({
      listen: { host: '127.0.0.1', port: 0 },
      sources: { pinDir, history: (q) => [{ from: q.fromMs, to: q.toMs, kind: q.kind ?? null }] },
    });
    try {
      const sort = await call(`${web.url}api/conversations?sort=size`);
      assert.equal(sort.status, 400);
      assert.match(JSON.parse(sort.body).error, /sort: 'size' is not one of bytes, packets, retrans/);
      const filter = await call(`${web.url}api/conversations?filter=10.0.0.300`);
      assert.equal(filter.status, 400);
      assert.match(JSON.parse(filter.body).error, /filter: '10\.0\.0\.300' is not an IPv4 or IPv6 address or prefix/);
      const limit = await call(`${web.url}api/conversations?limit=0`);
      assert.equal(limit.status, 400);
      assert.match(JSON.parse(limit.body).error, /limit: '0'/);
      assert.equal((await call(`${web.url}api/nothing`)).status, 404);
      const blocks = await call(`${web.url}api/blocks`);
      assert.equal(blocks.status, 503, blocks.body);
      assert.match(JSON.parse(blocks.body).code, /^BAE_NOT_(ROOT|LOADED)$/);
      const hist = JSON.parse((await call(`${web.url}api/history?from=1000&to=2000&kind=block`)).body);
      assert.deepEqual(hist.rows, [{ from: 1000, to: 2000, kind: 'block' }]);
      assert.equal(hist.stored, true);
      const badHist = await call(`${web.url}api/history?from=yesterday`);
      assert.equal(badHist.status, 400);
      const post = await call(`${web.url}api/unblock`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"address":"10.0.0.1"}' });
      assert.equal(post.status, 403);
      assert.match(JSON.parse(post.body).error, /read-only/);
      const session = JSON.parse((await call(`${web.url}api/session`)).body);
      assert.deepEqual(session, { admin: false, csrf: null, node: null, pushMs: 250 });
    } finally {
      await web.close();
    }
  });

  it('bae agent refuses --http-admin without --http, and a bad --http, before anything starts', () => {
    const a = bae(['agent', '--iface', 'eth9', '--http-admin']);
    assert.equal(a.status, 2, a.stderr);
    assert.match(a.stderr, /^bae: --http-admin needs --http/);
    const b = bae(['agent', '--iface', 'eth9', '--http', 'nowhere']);
    assert.equal(b.status, 2, b.stderr);
    assert.match(b.stderr, /--http 'nowhere': expected \[HOST:\]PORT/);
    const c = bae(['top', '--sort', 'size']);
    assert.equal(c.status, 2, c.stderr);
  });
});
