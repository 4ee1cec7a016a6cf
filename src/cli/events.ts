// `bae events [--since T] [--follow] [--json]`: trigger fires, blocks and `event` matches. With
// an agent that stores (bae agent --db, the default), the agent is the ring buffer's one reader
// and the events are read from its store; without one, from the policy stage's ring buffer, as
// they wait there. With --nats, from the fleet's event stream (JetStream, events-stream.ts).
// Without --follow it prints what there is and exits.
import { Command } from 'commander';
import { agentRequest, agentSocketPath, NoAgentError } from '../agent';
import { decodePolicyEvent, openLoadedMap, POLICY_MAPS, RingBuffer } from '../datapath';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { storedNames, viewEvent, type PolicyEventView } from '../policy';
import { Store } from '../store';

// The view is the policy area's (the agent publishes the same on the bus).
export { viewEvent, type PolicyEventView };
import { readEventStream } from './events-stream';
import { addNatsOptions, dbOption, natsAuthOf, parseSince, pinDirOf, type NatsAuthOpts } from './options';

/** The agent's injection events (src/cli/agent-inject.ts): the outcome rides along as `inject`. */
function injectText(v: PolicyEventView): string {
  const o = (v as { inject?: { kind?: string; reason?: string; sport?: number; dport?: number; port?: string } }).inject;
  if (v.kind === 'inject-refused') return `did not inject ${o?.kind ?? '?'}: ${o?.reason ?? '?'}`;
  return `injected ${v.value} frame(s) of ${o?.kind ?? '?'} (ports ${o?.sport ?? '?'} -> ${o?.dport ?? '?'}) out of ${o?.port ?? '?'}`;
}

export function formatEvent(v: PolicyEventView): string {
  const what =
    v.kind === 'fire'
      ? `trigger fired (window sum ${v.value})`
      : v.kind === 'block'
        ? `blocked ${v.src} for ${(Number(v.value - v.timeNs) / 1e9).toFixed(3)}s`
        : v.kind === 'refused'
          ? `refused to block ${v.src}: it is in a protected prefix`
          : v.kind === 'would-block'
            ? `would block ${v.src} for ${(Number(v.value - v.timeNs) / 1e9).toFixed(3)}s (monitor only)`
            : v.kind === 'injected' || v.kind === 'inject-refused'
              ? injectText(v)
              : `matched (${v.value} bytes)`;
  return `${v.time} ${v.kind.padEnd(5)} ${v.policy} ${v.src} -> ${v.dst} scope=${v.scope}: ${what}`;
}

/** A stored event's view as it was (its JSON body has the 64-bit fields as decimal strings). */
function storedView(body: string): PolicyEventView {
  const j = JSON.parse(body) as Omit<PolicyEventView, 'value' | 'timeNs'> & { value: string; timeNs: string };
  return { ...j, value: BigInt(j.value), timeNs: BigInt(j.timeNs) };
}

/** The store a running agent writes, if one runs and stores. */
async function agentStore(pinDir: string): Promise<string | undefined> {
  try {
    const st = await agentRequest<{ extras?: { store?: { file: string } } }>(agentSocketPath(pinDir), { op: 'status' });
    return st.extras?.store?.file;
  } catch (err) {
    if (err instanceof NoAgentError) return undefined;
    throw err;
  }
}

const untilSignal = () =>
  new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

/** Polling period of --follow on the store. */
const FOLLOW_POLL_MS = 200;

async function fromStore(file: string, opts: EventsOpts, print: (v: PolicyEventView) => void): Promise<void> {
  const store = Store.open(file, { readonly: true });
  try {
    let afterId = 0;
    const drain = () => {
      for (const e of store.events({ afterId, ...(opts.since !== undefined ? { sinceNs: opts.since } : {}) })) {
        print(storedView(e.body));
        afterId = e.id;
      }
    };
    drain();
    if (!opts.follow) return;
    const timer = setInterval(drain, FOLLOW_POLL_MS);
    await untilSignal();
    clearInterval(timer);
  } finally {
    store.close();
  }
}

