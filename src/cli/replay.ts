// `bae replay NAME [--policy FILE...]`: a stored scenario's frames through its policies and seeds
// again (offline, BPF_PROG_TEST_RUN on a bae of its own), compared with its baseline decisions.
import { Command } from 'commander';
import * as fs from 'node:fs';
import { resolveIfindex } from '../datapath';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { parsePolicyFiles } from '../policy';
import { compareDecisions, loadScenario, policiesFromYaml, policiesToYaml, replayFrames, saveBaseline, scenarioFrames, withSeeds } from '../scenario';
import { Store } from '../store';
import { dbOption, wholeNumber } from './options';

export function register(program: Command): void {
  program
    .command('replay')
    .description('run a scenario\'s frames through its policies and seeds again and report the decisions that differ')
    .argument('<name>', 'the scenario (bae scenarios lists them)')
    .option('--policy <file...>', 'policy files for a scenario without policies (an imported one): its first replay stores them and the baseline')
    .option('--show <n>', 'differences printed at most', wholeNumber(0, 1_000_000), 20)
    .addOption(dbOption())
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
The frames run in order, each at its recorded time on a test clock, through the bae program
loaded on its own (nothing is shared with a loaded bae), with the scenario's policies and
seeds. Every decision — verdict, policies applied, trigger fires, blocks, delay classes,
modified bytes, kernel events — is compared with the baseline: none differs for the
deterministic actions. The exit code is 1 when a decision differs (like diff).

Examples:
  sudo bae replay before-fix
  sudo bae import --pcap /tmp/t.pcap --name t && sudo bae replay t --policy policies/syn-flood.yaml
  sudo bae replay before-fix --json | jq '.differences | length'`,
    )
    .action(async (name: string, opts: { policy?: string[]; show: number; db: string; json?: boolean }) => {
      const store = Store.open(opts.db);
      try {
        const sc = loadScenario(store, name);
        if (sc.baseline && opts.policy) throw new UsageError(`scenario '${name}' has its policies and baseline already; --policy is for a scenario without them`);
        if (!sc.policies && !opts.policy) throw new UsageError(`scenario '${name}' has no policies (it was imported): give them with --policy FILE`);
        for (const f of opts.policy ?? []) if (!fs.existsSync(f)) throw new UsageError(`--policy ${f}: no such file`);
        const policies = opts.policy ? parsePolicyFiles(opts.policy) : policiesFromYaml(sc.policies!, `scenario ${name}`);
        const frames = scenarioFrames(store, name);
        const ifindexOf = (iface: string) => {
          try {
            return resolveIfindex(iface);
          } catch {
            return 0;
          }
        };
        const res = await replayFrames(frames, withSeeds(policies, sc.seeds), { ifindexOf });
        const first = sc.baseline === null;
        if (first) saveBaseline(store, name, policiesToYaml(policies), sc.seeds, res.decisions);
        const differences = first ? [] : compareDecisions(sc.baseline!, res.decisions);
        const out = { name, frames: frames.length, baseline: first ? 'recorded now' : 'compared', totals: res.totals, differences };
        if (opts.json) process.stdout.write(toJson(out) + '\n');
        else {
          process.stdout.write(`scenario '${name}': ${frames.length} frames replayed; decisions: ${Object.entries(res.totals).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}\n`);
          if (first) process.stdout.write('no baseline yet: this replay is now the baseline\n');
          else process.stdout.write(differences.length ? `${differences.length} frames decided differently from the baseline:\n` : 'every decision is as in the baseline\n');
          for (const d of differences.slice(0, opts.show)) {
            process.stdout.write(`  frame ${d.index}: ${Object.entries(d.fields).map(([f, [a, b]]) => `${f} ${a} -> ${b}`).join('; ')}\n`);
          }
        }
        if (differences.length) process.exitCode = 1;
      } finally {
        store.close();
      }
    });
}
