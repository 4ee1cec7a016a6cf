// `bae events [--follow] [--json]`: trigger fires, blocks and `event` matches from the policy
// stage's ring buffer. Without --follow it prints what is waiting and exits. With --nats it reads
// the fleet's event stream instead (JetStream, events-stream.ts), from --since.
import { Command } from 'commander';
import { decodePolicyEvent, openLoadedMap, POLICY_MAPS, RingBuffer, type PolicyEventRecord } from '../datapath';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { storedNames, viewEvent, type PolicyEventView } from '../policy';

// The view is the policy area's (the agent publishes the same on the bus).
export { viewEvent, type PolicyEventView };
import { readEventStream, sinceArg } from './events-stream';
import { addNatsOptions, natsAuthOf, pinDirOf, type NatsAuthOpts } from './options';

export function formatEvent(v: PolicyEventView, e: PolicyEventRecord): string {
  const what =
    v.kind === 'fire'
      ? `trigger fired (window sum ${v.value})`
      : v.kind === 'block'
        ? `blocked ${v.src} for ${(Number(e.value - e.timeNs) / 1e9).toFixed(3)}s`
        : v.kind === 'refused'
          ? `refused to block ${v.src}: it is in a protected prefix`
          : v.kind === 'would-block'
            ? `would block ${v.src} for ${(Number(e.value - e.timeNs) / 1e9).toFixed(3)}s (monitor only)`
            : `matched (${v.value} bytes)`;
  return `${v.time} ${v.kind.padEnd(5)} ${v.policy} ${v.src} -> ${v.dst} scope=${v.scope}: ${what}`;
}

export function register(program: Command): void {
  const events = program
    .command('events')
    .description('print policy events: trigger fires, blocks and `event` matches')
    .option('--follow', 'keep printing new events until interrupted')
    .option('--json', 'one JSON object per line')
    .option('--since <time>', 'with --nats: from this time (ISO 8601, or a duration ago: 10m, 2h, 1d; default: every event kept)', (v: string) => sinceArg(v))
    .option('--node <name>', 'with --nats: only this node\'s events')
    .addHelpText(
      'after',
      `
Each event names its kind (fire: a trigger switched its policy on; block: a source went on the
blocklist; match: a packet met an \`event\` action; refused: a block of an address in a protected
prefix was refused; would-block: a monitor-only policy would have blocked), the policy, the
addresses (the client first for HTTP response metrics) and the scope. The
kernel keeps events in a ring buffer until a reader takes them: without --follow, bae events
prints those waiting and exits.

With --nats it reads the fleet's event stream (BAE_EVENTS, kept 7 days) instead of the local
ring: every node's events, block commands applied (kind command), in the order the stream took
them, from --since (default: the oldest kept). A reader that was away catches up with what it
missed; without --follow it stops once it has caught up, with it it goes on with new ones.

Examples:
  sudo bae events
  sudo bae events --follow
  sudo bae events --follow --json | jq 'select(.kind == "block") | .src'
  sudo bae lab exec bae -- bae events --follow
  bae events --nats nats://10.0.0.1:4222 --since 1h
  bae events --nats nats://10.0.0.1:4222 --since 2026-12-06T22:00:00Z --node edge-1 --follow --json`,
    )
    .action(async (opts: { follow?: boolean; json?: boolean; since?: Date; node?: string; nats?: string } & NatsAuthOpts, command: Command) => {
      if (opts.nats !== undefined) {
        await readEventStream({ url: opts.nats, auth: natsAuthOf(opts), ...(opts.since ? { since: opts.since } : {}), ...(opts.node !== undefined ? { node: opts.node } : {}), follow: opts.follow ?? false, json: opts.json ?? false });
        return;
      }
      if (opts.since !== undefined || opts.node !== undefined) throw new UsageError('--since and --node read the fleet\'s event stream: they go with --nats');
      const pinDir = pinDirOf(command);
      const names = storedNames(pinDir);
      const map = openLoadedMap(POLICY_MAPS.events, pinDir);
      const print = (record: Buffer) => {
        const e = decodePolicyEvent(record);
        const v = viewEvent(e, names, process.hrtime.bigint(), Date.now());
        process.stdout.write((opts.json ? toJson(v) : formatEvent(v, e)) + '\n');
      };
      const ring = new RingBuffer(map, print);
      try {
        ring.consume();
        if (!opts.follow) return;
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
      } finally {
        ring.close();
        map.close();
      }
    });
  addNatsOptions(events, 'read the fleet\'s event stream (JetStream) instead of the local ring');
}
