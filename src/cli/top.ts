// `bae top`: the live view in a terminal, read from the kernel's maps directly (no agent needed),
// or with --url from an agent's live view (`bae agent --http`), on this box or another.
import { Command, Option } from 'commander';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { LiveState, WEB_SORT_KEYS, fetchView, loadToken, parseFilter, parseViewUrl, renderTop, topFrameOf, type ConversationQuery, type TopFrame, type WebSortKey } from '../web';
import { pinDirOf, wholeNumber } from './options';

interface TopOpts {
  sort: WebSortKey;
  filter?: string;
  once?: boolean;
  json?: boolean;
  rows?: number;
  interval: number;
  url?: string;
  token?: string;
  tokenFile?: string;
}

/** Where the frames come from: the maps at --pin-dir, or an agent's live view (--url). */
interface FrameSource {
  /** `whole`: a complete read (--once); else a bounded step of the walk (a live screen). */
  frame(q: ConversationQuery, whole: boolean): Promise<TopFrame>;
  /** What --once --json prints: {nowNs, page, datapath, blocks}, the same in both modes. */
  json(q: ConversationQuery): Promise<string>;
  close(): void;
  /** A failed read after the first screen is shown and tried again (an agent restarting), not the end. */
  retries: boolean;
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

function localSource(pinDir: string): FrameSource {
  const state = new LiveState({ pinDir });
  return {
    frame: (q, whole) => Promise.resolve(frame(state, q, whole)),
    json: (q) => Promise.resolve(toJson(frame(state, q, true), 2)),
    close: () => state.close(),
    retries: false,
  };
}

function remoteSource(url: string, token: string | undefined): FrameSource {
  const base = parseViewUrl(url);
  return {
    frame: async (q) => topFrameOf(await fetchView(base, q, token)),
    json: async (q) => {
      const v = await fetchView(base, q, token);
      return toJson({ nowNs: v.nowNs, page: v.conversations, datapath: v.datapath, blocks: v.blocks }, 2);
    },
    close: () => undefined,
    retries: true,
  };
}

/** --token, --token-file or BAE_HTTP_TOKEN (in that order); none: undefined (loopback needs none). */
function tokenOf(opts: TopOpts): string | undefined {
  if (opts.token !== undefined && opts.tokenFile !== undefined) throw new UsageError('give the token once: --token or --token-file');
  if (opts.tokenFile !== undefined) return loadToken({ file: opts.tokenFile, what: '--token-file' });
  const t = opts.token ?? process.env.BAE_HTTP_TOKEN;
  if (t !== undefined && (t.length < 16 || /\s/.test(t))) throw new UsageError(`${opts.token !== undefined ? '--token' : 'BAE_HTTP_TOKEN'}: a token has at least 16 characters, no spaces`);
  return t;
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
    .option('--url <url>', 'read an agent\'s live view (its --http address, http://HOST:PORT) instead of the maps here')
    .option('--token <token>', 'with --url: the live view\'s token, needed beyond loopback (other users see it in ps: prefer --token-file or BAE_HTTP_TOKEN)')
    .option('--token-file <file>', 'with --url: read the token from the first line of FILE (the agent writes /run/bae/agent.http-token)')
    .addHelpText(
      'after',
      `
Reads bae's maps at --pin-dir directly, so it needs root but no agent. With --url it reads an
agent's live view instead (\`bae agent --http\`): the page's view, from this box or another, as
any user; beyond loopback with the agent's token. Keys while it runs: q (or Ctrl-C) quits, s
switches the sort between bytes, packets and retrans.

Examples:
  sudo bae top
  sudo bae top --sort retrans --filter 10.199.0.0/24
  sudo bae top --once --json | jq '.page.rows[0]'
  bae top --url http://127.0.0.1:8080
  BAE_HTTP_TOKEN=$(cat agent.http-token) bae top --url http://10.0.0.5:8080 --once --json`,
    )
    .action(async (opts: TopOpts, command: Command) => {
      if (opts.json && !opts.once) throw new UsageError('--json needs --once (a live screen is for a person)');
      if (opts.filter !== undefined) parseFilter(opts.filter);
      if ((opts.token !== undefined || opts.tokenFile !== undefined) && opts.url === undefined) throw new UsageError(`--${opts.token !== undefined ? 'token' : 'token-file'} needs --url`);
      const source = opts.url !== undefined ? remoteSource(opts.url, tokenOf(opts)) : localSource(pinDirOf(command));
      try {
        const rowsFor = () => opts.rows ?? (process.stdout.isTTY ? Math.max(1, (process.stdout.rows || 24) - 12) : 20);
        let sort = opts.sort;
        const query = (): ConversationQuery => ({ sort, limit: rowsFor(), ...(opts.filter !== undefined ? { filter: opts.filter } : {}) });
        if (opts.once) {
          process.stdout.write((opts.json ? await source.json(query()) : renderTop(await source.frame(query(), true), process.stdout.columns || 160)) + '\n');
          return;
        }
        await new Promise<void>((resolve, reject) => {
          const stdin = process.stdin;
          // One draw at a time: a slow answer from a remote agent is not asked again meanwhile.
          let drawing = false;
          let drawn = false;
          let finished = false;
          const draw = () => {
            if (drawing || finished) return;
            drawing = true;
            source.frame(query(), false).then(
              (f) => {
                drawing = false;
                drawn = true;
                if (!finished) process.stdout.write('\x1b[H\x1b[2J' + renderTop(f, process.stdout.columns || 160) + '\n');
              },
              (err: unknown) => {
                drawing = false;
                if (!drawn || !source.retries) return finish(err);
                if (!finished) process.stdout.write(`\x1b[H\x1b[2Jbae top: ${err instanceof Error ? err.message : String(err)}; trying again every ${opts.interval} ms\n`);
              },
            );
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
            finished = true;
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
        source.close();
      }
    });
}
