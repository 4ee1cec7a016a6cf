// How bae connects to NATS: credentials (user/password, token, nkey seed, creds file), TLS (a CA
// to trust, a client certificate), the reconnect back-off, and the reasons a connection fails,
// in words a person can act on. Files are read here, at open, so that an unreadable one is a
// usage error naming the file before any connection is tried.
import fs from 'node:fs';
import { credsAuthenticator, nkeyAuthenticator, type Authenticator, type ConnectionOptions, type NatsError } from 'nats';
import { UsageError } from '../errors';

/** The credentials and TLS files of a NATS connection (the CLI's --nats-* options, docs/bus.md). */
export interface NatsAuth {
  user?: string;
  pass?: string;
  token?: string;
  /** A file holding an nkey seed (SU...). */
  nkeyFile?: string;
  /** A .creds file (a user JWT and its nkey seed), as `nsc` writes it. */
  credsFile?: string;
  /** PEM file of the CA that signed the server's certificate. */
  tlsCa?: string;
  /** PEM client certificate and key (mutual TLS): both or neither. */
  tlsCert?: string;
  tlsKey?: string;
}

/** Longest time between two reconnect attempts to one server. */
export const MAX_RECONNECT_WAIT_MS = 30_000;
/** Shortest time between two attempts to one server. */
export const MIN_RECONNECT_WAIT_MS = 500;

function readable(file: string, what: string): string {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    if (!fs.statSync(file).isFile()) throw new Error('not a file');
  } catch (err) {
    throw new UsageError(`${what} '${file}' cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return file;
}

/** The nats.js options for `auth`; throws a UsageError naming a file that cannot be used. */
export function authOptions(auth: NatsAuth = {}): Partial<ConnectionOptions> {
  const out: Partial<ConnectionOptions> = {};
  const authenticators: Authenticator[] = [];
  if (auth.pass !== undefined && auth.user === undefined) throw new UsageError('--nats-pass needs --nats-user');
  if (auth.user !== undefined) Object.assign(out, { user: auth.user, pass: auth.pass ?? '' });
  if (auth.token !== undefined) out.token = auth.token;
  if (auth.nkeyFile !== undefined) {
    const seed = fs.readFileSync(readable(auth.nkeyFile, 'nkey seed file'), 'utf8').trim();
    if (!/^SU[A-Z2-7]{50,}$/.test(seed)) throw new UsageError(`nkey seed file '${auth.nkeyFile}' does not hold a user seed (one line starting with SU)`);
    authenticators.push(nkeyAuthenticator(new TextEncoder().encode(seed)));
  }
  if (auth.credsFile !== undefined) {
    const creds = fs.readFileSync(readable(auth.credsFile, 'creds file'));
    if (!/BEGIN NATS USER JWT/.test(creds.toString('utf8'))) throw new UsageError(`creds file '${auth.credsFile}' has no NATS user JWT`);
    authenticators.push(credsAuthenticator(new Uint8Array(creds)));
  }
  if (authenticators.length) out.authenticator = authenticators.length === 1 ? authenticators[0]! : authenticators;
  if ((auth.tlsCert === undefined) !== (auth.tlsKey === undefined)) throw new UsageError('--nats-tls-cert and --nats-tls-key go together (a client certificate and its key)');
  if (auth.tlsCa !== undefined || auth.tlsCert !== undefined) {
    out.tls = {
      ...(auth.tlsCa !== undefined ? { caFile: readable(auth.tlsCa, 'TLS CA file') } : {}),
      ...(auth.tlsCert !== undefined ? { certFile: readable(auth.tlsCert, 'TLS certificate file'), keyFile: readable(auth.tlsKey!, 'TLS key file') } : {}),
    };
  }
  return out;
}

/**
 * Wait before the next attempt on a server: half the time since the connection was lost, from
 * MIN_RECONNECT_WAIT_MS up to MAX_RECONNECT_WAIT_MS. Attempts to one server come at doubling
 * times (0.5, 1, 2, 4, ... s after the loss), then every 30 s: a refusing server (wrong
 * credentials) is not hammered, and a server that comes back is found within half the outage.
 */
export function reconnectWait(sinceLossMs: number): number {
  return Math.min(MAX_RECONNECT_WAIT_MS, Math.max(MIN_RECONNECT_WAIT_MS, Math.floor(sinceLossMs / 2)));
}

/** Why a connection failed, as one phrase (the server's words in parentheses where it has them). */
export function failureReason(err: unknown): string {
  const e = err as NatsError & { message?: string };
  const msg = String(e?.message ?? err);
  switch (e?.code) {
    case 'CONNECTION_REFUSED':
      return 'connection refused';
    case 'CONNECTION_TIMEOUT':
    case 'TIMEOUT':
      return 'no answer (timed out)';
    case 'AUTHORIZATION_VIOLATION':
      return 'the server refused the credentials (authorization violation)';
    case 'AUTHENTICATION_EXPIRED':
      return 'the credentials have expired (authentication expired)';
  }
  if (/authorization violation/i.test(msg)) return 'the server refused the credentials (authorization violation)';
  if (/self.signed|unable to verify|certificate|CERT_|TLS|SSL/i.test(msg)) return `TLS failed: ${msg}`;
  return msg;
}
