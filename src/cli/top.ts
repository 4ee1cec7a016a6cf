// `bae top`: the live view in a terminal, read from the kernel's maps directly (no agent needed).
import { Command, Option } from 'commander';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { LiveState, WEB_SORT_KEYS, parseFilter, renderTop, type ConversationQuery, type WebSortKey } from '../web';
import { pinDirOf, wholeNumber } from './options';

interface TopOpts {
  sort: WebSortKey;
  filter?: string;
  once?: boolean;
  json?: boolean;
  rows?: number;
  interval: number;
}

/** A refresh reads at most this long of the next walk of the map (100k conversations take a few refreshes). */
const WALK_BUDGET_MS = 200;

function frame(state: LiveState, q: ConversationQuery, whole: boolean) {
  if (whole) state.conversations.readAll();
  else {
    const t = performance.now();
    while (!state.conversations.advance() && performance.now() - t < WALK_BUDGET_MS);
  }
  const page = state.conversations.latest().query(q);
  return { nowNs: process.hrtime.bigint(), page, datapath: state.datapath(), blocks: state.blocks() };
}

export function register(program: Command): void {
  program
    .command('top')
    .description('the live view in a terminal: top conversations, verdicts and blocks, refreshed each second (q quits)')
    .addOption(new Option('--sort <key>', 'order, largest first').choices([...WEB_SORT_KEYS]).default('bytes'))
    .option('--filter <prefix>', 'only conversations with an end in this address or prefix (10.0.0.0/8, fd00::/16)')
    .option('--rows <n>', 'rows shown (default: what the terminal holds, 20 off a terminal)', wholeNumber(1, 500))
    .option('--interval <ms>', 'refresh period in ms', wholeNumber(100, 60_000), 1000)
    .option('--once', 'print one screen and exit')
    .option('--json', 'with --once: the screen as JSON (counters as decimal strings)')
    .addHelpText(
      'after',
      `
Reads bae's maps at --pin-dir directly, so it needs root but no agent. Keys while it runs: q (or
Ctrl-C) quits, s switches the sort between bytes, packets and retrans.

Examples:
  sudo bae top
  sudo bae top --sort retrans --filter 10.199.0.0/24
  sudo bae top --once --json | jq '.page.rows[0]'`,
    )
    .action(async (opts: TopOpts, command: Command) => {
      if (opts.json && !opts.once) throw new UsageError('--json needs --once (a live screen is for a person)');
      if (opts.filter !== undefined) parseFilter(opts.filter);
      const state = new LiveState({ pinDir: pinDirOf(command) });
      try {
        const rowsFor = () => opts.rows ?? (process.stdout.isTTY ? Math.max(1, (process.stdout.rows || 24) - 12) : 20);
        let sort = opts.sort;
        const query = (): ConversationQuery => ({ sort, limit: rowsFor(), ...(opts.filter !== undefined ? { filter: opts.filter } : {}) });
        if (opts.once) {
          const f = frame(state, query(), true);
          process.stdout.write((opts.json ? toJson(f, 2) : renderTop(f, process.stdout.columns || 160)) + '\n');
          return;
        }
        await new Promise<void>((resolve, reject) => {
          const stdin = process.stdin;
          const draw = () => {
            try {
              process.stdout.write('\x1b[H\x1b[2J' + renderTop(frame(state, query(), false), process.stdout.columns || 160) + '\n');
            } catch (err) {
              finish(err);
            }
          };
          const timer = setInterval(draw, opts.interval);
          const onKey = (key: Buffer | string) => {
            const k = key.toString();
            if (k === 'q' || k === '\u0003') finish();
            else if (k === 's') {
              sort = WEB_SORT_KEYS[(WEB_SORT_KEYS.indexOf(sort) + 1) % WEB_SORT_KEYS.length]!;
              draw();
            }
          };
          const onSignal = () => finish();
          function finish(err?: unknown) {
            clearInterval(timer);
            stdin.off('data', onKey);
            process.off('SIGINT', onSignal);
            process.off('SIGTERM', onSignal);
            if (stdin.isTTY) stdin.setRawMode(false);
            stdin.pause();
            if (err) reject(err);
            else resolve();
          }
          if (stdin.isTTY) stdin.setRawMode(true);
          stdin.on('data', onKey);
          stdin.resume();
          process.on('SIGINT', onSignal);
          process.on('SIGTERM', onSignal);
          draw();
        });
      } finally {
        state.close();
      }
    });
}
