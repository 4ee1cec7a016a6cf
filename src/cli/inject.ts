// `bae inject`: forged packets that fit a live conversation (valid ones and the malformed
// catalogue), sent out of a port through live frames; `--list` shows the catalogue.
import { Command, InvalidArgumentError } from 'commander';
import { reportPacketEvents, type PacketEvent } from '../agent';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { FORGE_KINDS, INJECT_MAX_COUNT, INJECT_MAX_RATE, inject, type InjectResult } from '../reconstruct';
import { Store, StoreError, type PacketRecord } from '../store';
import { dbOption, numberIn, pinDirOf, wholeNumber } from './options';

interface InjectOpts {
  list?: boolean;
  json?: boolean;
  conversation?: [string, string];
  kind?: string;
  count: number;
  rate?: number;
  seed: number;
  port?: string;
  sport?: number;
  dport?: number;
  srcMac?: string;
  dstMac?: string;
  db: string;
  store: boolean;
}

function conversationArg(value: string): [string, string] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new InvalidArgumentError('expected SRC,DST: two addresses, the sender first');
  return [parts[0], parts[1]];
}

function listText(): string {
  const width = Math.max(...FORGE_KINDS.map((k) => k.name.length));
  const rows = FORGE_KINDS.map((k) => `  ${k.name.padEnd(width)}  ${k.valid ? 'valid    ' : 'malformed'}  ${k.needs.padEnd(3)}  ${k.summary}${k.ipv4Only ? ' [IPv4]' : ''}`);
  return `${FORGE_KINDS.length} kinds (NEEDS: a TCP flow, UDP ports given with --sport/--dport, or any)\n  ${'KIND'.padEnd(width)}  ${'TYPE'.padEnd(9)}  NEEDS\n${rows.join('\n')}`;
}

function resultJson(r: InjectResult): unknown {
  return {
    kind: r.plan.kind.name,
    port: r.plan.port,
    ifindex: r.plan.ifindex,
    endpoints: r.plan.endpoints,
    tcp: r.plan.tcp ?? null,
    rate: r.plan.rate,
    spacing: r.plan.gapNs ? 'profile' : 'rate',
    sent: r.report.frames,
    calls: r.report.calls,
    elapsedNs: r.report.elapsedNs,
    frames: r.sent.map(({ record, repeat }) => ({
      tsNs: record.tsNs,
      ifindex: record.ifindex,
      kind: record.kind,
      action: record.action,
      reason: record.reason,
      origLen: record.origLen,
      repeat,
      data: record.data.toString('hex'),
    })),
  };
}

/** The event the agent publishes for this injection (bae.events.<node>.injected, docs/inject.md). */
export function injectedEvent(r: InjectResult): PacketEvent {
  const ep = r.plan.endpoints;
  return { kind: 'injected', time: new Date().toISOString(), by: 'bae inject', reason: r.plan.kind.name, policy: null, src: ep.src, dst: ep.dst, sport: ep.sport, dport: ep.dport, proto: ep.proto, port: r.plan.port, frames: r.report.frames };
}

/**
 * Every frame sent, a repeated one once per time it left (a storm of N: N rows), into the store;
 * the frames are out already, so a failure says how many were sent and not kept.
 */
function storeSent(db: string, r: InjectResult): void {
  const rows: PacketRecord[] = r.sent.flatMap(({ record, repeat }) => Array.from({ length: repeat }, () => record));
  if (rows.length === 0) return;
  try {
    const store = Store.open(db);
    try {
      store.insertPackets(rows);
    } finally {
      store.close();
    }
  } catch (err) {
    throw new StoreError(`${rows.length} frame(s) were sent but not stored in ${db}: ${(err as Error).message}`, { cause: err });
  }
}

