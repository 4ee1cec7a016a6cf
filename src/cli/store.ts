// `bae store info [--json]`: what the store holds (counts, size, schema version, time span).
import { Command } from 'commander';
import { toJson } from '../json';
import { Store, type StoreInfo } from '../store';
import { dbOption } from './options';

const isoOf = (ns: bigint | null) => (ns === null ? '-' : new Date(Number(ns / 1_000_000n)).toISOString());

export function renderStoreInfo(i: StoreInfo): string {
  const c = i.counts;
  return [
    `store ${i.file}: schema version ${i.schemaVersion}, ${(i.fileBytes / 1048576).toFixed(1)} MB on disk, ${(i.usedBytes / 1048576).toFixed(1)} MB in use`,
    `  packets ${c.packets}, events ${c.events}, profile snapshots ${c.profileSnapshots}, policy versions ${c.policyVersions}, scenarios ${c.scenarios}`,
    `  oldest ${isoOf(i.oldestNs)}, newest ${isoOf(i.newestNs)}`,
  ].join('\n');
}

export function register(program: Command): void {
  const store = program
    .command('store')
    .description('the SQLite store of packets, events, profile snapshots, policy versions and scenarios')
    .addHelpText(
      'after',
      `
bae agent writes the store (--db, default /var/lib/bae/bae.db, BAE_DB); bae events, bae export
and bae store info read it; bae import adds a scenario to it (docs/store.md).

Examples:
  sudo bae store info
  sudo bae store info --db /tmp/lab.db --json`,
    );
  store
    .command('info')
    .description('counts, size, schema version and time span of the store')
    .addOption(dbOption())
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      `
Examples:
  sudo bae store info
  sudo bae store info --db /tmp/lab.db --json | jq .counts`,
    )
    .action((opts: { db: string; json?: boolean }) => {
      const s = Store.open(opts.db, { readonly: true });
      try {
        const info = s.info();
        process.stdout.write((opts.json ? toJson(info, 2) : renderStoreInfo(info)) + '\n');
      } finally {
        s.close();
      }
    });
}
