// `bae scenarios [--json]`: the scenarios in the store (recorded or imported).
import { Command } from 'commander';
import { toJson } from '../json';
import { loadScenario } from '../scenario';
import { Store } from '../store';
import { dbOption } from './options';

export function register(program: Command): void {
  program
    .command('scenarios')
    .description('list the stored scenarios (bae record, bae import)')
    .addOption(dbOption())
    .option('--json', 'print them as JSON')
    .addHelpText(
      'after',
      `
Examples:
  sudo bae scenarios
  sudo bae scenarios --json | jq '.[].name'`,
    )
    .action((opts: { db: string; json?: boolean }) => {
      const store = Store.open(opts.db, { readonly: true });
      try {
        const list = store.scenarios().map((s) => {
          const d = loadScenario(store, s.name);
          return {
            name: s.name,
            created: new Date(Number(s.createdNs / 1_000_000n)).toISOString(),
            frames: s.packets,
            durationMs: s.durationMs,
            policies: d.policies ? d.policies.split(/^---$/m).length : 0,
            baseline: d.baseline !== null,
          };
        });
        if (opts.json) process.stdout.write(toJson(list) + '\n');
        else if (!list.length) process.stdout.write('no scenarios (bae record NAME, bae import --pcap FILE)\n');
        else for (const s of list) process.stdout.write(`${s.name.padEnd(24)} ${s.created} ${String(s.frames).padStart(8)} frames  ${s.policies} policies  ${s.baseline ? 'baseline' : 'no baseline'}\n`);
      } finally {
        store.close();
      }
    });
}
