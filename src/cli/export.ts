// `bae export --pcap FILE [--since T] [--conversation A,B] [--policy NAME] [--kind K]`: stored
// packets to pcapng, each with a comment saying what bae did with it (tshark -e frame.comment).
import { Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { PACKET_KINDS, Store, exportPcapng, hostIfaceName, parseConversation, type PacketKind } from '../store';
import { dbOption, parseSince } from './options';

interface ExportOpts {
  pcap?: string;
  db: string;
  since?: bigint;
  conversation?: [string, string];
  policy?: string;
  kind?: PacketKind;
  scenario?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('export')
    .description('write stored packets (captured, dropped, injected, reconstructed, imported) to a pcapng file')
    .option('--pcap <file>', 'the pcapng file to write (required)')
    .addOption(dbOption())
    .option('--since <time>', 'only packets since this time (ISO 8601) or this long ago (10m, 2h)', (v: string) => parseSince(v))
    .option('--conversation <a,b>', 'only packets between these two addresses, either direction', (v: string) => {
      const c = parseConversation(v);
      if (!c) throw new InvalidArgumentError('expected two IP addresses separated by a comma (10.0.0.1,10.0.0.2)');
      return c;
    })
    .option('--policy <name>', 'only packets of this policy')
    .addOption(new Option('--kind <kind>', 'only packets of this kind').choices(PACKET_KINDS))
    .option('--scenario <name>', 'only the packets of this scenario (bae import --name)')
    .option('--json', 'print the counts as JSON')
    .addHelpText(
      'after',
      `
Each packet carries a comment: its kind (captured, dropped, injected, reconstructed, imported),
the policy, the action and the reason, e.g. "bae: dropped policy=lossy action=loss reason=seeded
loss". tshark and Wireshark show it (frame.comment). Interfaces keep the names they have on this
host. The store is read, never written.

Examples:
  sudo bae export --pcap /tmp/dropped.pcapng --kind dropped --since 10m
  sudo bae export --pcap /tmp/conv.pcapng --conversation 10.0.0.1,10.0.0.2 --policy lossy
  tshark -r /tmp/dropped.pcapng -T fields -e frame.number -e frame.comment`,
    )
    .action((opts: ExportOpts) => {
      if (opts.pcap === undefined) throw new UsageError('bae export needs --pcap FILE (the pcapng file to write)');
      const store = Store.open(opts.db, { readonly: true });
      try {
        const res = exportPcapng(store, opts.pcap, {
          ...(opts.since !== undefined ? { sinceNs: opts.since } : {}),
          ...(opts.policy !== undefined ? { policy: opts.policy } : {}),
          ...(opts.kind !== undefined ? { kind: opts.kind } : {}),
          ...(opts.scenario !== undefined ? { scenario: opts.scenario } : {}),
          ...(opts.conversation !== undefined ? { conversation: opts.conversation } : {}),
          ifaceName: hostIfaceName,
        });
        process.stdout.write(opts.json ? toJson({ file: opts.pcap, ...res }) + '\n' : `${res.packets} packets written to ${opts.pcap}\n`);
      } finally {
        store.close();
      }
    });
}
