// `bae top`: the live view as one terminal screen (the same conversation page the web view
// pushes), rendered as text; src/cli/top.ts refreshes it.
import type { Stats } from '../datapath';
import type { BlockEntry } from '../policy';
import { humanAge, humanCount } from '../profiles';
import type { ConversationPage } from './conversations';

export interface TopFrame {
  page: ConversationPage;
  datapath: Stats | null;
  blocks: BlockEntry[];
  nowNs: bigint;
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

/** One screen: a header (conversations, verdicts, blocks), then the table, `width` columns wide at most. */
export function renderTop(f: TopFrame, width = 120): string {
  const p = f.page;
  const v = f.datapath?.verdicts;
  const verdicts = v ? Object.entries(v).filter(([, n]) => n > 0n).map(([k, n]) => `${k} ${humanCount(n)}`).join(', ') || 'no packets' : 'no counters';
  const lines = [
    `bae top — ${p.total} conversations${p.filter ? `, ${p.matched} in ${p.filter}` : ''}, sorted by ${p.sort}; verdicts: ${verdicts}; ${f.blocks.length} blocked`,
    '',
    `${pad('A', 40)} ${pad('B', 40)} ${lpad('PACKETS', 9)} ${lpad('BYTES', 9)} ${lpad('A>B', 9)} ${lpad('B>A', 9)} ${lpad('RETX', 6)} ${lpad('IDLE', 7)}`,
  ];
  for (const r of p.rows) {
    lines.push(
      `${pad(r.a, 40)} ${pad(r.b, 40)} ${lpad(humanCount(r.packets), 9)} ${lpad(humanCount(r.bytes), 9)} ${lpad(humanCount(r.aToB.bytes), 9)} ${lpad(humanCount(r.bToA.bytes), 9)} ` +
        `${lpad(humanCount(r.retransmits), 6)} ${lpad(humanAge(f.nowNs - r.lastSeenNs), 7)}`,
    );
  }
  if (p.rows.length === 0) lines.push(p.total === 0 ? '(no conversations yet)' : '(none match the filter)');
  if (f.blocks.length) {
    lines.push('', 'BLOCKED');
    for (const b of f.blocks.slice(0, 5)) lines.push(`  ${pad(b.address, 42)} ${humanAge(b.remainingNs)} left`);
    if (f.blocks.length > 5) lines.push(`  ... and ${f.blocks.length - 5} more`);
  }
  return lines.map((l) => (l.length > width ? l.slice(0, width) : l)).join('\n');
}
