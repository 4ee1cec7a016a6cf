// The human view of conversation profiles: one row per conversation, a->b and b->a side by side,
// and (bae profiles --hist) each conversation's size and inter-arrival histograms.
import { IAT_BUCKETS, SIZE_BUCKETS } from '../datapath';
import type { ConversationProfile, DirectionProfile } from './profiles';

/** Column heads of the frame-size histogram (BAE_SIZE_BUCKETS, docs/profiles.md). */
export const SIZE_BUCKET_LABELS = ['<64', '64-127', '128-255', '256-511', '512-1023', '1024-2047', '2048-4095', '>=4096'] as const;
/** Column heads of the inter-arrival histogram (BAE_IAT_BUCKETS, IAT_BUCKET_EDGES_NS). */
export const IAT_BUCKET_LABELS = ['<10us', '10-100us', '100us-1ms', '1-10ms', '10-100ms', '100ms-1s', '1-10s', '>=10s'] as const;
if (SIZE_BUCKET_LABELS.length !== SIZE_BUCKETS || IAT_BUCKET_LABELS.length !== IAT_BUCKETS) {
  throw new Error('table.ts: histogram labels do not match the bucket counts of bae.h');
}

/** 1234567 -> "1.2M"; exact below 10000 so small counts can be checked by eye. */
export function humanCount(n: bigint): string {
  if (n < 10000n) return n.toString();
  const units = ['k', 'M', 'G', 'T', 'P'];
  let v = Number(n);
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)}${units[u]}`;
}

/** Seconds as "850ms", "12s", "3m20s", "2h05m". */
export function humanAge(ns: bigint): string {
  if (ns < 0n) ns = 0n;
  const ms = Number(ns / 1_000_000n);
  if (ms < 1000) return `${ms}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** HTTP requests / error responses of both directions, '-' when the conversation had none. */
function http(p: ConversationProfile): string {
  const req = p.aToB.httpRequests + p.bToA.httpRequests;
  const resp = p.aToB.httpResponses + p.bToA.httpResponses;
  return req + resp > 0n ? `${req}/${p.aToB.httpErrors + p.bToA.httpErrors}` : '-';
}

function size(d: DirectionProfile): string {
  return d.packets > 0n ? `${Math.round(d.sizeMean)} (${d.sizeMin}-${d.sizeMax})` : '-';
}

/**
 * Renders profiles as an aligned table. `nowNs` is the clock of the profiles' timestamps
 * (CLOCK_MONOTONIC for the real clock), used for "idle" (since last packet) and "age".
 */
export function renderTable(profiles: readonly ConversationProfile[], nowNs: bigint): string {
  const header = ['A', 'B', 'PKTS A>B', 'PKTS B>A', 'BYTES A>B', 'BYTES B>A', 'SIZE A>B', 'SIZE B>A', 'RETX', 'HTTP REQ/ERR', 'IDLE', 'AGE'];
  const rows = profiles.map((p) => [
    p.a,
    p.b,
    humanCount(p.aToB.packets),
    humanCount(p.bToA.packets),
    humanCount(p.aToB.bytes),
    humanCount(p.bToA.bytes),
    size(p.aToB),
    size(p.bToA),
    p.retransmits.toString(),
    http(p),
    humanAge(nowNs - p.lastSeenNs),
    humanAge(nowNs - p.firstSeenNs),
  ]);
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  const numeric = (c: number) => c >= 2;
  return all
    .map((r) =>
      r
        .map((cell, c) => (numeric(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Right-aligned rows under a header row, two spaces apart. */
function aligned(rows: readonly string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd());
}

/**
 * One conversation's histograms, both directions: frames per size bucket and gaps per
 * inter-arrival bucket (exact counts), indented under a line naming the conversation.
 */
export function renderHistograms(p: ConversationProfile): string {
  const lines = [`${p.a} - ${p.b}`];
  const block = (head: string, labels: readonly string[], pick: (d: DirectionProfile) => bigint[]) =>
    aligned([[head, ...labels], ...([['A>B', p.aToB], ['B>A', p.bToA]] as const).map(([n, d]) => [n, ...pick(d).map(String)])]).map((l) => `  ${l}`);
  lines.push(...block('SIZE', SIZE_BUCKET_LABELS, (d) => d.sizeHist), ...block('GAP', IAT_BUCKET_LABELS, (d) => d.iatHist));
  return lines.join('\n');
}
