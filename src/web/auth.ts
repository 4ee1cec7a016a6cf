// Who may see the live view and who may act through it (docs/web.md "Security").
//
// - A client on loopback reads without a token (as `bae status` on the box would); any other
//   client needs the token: `Authorization: Bearer TOKEN`, or the session cookie that the login
//   URL (/login?token=..., printed in the agent's log) sets.
// - Actions (unblock) are POSTs, refused unless the agent runs with --http-admin. A browser's POST
//   must come from the page itself: its Origin names this server's Host, and it carries the
//   session's CSRF token (X-CSRF-Token), which the page fetches from /api/session (never in the
//   page's source). A script with the bearer token needs neither: a browser never adds that
//   header to a cross-site request.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import { UsageError } from '../errors';

export const SESSION_COOKIE = 'bae_session';
/** Sessions kept at once (the oldest goes first): a bound on memory, whoever logs in. */
export const MAX_SESSIONS = 1000;
const TOKEN_BYTES = 32;

export interface Session {
  id: string;
  csrf: string;
  createdMs: number;
}

export type AuthResult = { ok: true; session: Session | undefined; bearer: boolean } | { ok: false; status: 401 | 403; reason: string };

/** Whether a socket's remote address is a loopback address (127/8, ::1, or 127/8 mapped into v6). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** Whether a listening host is loopback only (then no client needs a token). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || isLoopback(host);
}

/**
 * The token: read from `file` (--http-token: its first line, at least 16 characters), or, with
 * `generateAt`, a new random one written there with mode 0600 (replacing an earlier one).
 */
export function loadToken(opts: { file?: string; generateAt?: string; what?: string }): string {
  const what = opts.what ?? '--http-token';
  if (opts.file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new UsageError(`${what} ${opts.file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
    }
    const token = text.split('\n')[0]!.trim();
    if (token.length < 16 || /\s/.test(token)) throw new UsageError(`${what} ${opts.file}: the first line must be a token of at least 16 characters, no spaces`);
    return token;
  }
  if (opts.generateAt === undefined) throw new RangeError('loadToken needs a file or a place to write one');
  const token = crypto.randomBytes(TOKEN_BYTES).toString('base64url');
  fs.mkdirSync(path.dirname(opts.generateAt), { recursive: true, mode: 0o755 });
  fs.rmSync(opts.generateAt, { force: true });
  fs.writeFileSync(opts.generateAt, token + '\n', { mode: 0o600, flag: 'wx' });
  return token;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function cookieOf(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export class WebAuth {
  readonly admin: boolean;
  readonly #token: string | undefined;
  readonly #sessions = new Map<string, Session>();

  /** `token` undefined: the server listens on loopback only and nobody needs one. */
  constructor(opts: { token: string | undefined; admin: boolean }) {
    this.#token = opts.token;
    this.admin = opts.admin;
  }

  get tokenRequired(): boolean {
    return this.#token !== undefined;
  }

  #bearer(req: IncomingMessage): boolean {
    const h = req.headers.authorization;
    if (!h || !this.#token) return false;
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    return !!m && sameSecret(m[1]!, this.#token);
  }

  session(req: IncomingMessage): Session | undefined {
    const id = cookieOf(req, SESSION_COOKIE);
    return id === undefined ? undefined : this.#sessions.get(id);
  }

  /** Whether `req` may read. */
  authenticate(req: IncomingMessage): AuthResult {
    const session = this.session(req);
    if (this.#bearer(req)) return { ok: true, session, bearer: true };
    if (session) return { ok: true, session, bearer: false };
    if (!this.#token || isLoopback(req.socket.remoteAddress)) return { ok: true, session: undefined, bearer: false };
    if (req.headers.authorization) return { ok: false, status: 403, reason: 'the bearer token is wrong' };
    return { ok: false, status: 401, reason: 'beyond loopback the live view needs the token: `Authorization: Bearer TOKEN`, or the login URL from the agent\'s log' };
  }

  /** Whether `req` (a POST) may act; `auth` is what authenticate() said. */
  authorizeAction(req: IncomingMessage, auth: AuthResult & { ok: true }): { ok: true } | { ok: false; status: 403; reason: string } {
    if (!this.admin) return { ok: false, status: 403, reason: 'the live view is read-only: start the agent with --http-admin to act from it' };
    if (auth.bearer && req.headers.origin === undefined) return { ok: true };
    const origin = req.headers.origin;
    const host = req.headers.host;
    if (!origin || !host || (origin !== `http://${host}` && origin !== `https://${host}`)) {
      return { ok: false, status: 403, reason: `cross-site request refused: Origin ${origin ?? '(none)'} is not this server (${host ?? 'no Host'})` };
    }
    const csrf = req.headers['x-csrf-token'];
    if (!auth.session || typeof csrf !== 'string' || !sameSecret(csrf, auth.session.csrf)) {
      return { ok: false, status: 403, reason: 'missing or wrong X-CSRF-Token (the page gets it from /api/session)' };
    }
    return { ok: true };
  }

  /** Whether `token` is the token (the login URL). */
  checkToken(token: string): boolean {
    return this.#token !== undefined && sameSecret(token, this.#token);
  }

  /** A new session; the oldest goes when there are MAX_SESSIONS. */
  newSession(nowMs = Date.now()): Session {
    if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    const s: Session = { id: crypto.randomBytes(TOKEN_BYTES).toString('base64url'), csrf: crypto.randomBytes(TOKEN_BYTES).toString('base64url'), createdMs: nowMs };
    this.#sessions.set(s.id, s);
    return s;
  }

  static cookie(s: Session): string {
    return `${SESSION_COOKIE}=${s.id}; HttpOnly; SameSite=Strict; Path=/`;
  }
}