interface EventsOpts extends NatsAuthOpts {
  follow?: boolean;
  json?: boolean;
  since?: bigint;
  node?: string;
  nats?: string;
  db: string;
}

export function register(program: Command): void {
  const events = program
    .command('events')
    .description('print policy events: trigger fires, blocks and `event` matches')
    .option('--follow', 'keep printing new events until interrupted')
    .option('--json', 'one JSON object per line')
    .option('--since <time>', 'only events since this time (ISO 8601) or this long ago (10m, 2h); reads the store, or with --nats the stream', (v: string) => parseSince(v))
    .option('--node <name>', 'with --nats: only this node\'s events')
    .addOption(dbOption('read the events of this store (default: the store of the running agent, if it stores)'))
    .addHelpText(
      'after',
      `
Each event names its kind (fire: a trigger switched its policy on; block: a source went on the
blocklist; match: a packet met an \`event\` action; refused: a block of an address in a protected
prefix was refused; would-block: a monitor-only policy would have blocked), the policy, the
addresses (the client first for HTTP response metrics) and the scope. A storing agent adds its
own: injected and inject-refused, what an \`inject\` action sent on a fire, or why not.

Where they come from: a running \`bae agent\` that stores (--db, its default) reads the kernel's
ring buffer itself and keeps every event in its store: bae events reads them there, all of them
or --since a time. Without such an agent the kernel keeps events in a ring buffer until a reader
takes them: bae events prints those waiting (and takes them) and exits. --db FILE reads that
store whether an agent runs or not.

With --nats it reads the fleet's event stream (BAE_EVENTS, kept 7 days) instead: every node's
events, block commands applied (kind command), in the order the stream took them, from --since
(default: the oldest kept). A reader that was away catches up with what it missed; without
--follow it stops once it has caught up, with it it goes on with new ones.

Examples:
  sudo bae events
  sudo bae events --since 10m
  sudo bae events --follow
  sudo bae events --follow --json | jq 'select(.kind == "block") | .src'
  sudo bae events --db /var/lib/bae/bae.db --since 2026-12-07T10:00:00Z --json
  sudo bae lab exec bae -- bae events --follow
  bae events --nats nats://10.0.0.1:4222 --since 1h
  bae events --nats nats://10.0.0.1:4222 --since 2026-12-06T22:00:00Z --node edge-1 --follow --json`,
    )
    .action(async (opts: EventsOpts, command: Command) => {
      if (opts.nats !== undefined) {
        const since = opts.since !== undefined ? { since: new Date(Number(opts.since / 1_000_000n)) } : {};
        await readEventStream({ url: opts.nats, auth: natsAuthOf(opts), ...since, ...(opts.node !== undefined ? { node: opts.node } : {}), follow: opts.follow ?? false, json: opts.json ?? false });
        return;
      }
      if (opts.node !== undefined) throw new UsageError('--node reads the fleet\'s event stream: it goes with --nats');
      const pinDir = pinDirOf(command);
      const print = (v: PolicyEventView) => process.stdout.write((opts.json ? toJson(v) : formatEvent(v)) + '\n');
      // BAE_DB alone names where a store would be; reading one is asked for by --db, or by an agent that stores.
      const dbGiven = command.getOptionValueSource('db') === 'cli';
      const file = dbGiven ? opts.db : await agentStore(pinDir);
      if (file !== undefined) return fromStore(file, opts, print);
      if (opts.since !== undefined) throw new UsageError('--since reads the store, and no running agent stores events here (bae agent --db), nor was --db given');
      const names = storedNames(pinDir);
      const map = openLoadedMap(POLICY_MAPS.events, pinDir);
      const ring = new RingBuffer(map, (record: Buffer) => print(viewEvent(decodePolicyEvent(record), names, process.hrtime.bigint(), Date.now())));
      try {
        ring.consume();
        if (!opts.follow) return;
        await untilSignal();
      } finally {
        ring.close();
        map.close();
      }
    });
  addNatsOptions(events, 'read the fleet\'s event stream (JetStream) instead of the local ring or store');
}
