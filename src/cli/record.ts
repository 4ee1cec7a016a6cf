// `bae record NAME [--duration DUR]`: every frame the datapath sees for a while, with the applied
// policies and their seeds, stored as a scenario with the decisions one replay gives
// (docs/scenarios.md).
import { Command } from 'commander';
import { agentDelayLineStep, agentRequest, agentSocketPath, type AgentStatus } from '../agent';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { parseDuration } from '../policy';
import { MAX_RECORD_MS, RECORD_POLICY, recordScenario } from '../scenario';
import { Store } from '../store';
import { dbOption, pinDirOf } from './options';

/** Whether an agent runs at this pin directory and stores (then it, not we, reads the capture ring). */
async function agentStores(pinDir: string): Promise<boolean> {
  try {
    const st = await agentRequest<AgentStatus & { extras?: { store?: { file: string } } }>(agentSocketPath(pinDir), { op: 'status' }, 2000);
    return st.extras?.store?.file !== undefined;
  } catch {
    return false;
  }
}

export function register(program: Command): void {
  program
    .command('record')
    .description('record a scenario: every frame for a while, the applied policies and their seeds, and the decisions')
    .argument('<name>', 'the scenario\'s name (unique in the store)')
    .option('--duration <duration>', 'how long to record (e.g. 10s, 2m; at most 1h)', '10s')
    .addOption(dbOption())
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
For the duration, a policy of its own (${RECORD_POLICY}, priority 65535, capture only) keeps
every frame whole; it is removed at the end (also on Ctrl-C). The scenario keeps the applied
policies, the seed each one's random sequence started from, the frames, and the decision log
of one replay of them (the baseline). bae replay NAME runs the frames through the same policies
and seeds again and reports every decision that differs.

Examples:
  sudo bae record before-fix --duration 30s
  sudo bae replay before-fix
  sudo bae scenarios`,
    )
    .action(async (name: string, opts: { duration: string; db: string; json?: boolean }, command: Command) => {
      const d = parseDuration(opts.duration);
      if (typeof d === 'string') throw new UsageError(`--duration ${opts.duration}: ${d}`);
      const durationMs = Number(d / 1_000_000n);
      if (durationMs < 1 || durationMs > MAX_RECORD_MS) throw new UsageError(`--duration ${opts.duration}: from 1ms to 1h`);
      const pinDir = pinDirOf(command);
      const stores = await agentStores(pinDir);
      const store = Store.open(opts.db, { readonly: false });
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const res = await recordScenario({ pinDir, name, durationMs, store, delayLine: agentDelayLineStep, agentStores: stores, signal: ac.signal, say: (l) => process.stderr.write(`bae: ${l}\n`) });
        if (opts.json) process.stdout.write(toJson(res) + '\n');
        else {
          process.stdout.write(`scenario '${res.name}': ${res.frames} frames in ${res.durationMs} ms, policies ${res.policies.join(', ') || 'none'}\n`);
          process.stdout.write(`decisions: ${Object.entries(res.totals).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}\n`);
          if (res.truncated) process.stdout.write(`${res.truncated} frames were longer than a capture record holds and are kept cut\n`);
        }
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        store.close();
      }
    });
}
