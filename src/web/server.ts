// `bae agent --http HOST:PORT`: the live view (docs/web.md). A Node http server with JSON APIs,
// the page (built by esbuild into dist/web at build time, served from there), and Server-Sent
// Events: every client gets a view about four times a second (its page of conversations, the
// policies, blocks, datapath and agent counters: each read once per push for all clients) and
// every bus event the moment the agent has it; a block or an unblock pushes the blocklist at once.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { SUBJECTS, type Bus, type BusSubscription } from '../bus';
import { BaeError, UsageError } from '../errors';
import { toJson } from '../json';
import { moduleLogger } from '../log';
import { WebAuth, isLoopbackHost, type AuthResult } from './auth';
import { MAX_PAGE_ROWS, checkSortKey, parseFilter, type ConversationQuery } from './conversations';
import { LiveState, type SharedView, type WebSources } from './view';
import { FleetWatch } from './fleet';

const log = moduleLogger('web');

/** Pushes a second (the page's refresh): 250 ms apart. */
export const DEFAULT_PUSH_MS = 250;
/** Events kept for a page that opens later. */
export const RECENT_EVENTS = 500;
/** Events sent to the clients per push interval at most (the rest are kept in the recent list and counted). */
export const MAX_EVENTS_PER_PUSH = 200;
/** Clients of the stream at once (a bound; the next is refused with 503). */
export const MAX_STREAM_CLIENTS = 64;
const MAX_BODY = 64 * 1024;
/** How long the walk goes on at full pace after the last request. */
const WARM_MS = 60_000;
/** An idle server takes one step of the walk every IDLE_EVERY push intervals. */
const IDLE_EVERY = 4;
/** The built page (dist/src/web/server.js -> dist/web/). */
export const DEFAULT_ASSETS_DIR = path.resolve(__dirname, '../../web');
const ASSETS: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/app.css': 'app.css',
};
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export interface WebListen {
  host: string;
  /** 0: any free port (the bound one is in WebServer.url). */
  port: number;
}

