// `bae import --pcap FILE [--name NAME]`: a pcap or pcapng file (tcpdump, tshark, scapy) into the
// store, as packets of kind 'imported' under a scenario of that name.
import * as path from 'node:path';
import { Command } from 'commander';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { Store, importCapture } from '../store';
import { dbOption } from './options';

export function register(program: Command): void {
  program
    .command('import')
    .description('bring a pcap or pcapng file into the store as a scenario (packets of kind imported)')
    .option('--pcap <file>', 'the pcap or pcapng file to read (required); Ethernet frames only')
    .option('--name <name>', 'the scenario\'s name (default: the file\'s name without extension)')
    .addOption(dbOption())
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
The file is read whole and stored in one transaction: all of it or nothing. A scenario name
that is taken is refused. bae export --scenario NAME writes it out again.

Examples:
  sudo bae import --pcap /tmp/client.pcap --name checkout-flow
  sudo tcpdump -i eth0 -w /tmp/t.pcap -c 1000 && sudo bae import --pcap /tmp/t.pcap
  sudo bae export --pcap /tmp/again.pcapng --scenario checkout-flow`,
    )
    .action((opts: { pcap?: string; name?: string; db: string; json?: boolean }) => {
      if (opts.pcap === undefined) throw new UsageError('bae import needs --pcap FILE (a pcap or pcapng file)');
      const name = opts.name ?? path.basename(opts.pcap).replace(/\.[^.]*$/, '');
      if (name === '') throw new UsageError('bae import needs a scenario name (--name)');
      const store = Store.open(opts.db);
      try {
        const res = importCapture(store, opts.pcap, name);
        process.stdout.write(opts.json ? toJson({ name, ...res }) + '\n' : `${res.packets} packets of ${opts.pcap} (${res.format}) imported as scenario '${name}'\n`);
      } finally {
        store.close();
      }
    });
}
