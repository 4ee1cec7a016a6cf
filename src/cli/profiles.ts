// `bae profiles`: the conversation profiles bae keeps in the kernel, as a table or as JSON.
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { MAPS, openLoadedMap } from '../datapath';
import { toJson } from '../json';
import { SORT_KEYS, SortKey, readProfiles, renderHistograms, renderTable, sortProfiles } from '../profiles';
import { pinDirOf, wholeNumber } from './options';

interface ProfilesOpts {
  json?: boolean;
  hist?: boolean;
  top?: number;
  sort: SortKey;
  watch?: boolean;
  interval: number;
  count?: number;
}

function snapshot(opts: ProfilesOpts, pinDir: string): string {
  const convs = openLoadedMap(MAPS.convs, pinDir, 'bae profiles');
  let profiles;
  try {
    profiles = sortProfiles(readProfiles(convs), opts.sort);
  } finally {
    convs.close();
  }
  const total = profiles.length;
  if (opts.top !== undefined) profiles = profiles.slice(0, opts.top);
  // The kernel stamps packets with CLOCK_MONOTONIC, which is what hrtime reads on Linux.
  const nowNs = process.hrtime.bigint();
  if (opts.json) return toJson({ nowNs, total, conversations: profiles }, 2);
  if (total === 0) return 'no conversations yet';
  const shown = profiles.length < total ? ` (top ${profiles.length} by ${opts.sort})` : '';
  const table = `${total} conversations${shown}\n${renderTable(profiles, nowNs)}`;
  return opts.hist ? [table, ...profiles.map(renderHistograms)].join('\n\n') : table;
}

export function register(program: Command): void {
  program
    .command('profiles')
    .description('show the behavioral profile of every conversation bae has seen')
    .option('--json', 'print JSON with every field (counters and nanosecond timestamps as exact decimal strings)')
    .option('--hist', "after the table, each conversation's frame-size and inter-arrival histograms")
    .option('--top <n>', 'only the first N after sorting', wholeNumber(1, 1_000_000))
    .addOption(new Option('--sort <key>', 'order, largest first').choices([...SORT_KEYS]).default('bytes'))
    .option('--watch', 'print again every --interval seconds until interrupted')
    .option('--interval <seconds>', 'refresh period of --watch', wholeNumber(1, 3600), 1)
    .option('--count <n>', 'with --watch: stop after N refreshes', wholeNumber(1, 1_000_000))
    .addHelpText(
      'after',
      `
A conversation is one pair of addresses (both directions). A is the lower address; A>B counts
what A sent. SIZE is the mean frame size (min-max), RETX counts TCP retransmissions both ways,
IDLE is the time since the last packet and AGE the time since the first.

--hist adds, per conversation and direction, frames per size bucket (SIZE, bytes) and gaps
between consecutive frames per decade (GAP: <10us, 10-100us, ... 1-10s, >=10s), exact counts;
a gap is measured between packets of one direction handled by the same CPU (docs/profiles.md).
In --json the same are sizeHist and iatHist of aToB and bToA, always present.

Examples:
  sudo bae profiles
  sudo bae profiles --top 10 --sort packets
  sudo bae profiles --top 3 --hist
  sudo bae profiles --json | jq '.conversations[0].aToB.iatHist'
  sudo bae profiles --watch --interval 2
  sudo bae profiles --json | jq '.conversations[] | {a, b, bytes}'`,
    )
    .action(async (opts: ProfilesOpts, command: Command) => {
      const pinDir = pinDirOf(command);
      if (!opts.watch) {
        process.stdout.write(snapshot(opts, pinDir) + '\n');
        return;
      }
      const clear = process.stdout.isTTY && !opts.json ? '\x1b[H\x1b[2J' : '';
      for (let i = 0; opts.count === undefined || i < opts.count; i++) {
        if (i > 0) await sleep(opts.interval * 1000);
        process.stdout.write(clear + snapshot(opts, pinDir) + '\n' + (clear ? '' : '\n'));
      }
    });
}