/** HOST:PORT, [v6]:PORT, or PORT alone (on 127.0.0.1): what --http takes. */
export function parseHttpListen(text: string): WebListen {
  if (/^\d{1,5}$/.test(text) && Number(text) <= 65535) return { host: '127.0.0.1', port: Number(text) };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--http '${text}': expected [HOST:]PORT (8080, 127.0.0.1:8080, 0.0.0.0:8080, [::1]:8080; port 0 picks a free one)`);
  return { host: m[1] ?? m[2]!, port };
}

export interface WebServerOptions {
  listen: WebListen;
  sources: WebSources;
  /** The agent's bus: its events are streamed (absent: no event stream). */
  bus?: Bus;
  /** Required unless the server listens on loopback only. */
  token?: string;
  /** Allow actions (unblock). */
  admin?: boolean;
  pushMs?: number;
  assetsDir?: string;
}

interface StreamClient {
  res: http.ServerResponse;
  query: ConversationQuery;
  /** The conversation whose profile this client follows (?a=&b=), if any. */
  conv?: { a: string; b: string };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A conversation query from URL parameters; a 400 naming the bad one. */
function queryOf(u: URL): ConversationQuery {
  const q: ConversationQuery = {};
  const bad = (err: unknown) => new HttpError(400, (err as Error).message);
  const sort = u.searchParams.get('sort');
  if (sort) {
    try {
      q.sort = checkSortKey(sort);
    } catch (err) {
      throw bad(err);
    }
  }
  const filter = u.searchParams.get('filter');
  if (filter && filter.trim()) {
    try {
      parseFilter(filter);
    } catch (err) {
      throw bad(err);
    }
    q.filter = filter.trim();
  }
  for (const name of ['offset', 'limit'] as const) {
    const v = u.searchParams.get(name);
    if (v === null || v === '') continue;
    const n = Number(v);
    const max = name === 'limit' ? MAX_PAGE_ROWS : 1 << 24;
    if (!/^\d+$/.test(v) || n > max || (name === 'limit' && n < 1)) throw new HttpError(400, `${name}: '${v}' is not a whole number from ${name === 'limit' ? 1 : 0} to ${max}`);
    q[name] = n;
  }
  return q;
}

export class WebServer {
  readonly url: string;
  readonly auth: WebAuth;
  readonly state: LiveState;
  readonly #server: http.Server;
  readonly #assetsDir: string;
  readonly #pushMs: number;
  readonly #clients = new Set<StreamClient>();
  readonly #events: unknown[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** When a client last asked for anything (the walk goes on for WARM_MS after). */
  #lastWantedMs = performance.now();
  #ticks = 0;
  #eventsThisTick = 0;
  /** Events not streamed because more than MAX_EVENTS_PER_PUSH came in one interval. */
  eventsSkipped = 0;
  #sub: BusSubscription | undefined;
  /** The fleet's nodes, from the heartbeats on the bus (absent without a bus). */
  #fleet: FleetWatch | undefined;
  /** Server-side time of the pushes (ms): the last and the largest, and how many. */
  readonly pushStats = { count: 0, lastMs: 0, maxMs: 0 };

  private constructor(server: http.Server, url: string, o: WebServerOptions, auth: WebAuth, state: LiveState) {
    this.#server = server;
    this.url = url;
    this.auth = auth;
    this.state = state;
    this.#assetsDir = o.assetsDir ?? DEFAULT_ASSETS_DIR;
    this.#pushMs = o.pushMs ?? DEFAULT_PUSH_MS;
  }

  static async start(o: WebServerOptions): Promise<WebServer> {
    const loopbackOnly = isLoopbackHost(o.listen.host);
    if (!loopbackOnly && !o.token) throw new UsageError(`--http ${o.listen.host}: beyond loopback the live view needs a token (--http-token FILE, or let the agent write one)`);
    const auth = new WebAuth({ token: o.token, admin: o.admin ?? false });
    const state = new LiveState(o.sources);
    const ready: { server?: WebServer } = {};
    const server = http.createServer((req, res) => {
      if (ready.server) ready.server.#handle(req, res);
      else res.writeHead(503).end();
    });
    server.requestTimeout = 10_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const where = `${o.listen.host.includes(':') ? `[${o.listen.host}]` : o.listen.host}:${o.listen.port}`;
        reject(new BaeError('BAE_AGENT', `cannot serve the live view on ${where}: ${err.code === 'EADDRINUSE' ? 'the address is already in use' : err.code === 'EADDRNOTAVAIL' ? 'no interface here has that address' : err.message}`, { cause: err }));
      });
      server.listen(o.listen.port, o.listen.host, () => resolve());
    });
    server.on('error', (err) => log.error({ err }, 'live view server'));
    const a = server.address() as AddressInfo;
    const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/`;
    const self = new WebServer(server, url, o, auth, state);
    ready.server = self;
    if (o.bus) self.#sub = o.bus.subscribe(SUBJECTS.allEvents, (msg) => self.#onEvent(msg.subject, msg.json()));
    if (o.bus) self.#fleet = new FleetWatch(o.bus);
    self.#timer = setInterval(() => self.#tick(), self.#pushMs);
    self.#timer.unref();
    log.info({ url, admin: auth.admin, tokenRequired: auth.tokenRequired }, 'serving the live view');
    return self;
  }

  /** The URL that logs a browser in (sets the session cookie): printed in the agent's log. */
  loginUrl(token: string): string {
    return `${this.url}login?token=${encodeURIComponent(token)}`;
  }

  get clients(): number {
    return this.#clients.size;
  }

  #send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(toJson(body) + '\n');
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const started = performance.now();
    this.#lastWantedMs = started;
    let u: URL;
    try {
      u = new URL(req.url ?? '/', 'http://x');
    } catch {
      this.#send(res, 400, { error: 'bad request URL' });
      return;
    }
    if (u.pathname === '/login') return this.#login(req, res, u);
    const auth = this.auth.authenticate(req);
    if (!auth.ok) {
      log.info({ remote: req.socket.remoteAddress, path: u.pathname, status: auth.status }, 'request refused');
      this.#send(res, auth.status, { error: auth.reason }, auth.status === 401 ? { 'www-authenticate': 'Bearer realm="bae"' } : {});
      return;
    }
    const asset = ASSETS[u.pathname];
    try {
      if (req.method === 'POST') return this.#action(req, res, u, auth);
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method not allowed');
      if (asset) return this.#asset(req, res, asset, auth);
      if (u.pathname === '/api/stream') {
        const a = u.searchParams.get('a');
        const b = u.searchParams.get('b');
        return this.#stream(req, res, queryOf(u), a && b ? { a, b } : undefined);
      }
      const body = this.#api(u, auth);
      if (body instanceof Promise) {
        body.then(
          (b) => this.#send(res, 200, b),
          (err: unknown) => this.#fail(res, err),
        );
        return;
      }
      const ms = performance.now() - started;
      this.#send(res, 200, body, { 'server-timing': `app;dur=${ms.toFixed(2)}` });
    } catch (err) {
      this.#fail(res, err);
    }
  }

  #fail(res: http.ServerResponse, err: unknown): void {
    if (err instanceof HttpError) return this.#send(res, err.status, { error: err.message });
    if (err instanceof UsageError) return this.#send(res, 400, { error: err.message, code: err.code });
    if (err instanceof BaeError) return this.#send(res, 503, { error: err.message, code: err.code });
    log.error({ err }, 'live view request failed');
    this.#send(res, 500, { error: err instanceof Error ? err.message : String(err) });
  }

  #login(req: http.IncomingMessage, res: http.ServerResponse, u: URL): void {
    const token = u.searchParams.get('token') ?? '';
    if (!this.auth.checkToken(token)) {
      log.info({ remote: req.socket.remoteAddress }, 'login refused');
      this.#send(res, 403, { error: 'login refused: wrong or missing token' });
      return;
    }
    const s = this.auth.newSession();
    // The token leaves the address bar at once: the redirect drops it.
    res.writeHead(303, { ...SECURITY_HEADERS, 'set-cookie': WebAuth.cookie(s), location: '/' }).end();
  }

  #asset(req: http.IncomingMessage, res: http.ServerResponse, file: string, auth: AuthResult & { ok: true }): void {
    const full = path.join(this.#assetsDir, file);
    let body: Buffer;
    try {
      body = fs.readFileSync(full);
    } catch {
      throw new HttpError(500, `the page is not built (${full} is missing): run make`);
    }
    const headers: Record<string, string> = { ...SECURITY_HEADERS, 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' };
    // A browser without a session gets one with the page, so that its POSTs can carry a CSRF token.
    if (file === 'index.html' && !auth.session) headers['set-cookie'] = WebAuth.cookie(this.auth.newSession());
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  #api(u: URL, auth: AuthResult & { ok: true }): unknown {
    switch (u.pathname) {
      case '/api/session':
        return { admin: this.auth.admin, csrf: auth.session?.csrf ?? null, node: this.state.sources.node ?? null, pushMs: this.#pushMs };
      case '/api/conversations': {
        const q = queryOf(u);
        const snap = this.state.snapshot();
        return snap.query(q);
      }
      case '/api/conversation': {
        const a = u.searchParams.get('a');
        const b = u.searchParams.get('b');
        if (!a || !b) throw new HttpError(400, 'conversation: give both addresses, ?a=ADDR&b=ADDR');
        const p = this.state.snapshot().profile(a, b);
        if (!p) throw new HttpError(404, `no conversation between ${a} and ${b}`);
        return { nowNs: process.hrtime.bigint(), profile: p };
      }
      case '/api/policies':
        return { policies: this.state.policies() };
      case '/api/blocks':
        return { nowNs: process.hrtime.bigint(), blocks: this.state.blocks() };
      case '/api/datapath':
        return { datapath: this.state.datapath(), agent: this.state.sources.agentStatus?.() ?? null };
      case '/api/events':
        return { events: this.#events };
      case '/api/nodes':
        return this.#fleetView();
      case '/api/view':
        return { ...this.state.shared(), fleet: this.#fleetView(), conversations: this.state.snapshot().query(queryOf(u)), pushStats: this.pushStats };
      case '/api/history': {
        const h = this.state.sources.history;
        const num = (name: string, dflt: number) => {
          const v = u.searchParams.get(name);
          if (v === null) return dflt;
          if (!/^\d+$/.test(v)) throw new HttpError(400, `${name}: '${v}' is not a time in ms since the epoch`);
          return Number(v);
        };
        const q = { fromMs: num('from', Date.now() - 3_600_000), toMs: num('to', Date.now()), limit: Math.min(num('limit', 1000), 10_000), ...(u.searchParams.get('kind') ? { kind: u.searchParams.get('kind')! } : {}) };
        if (!h) return { ...q, rows: [], stored: false, note: 'no history store is wired into this agent' };
        return Promise.resolve(h(q)).then((rows) => ({ ...q, rows, stored: true }));
      }
      default:
        throw new HttpError(404, `not found: ${u.pathname}`);
    }
  }

  #action(req: http.IncomingMessage, res: http.ServerResponse, u: URL, auth: AuthResult & { ok: true }): void {
    const allowed = this.auth.authorizeAction(req, auth);
    if (!allowed.ok) {
      log.warn({ remote: req.socket.remoteAddress, path: u.pathname, origin: req.headers.origin }, `action refused: ${allowed.reason}`);
      this.#send(res, allowed.status, { error: allowed.reason });
      return;
    }
    if (u.pathname !== '/api/unblock') {
      this.#send(res, 404, { error: `no action at ${u.pathname} (POST /api/unblock)` });
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > MAX_BODY) req.destroy();
    });
    req.on('end', () => {
      try {
        let value: { address?: unknown };
        try {
          value = JSON.parse(body) as { address?: unknown };
        } catch {
          throw new HttpError(400, 'the body must be JSON: {"address": "ADDR or PREFIX"}');
        }
        const result = this.state.unblock(value?.address);
        log.info({ remote: req.socket.remoteAddress, ...result }, 'unblocked from the live view');
        this.#send(res, 200, result);
        this.#pushBlocks();
      } catch (err) {
        this.#fail(res, err);
      }
    });
  }

  #stream(req: http.IncomingMessage, res: http.ServerResponse, query: ConversationQuery, conv: { a: string; b: string } | undefined): void {
    if (this.#clients.size >= MAX_STREAM_CLIENTS) throw new HttpError(503, `too many live clients (${MAX_STREAM_CLIENTS})`);
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    const client: StreamClient = { res, query, ...(conv ? { conv } : {}) };
    this.#clients.add(client);
    req.socket.setNoDelay(true);
    res.on('close', () => this.#clients.delete(client));
    // The first view at once, so that the page needs no separate load.
    this.#push([client]);
  }

  #write(c: StreamClient, event: string, data: unknown): void {
    c.res.write(`event: ${event}\ndata: ${toJson(data)}\n\n`);
  }

  /**
   * Each push interval: one step of the conversation walk, then the push. With no client for
   * WARM_MS, a step every IDLE_EVERY intervals only, so that a page that opens finds a recent
   * walk (and its first load never waits for one) at a small cost to an idle agent.
   */
  #tick(): void {
    const started = performance.now();
    this.#ticks++;
    this.#eventsThisTick = 0;
    if (this.#clients.size > 0) this.#lastWantedMs = performance.now();
    const idle = performance.now() - this.#lastWantedMs > WARM_MS;
    if (idle && this.#ticks % IDLE_EVERY !== 0) return;
    try {
      this.state.conversations.advance();
    } catch (err) {
      log.warn({ err }, 'live view: reading the conversations failed');
    }
    if (!idle) this.#push(this.#clients, started);
  }

  /**
   * One view for `to` (default: every client): shared parts read once, each client's page of
   * conversations. `serverMs` in the view: the server's time for it since `started` (the tick's
   * step of the walk included).
   */
  #push(to: Iterable<StreamClient> = this.#clients, started = performance.now()): void {
    const list = [...to];
    if (list.length === 0) return;
    let shared: SharedView;
    let snap;
    try {
      snap = this.state.snapshot();
      shared = this.state.shared();
    } catch (err) {
      log.warn({ err }, 'live view: reading the kernel failed');
      for (const c of list) this.#write(c, 'failure', { error: err instanceof Error ? err.message : String(err) });
      return;
    }
    const fleet = this.#fleetView();
    const pages = new Map<string, unknown>();
    for (const c of list) {
      const key = JSON.stringify(c.query);
      let page = pages.get(key);
      if (!page) {
        page = snap.query(c.query);
        pages.set(key, page);
      }
      const profile = c.conv ? (snap.profile(c.conv.a, c.conv.b) ?? null) : undefined;
      const serverMs = performance.now() - started;
      this.#write(c, 'view', { ...shared, fleet, conversations: page, ...(profile !== undefined ? { profile } : {}), eventsSkipped: this.eventsSkipped, serverMs, readMs: snap.readMs, batchMs: snap.batchMs });
    }
    const ms = performance.now() - started;
    this.pushStats.count++;
    this.pushStats.lastMs = ms;
    this.pushStats.maxMs = Math.max(this.pushStats.maxMs, ms);
    log.debug({ clients: list.length, ms, conversations: snap.count }, 'pushed');
  }

  /** The fleet's nodes (docs/web.md "Nodes"); without a bus, this node alone and no heartbeat. */
  #fleetView() {
    return this.#fleet?.view() ?? { bus: 'memory' as const, url: null, standalone: true, nodes: [] };
  }

  #pushBlocks(): void {
    if (this.#clients.size === 0) return;
    let blocks;
    try {
      blocks = { nowNs: process.hrtime.bigint(), blocks: this.state.blocks() };
    } catch (err) {
      log.warn({ err }, 'live view: reading the blocklist failed');
      return;
    }
    for (const c of this.#clients) this.#write(c, 'blocks', blocks);
  }

  #onEvent(subject: string, value: unknown): void {
    const e = { subject, ...(value && typeof value === 'object' ? value : { value }) } as { subject: string; kind?: string };
    this.#events.push(e);
    if (this.#events.length > RECENT_EVENTS) this.#events.splice(0, this.#events.length - RECENT_EVENTS);
    if (++this.#eventsThisTick > MAX_EVENTS_PER_PUSH) this.eventsSkipped++;
    else for (const c of this.#clients) this.#write(c, 'event', e);
    // A block (or a command that blocks or unblocks) shows in the blocklist at once, not at the next push.
    const kind = subject.split('.').pop();
    if (kind === 'block' || kind === 'command') this.#pushBlocks();
  }

  /** Stops serving: streams ended, maps closed. Safe twice. */
  close(): Promise<void> {
    clearInterval(this.#timer);
    this.#sub?.unsubscribe();
    this.#fleet?.close();
    for (const c of this.#clients) c.res.end();
    this.#clients.clear();
    this.state.close();
    return new Promise((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