export function register(program: Command): void {
  program
    .command('inject')
    .description('send forged packets that fit a live conversation: valid segments or a kind of the malformed catalogue')
    .option('--list', 'list the kinds, each with one line of what it is')
    .option('--json', 'print JSON: the kinds with --list, else what was sent (frames as hex, times as decimal strings)')
    .option('--conversation <src,dst>', 'the conversation, as seen by bae: SRC sends the forged packets to DST', conversationArg)
    .option('--kind <kind>', 'what to forge (see --list)')
    .option('--count <n>', 'instances to send', wholeNumber(1, INJECT_MAX_COUNT), 1)
    .option('--rate <pps>', `frames per second (at most ${INJECT_MAX_RATE}); default: spacing drawn from the profile, else 1000`, numberIn(0.001, INJECT_MAX_RATE))
    .option('--seed <n>', 'seed of sizes, payloads, spacing and the flaws\' details: the same seed forges the same frames', wholeNumber(0, 0xffffffff), 1)
    .option('--port <iface>', 'the port the frames leave by (default: bae\'s port, when it has one)')
    .option('--sport <port>', 'the sender\'s port (chooses among TCP flows; needed for UDP kinds)', wholeNumber(1, 65535))
    .option('--dport <port>', 'the receiver\'s port (chooses among TCP flows; needed for UDP kinds)', wholeNumber(1, 65535))
    .option('--src-mac <mac>', 'source MAC (default: the port\'s)')
    .option('--dst-mac <mac>', 'destination MAC (default: the neighbour table\'s entry of DST)')
    .addOption(dbOption('the store that keeps every frame sent (kind injected, with its reason; `bae export` reads it)'))
    .option('--no-store', 'keep nothing in the store')
    .addHelpText(
      'after',
      `
Addresses and ports come from bae's conversation and TCP flow maps, TCP sequence and
acknowledgement numbers from the flow state (a data segment lands exactly at the receiver's next
expected byte), frame sizes and spacing from the conversation's profile. Frames leave the port
through BPF_PROG_TEST_RUN live frames (Linux 5.18+), at most --rate a second, and are what
\`--json\` prints byte for byte. IPv4 and IPv6 (the ip-* header flaws but ip-truncated: IPv4).

Examples:
  bae inject --list
  sudo bae inject --conversation 10.199.0.1,10.199.0.2 --kind tcp-in-window --port to-server --dst-mac 02:00:00:00:00:02
  sudo bae inject --conversation 10.199.0.1,10.199.0.2 --kind tcp-dup-ack-storm --count 1000 --rate 10000 --port to-server
  sudo bae inject --conversation 10.199.0.1,10.199.0.2 --kind udp-bad-checksum --sport 5000 --dport 5001 --seed 7 --json
  sudo bae inject --conversation fd00:bae::1,fd00:bae::2 --kind tcp-rst --port to-server --dst-mac 02:00:00:00:00:02`,
    )
    .action(async (opts: InjectOpts, command: Command) => {
      if (opts.list) {
        const kinds = FORGE_KINDS.map((k) => ({ name: k.name, layer: k.layer, valid: k.valid, needs: k.needs, ipv4Only: k.ipv4Only, repeats: k.repeats, summary: k.summary }));
        process.stdout.write((opts.json ? toJson({ kinds }, 2) : listText()) + '\n');
        return;
      }
      if (!opts.conversation) throw new UsageError('bae inject needs --conversation SRC,DST (or --list)');
      if (!opts.kind) throw new UsageError('bae inject needs --kind KIND (bae inject --list shows them)');
      const abort = new AbortController();
      const stop = () => abort.abort();
      process.once('SIGINT', stop);
      let result: InjectResult;
      try {
        result = await inject(
          {
            src: opts.conversation[0],
            dst: opts.conversation[1],
            kind: opts.kind,
            count: opts.count,
            rate: opts.rate,
            seed: opts.seed,
            port: opts.port,
            sport: opts.sport,
            dport: opts.dport,
            srcMac: opts.srcMac,
            dstMac: opts.dstMac,
            pinDir: pinDirOf(command),
          },
          abort.signal,
        );
      } finally {
        process.off('SIGINT', stop);
      }
      // The agent of this pin directory, if one runs, puts it on its event stream (and the live view).
      if (result.report.frames > 0) await reportPacketEvents(pinDirOf(command), [injectedEvent(result)]);
      if (opts.store) storeSent(opts.db, result);
      if (opts.json) {
        process.stdout.write(toJson(resultJson(result), 2) + '\n');
        return;
      }
      const ep = result.plan.endpoints;
      const ms = Number(result.report.elapsedNs / 1000n) / 1000;
      process.stdout.write(
        `sent ${result.report.frames} frame(s) of ${result.plan.kind.name} ${ep.src}:${ep.sport} -> ${ep.dst}:${ep.dport} (${ep.proto}) ` +
          `out of ${result.plan.port} in ${ms.toFixed(1)} ms\n`,
      );
    });
}
