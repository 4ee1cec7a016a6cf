// `bae top --url`: the live view of an agent over its HTTP API (`bae agent --http`), from this box
// or another: each refresh is one GET /api/view (the page's view: the same conversation page,
// datapath counters and blocks), turned back into the frame that renderTop draws.
import type { Stats } from '../datapath';
import { BaeError, UsageError } from '../errors';
import type { BlockEntry } from '../policy';
import type { ConversationPage, ConversationQuery, ConversationRow } from './conversations';
import type { TopFrame } from './top';

/** How long one request may take (the server answers in well under 200 ms: docs/web.md). */
export const REMOTE_TIMEOUT_MS = 5000;

/** The agent's live view address: http(s)://HOST:PORT[/], no path, query or credentials. */
export function parseViewUrl(text: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UsageError(`--url '${text}': not a URL (expected http://HOST:PORT, the agent's --http address)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--url '${text}': expected http:// or https://, not ${u.protocol}`);
  if (u.username || u.password) throw new UsageError(`--url '${text}': no credentials in the URL (give the token with --token, --token-file or BAE_HTTP_TOKEN)`);
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) throw new UsageError(`--url '${text}': give the server only (http://HOST:PORT), no path or query`);
  return u;
}

/** The JSON of one view (counters as decimal strings, src/json.ts) for `query`, from the agent at `base`. */
export async function fetchView(base: URL, query: ConversationQuery, token?: string, timeoutMs = REMOTE_TIMEOUT_MS): Promise<RemoteView> {
  const u = new URL('/api/view', base);
  if (query.sort) u.searchParams.set('sort', query.sort);
  if (query.filter) u.searchParams.set('filter', query.filter);
  if (query.offset !== undefined) u.searchParams.set('offset', String(query.offset));
  if (query.limit !== undefined) u.searchParams.set('limit', String(query.limit));
  const where = base.origin;
  let res: Response;
  try {
    res = await fetch(u, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new BaeError('BAE_NO_AGENT', `no live view answers at ${where} (${why}): is \`bae agent --http\` running there?`, { cause: err });
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BaeError('BAE_AGENT', `${where} answered ${res.status} with something that is not bae's JSON: is it a bae agent's --http address?`);
  }
  if (!res.ok) {
    const said = (body as { error?: unknown })?.error;
    const hint = res.status === 401 ? ' (give the token: --token T, --token-file FILE or BAE_HTTP_TOKEN)' : res.status === 403 ? ' (the token is not this agent\'s)' : '';
    throw new BaeError('BAE_AGENT', `the live view at ${where} refused (${res.status}): ${typeof said === 'string' ? said : 'no reason given'}${hint}`);
  }
  const v = body as RemoteView;
  if (!v || typeof v !== 'object' || !v.conversations || !Array.isArray(v.conversations.rows) || typeof v.nowNs !== 'string') {
    throw new BaeError('BAE_AGENT', `${where}/api/view answered without a view: is it a bae agent's --http address?`);
  }
  return v;
}

/** What /api/view answers, as far as `bae top` reads it (64-bit values as decimal strings). */
export interface RemoteView {
  nowNs: string;
  node: string | null;
  conversations: Json<ConversationPage>;
  datapath: { verdicts: Record<string, string> } | null;
  blocks: Json<BlockEntry>[];
}

type Json<T> = { [K in keyof T]: T[K] extends bigint ? string : T[K] extends object ? Json<T[K]> : T[K] };

const big = (s: string | undefined): bigint => {
  try {
    return BigInt(s ?? '0');
  } catch {
    return 0n;
  }
};

/** The frame renderTop draws, from a remote view (decimal strings back to bigints). */
export function topFrameOf(v: RemoteView): TopFrame {
  const c = v.conversations;
  const rows: ConversationRow[] = c.rows.map((r) => ({
    family: r.family,
    a: r.a,
    b: r.b,
    packets: big(r.packets),
    bytes: big(r.bytes),
    retransmits: big(r.retransmits),
    aToB: { packets: big(r.aToB.packets), bytes: big(r.aToB.bytes) },
    bToA: { packets: big(r.bToA.packets), bytes: big(r.bToA.bytes) },
    firstSeenNs: big(r.firstSeenNs),
    lastSeenNs: big(r.lastSeenNs),
  }));
  const page: ConversationPage = { total: c.total, matched: c.matched, offset: c.offset, sort: c.sort, filter: c.filter, readAtNs: big(c.readAtNs), rows };
  const datapath = v.datapath ? ({ verdicts: Object.fromEntries(Object.entries(v.datapath.verdicts).map(([k, n]) => [k, big(n)])) } as unknown as Stats) : null;
  const blocks: BlockEntry[] = v.blocks.map((b) => ({ address: b.address, version: b.version, expiryNs: big(b.expiryNs), remainingNs: big(b.remainingNs), offences: b.offences }));
  return { nowNs: big(v.nowNs), page, datapath, blocks };
}
