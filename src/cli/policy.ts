// `bae policy check|apply|list|delete|show`: policy files -> validated, compiled map entries in
// the loaded bae. Every policy error is one line naming file:line:column and the policy (exit 2);
// nothing is written unless the whole set validates and fits the maps.
import { Command } from 'commander';
import { agentDelayLineStep } from '../agent';
import { ACTIONS, ACTION_BY_KIND, applyPolicyFiles, compilePolicies, deletePolicies, parsePolicyFiles, policyStatuses, summarize, type ApplyOutcome, type Policy } from '../policy';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { natsAuthOf, natsAuthOptions, natsOption, pinDirOf, wholeNumber, type NatsAuthOpts } from './options';
import { applyOverBus } from './policy-fleet';
import { warnInjectWithoutAgent } from './agent-inject';

function matchText(spec: Record<string, unknown>): string {
  const m = (spec.match ?? {}) as Record<string, unknown>;
  const parts = Object.entries(m).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`);
  return parts.length ? parts.join(' ') : 'every packet';
}

function actionsText(spec: Record<string, unknown>): string {
  return (spec.actions as Record<string, Record<string, unknown>>[])
    .map((a) => {
      const [kind, params] = Object.entries(a)[0]!;
      const p = Object.entries(params ?? {}).map(([k, v]) => `${k}=${String(v)}`);
      return p.length ? `${kind}(${p.join(' ')})` : kind;
    })
    .join(' ');
}

function triggerText(spec: Record<string, unknown>): string {
  const t = spec.trigger as { when: string; within: string; scope: string } | undefined;
  if (!t) return 'always';
  const forText = spec.for ? ` for ${String(spec.for)}` : ' until removed';
  const cool = spec.cooldown ? `, cooldown ${String(spec.cooldown)}` : '';
  return `when ${t.when} within ${t.within} per ${t.scope}${forText}${cool}`;
}

function describePolicy(p: { name: string; spec: unknown }): string {
  const spec = p.spec as Record<string, unknown>;
  return `${p.name} (priority ${String(spec.priority)}): ${matchText(spec)}; ${triggerText(spec)} -> ${actionsText(spec)}`;
}

function pending(p: Policy): string[] {
  return p.actions.filter((a) => !ACTION_BY_KIND.get(a.kind)!.kernel).map((a) => a.kind);
}

/** Words of `text` in lines of at most `width` characters (a longer word stands alone). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** Every action of the action table (src/policy/actions.ts) with its description, for --help. */
export function actionsHelp(width = 100): string {
  const column = 2 + Math.max(...ACTIONS.map((a) => a.kind.length)) + 2;
  return ACTIONS.map((a) => `  ${a.kind.padEnd(column - 2)}${wrap(a.description, width - column).join(`\n${' '.repeat(column)}`)}`).join('\n');
}

function printOutcome(out: ApplyOutcome, json: boolean): void {
  if (json) {
    process.stdout.write(
      toJson({
        generation: out.result.gen,
        policies: out.policies.map((p) => ({ name: p.name, id: p.id })),
        added: out.added,
        changed: out.changed,
        unchanged: out.unchanged,
        removed: out.removed,
        ms: out.result.ms,
      }, 2) + '\n',
    );
    return;
  }
  const parts = [
    out.added.length ? `added ${out.added.join(', ')}` : '',
    out.changed.length ? `changed ${out.changed.join(', ')}` : '',
    out.unchanged.length ? `unchanged ${out.unchanged.join(', ')}` : '',
    out.removed.length ? `removed ${out.removed.join(', ')}` : '',
  ].filter(Boolean);
  process.stdout.write(`${out.policies.length} ${out.policies.length === 1 ? 'policy' : 'policies'} active (generation ${out.result.gen})${parts.length ? ': ' + parts.join('; ') : ''}\n`);
}

export function register(program: Command): void {
  const policy = program
    .command('policy')
    .description('validate, apply, list, show and delete policies')
    .addHelpText(
      'after',
      `
A policy file (YAML or JSON, docs/policies.md) says which packets (match), when (trigger: a
metric over a sliding window) and what happens (actions, below). Errors name file:line:column
and the policy, exit 2, and change nothing that is loaded.

Actions (${ACTIONS.length}):
${actionsHelp()}

Examples:
  bae policy check policies/
  sudo bae policy apply policies/syn-flood.yaml policies/port-scan.yaml
  sudo bae policy apply --replace my-policies/    # the files become the whole set
  sudo bae policy show syn-flood
  sudo bae events --follow`,
    );

  policy
    .command('check')
    .description('validate and compile policy files without loading them; prints what would be loaded')
    .argument('<file...>', 'policy files (YAML or JSON) or directories of them')
    .option('--json', 'print the normalized policies and table sizes as JSON')
    .action((files: string[], opts: { json?: boolean }) => {
      const policies = parsePolicyFiles(files);
      const compiled = compilePolicies(policies);
      const tables = summarize(compiled);
      if (opts.json) {
        const list = compiled.rules.map((r) => ({ ...(r.policy.spec as object), id: r.id, source: r.policy.source, pendingActions: pending(r.policy) }));
        process.stdout.write(toJson({ policies: list, tables }, 2) + '\n');
        return;
      }
      for (const r of compiled.rules) {
        const wait = pending(r.policy);
        process.stdout.write(`${describePolicy(r.policy)}${wait.length ? `   [apply refuses until the datapath has: ${wait.join(', ')}]` : ''}\n`);
      }
      process.stdout.write(
        `ok: ${tables.rules} ${tables.rules === 1 ? 'policy' : 'policies'} in decision order; tables: ${tables.srcPrefixes} src and ${tables.dstPrefixes} dst prefixes, ` +
          `${tables.sportClasses}+${tables.dportClasses} port classes, ${tables.combinations} combinations, at most ${tables.maxCandidates} candidates per packet\n`,
      );
    });

  const applyCommand = policy
    .command('apply')
    .description('apply policy files to the loaded bae (atomically: packets see the old set or the new one)')
    .argument('<path...>', 'policy files (YAML or JSON) or directories of them')
    .option('--replace', 'make these files the whole set (policies not in them are removed)')
    .option('--monitor', 'monitor only: every policy of the set counts, fires and sends events (would-block for blocks) but enforces nothing, until the next apply without it')
    .option('--json', 'print the outcome as JSON')
    .addOption(natsOption('send the files to agents over the bus (with --node or --all) instead of the local bae'))
    .option('--node <name>', 'with --nats: the agent that applies them')
    .option('--all', 'with --nats: every agent applies them (each answers)')
    .option('--timeout <ms>', 'with --nats: how long to wait for the answers', wholeNumber(1, 600_000), 5000)
    .addHelpText(
      'after',
      `
With --nats the files are checked here, then sent as one request on bae.commands.policy.<node>
(--all: to every agent); each agent applies them as \`bae policy apply\` does on its node and
answers with the generation applied or its error; a refusal exits non-zero.

Examples:
  bae policy apply policies/syn-flood.yaml --nats nats://10.0.0.1:4222 --node edge-1
  bae policy apply policies/ --replace --nats nats://10.0.0.1:4222 --all --json`,
    )
    .action(async (paths: string[], opts: { replace?: boolean; monitor?: boolean; json?: boolean; nats?: string; node?: string; all?: boolean; timeout: number } & NatsAuthOpts, command: Command) => {
      if (opts.nats !== undefined) {
        if (opts.monitor) throw new UsageError('--monitor is for the local bae; over the bus, apply policies with spec.monitor: true');
        await applyOverBus(paths, { nats: opts.nats, auth: natsAuthOf(opts), timeoutMs: opts.timeout, ...(opts.node !== undefined ? { node: opts.node } : {}), ...(opts.all ? { all: true } : {}), ...(opts.replace ? { replace: true } : {}), ...(opts.json ? { json: true } : {}) });
        return;
      }
      if (opts.node !== undefined || opts.all) throw new UsageError('--node and --all go with --nats (the local bae needs neither)');
      const outcome = await applyPolicyFiles(paths, { pinDir: pinDirOf(command), replace: opts.replace ?? false, monitor: opts.monitor ?? false, delayLine: agentDelayLineStep });
      printOutcome(outcome, opts.json ?? false);
      await warnInjectWithoutAgent(outcome.policies, pinDirOf(command));
    });
  for (const o of natsAuthOptions()) applyCommand.addOption(o);

  policy
    .command('delete')
    .description('remove applied policies by name')
    .argument('<name...>', 'policy names')
    .option('--json', 'print the outcome as JSON')
    .action(async (names: string[], opts: { json?: boolean }, command: Command) => {
      printOutcome(await deletePolicies(names, { pinDir: pinDirOf(command), delayLine: agentDelayLineStep }), opts.json ?? false);
    });

  policy
    .command('list')
    .description('list the applied policies with their counters')
    .option('--json', 'print as JSON')
    .action((opts: { json?: boolean }, command: Command) => {
      const st = policyStatuses(pinDirOf(command));
      if (opts.json) {
        process.stdout.write(toJson(st.map((s) => ({ name: s.name, id: s.id, source: s.source, counters: s.counters })), 2) + '\n');
        return;
      }
      if (st.length === 0) {
        process.stdout.write('no policies applied\n');
        return;
      }
      const rows = [['NAME', 'PRIORITY', 'MATCHED', 'APPLIED', 'FIRED', 'BLOCKS', 'SOURCE']];
      for (const s of st) {
        rows.push([s.name, String(s.spec.priority), String(s.counters.matched), String(s.counters.applied), String(s.counters.fired), String(s.counters.blocks), s.source]);
      }
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
    });

  policy
    .command('show')
    .description('one applied policy: its definition, hit and trigger fire counters, trigger windows')
    .argument('<name>', 'policy name')
    .option('--json', 'print as JSON')
    .action((name: string, opts: { json?: boolean }, command: Command) => {
      const s = policyStatuses(pinDirOf(command)).find((x) => x.name === name);
      if (!s) throw new UsageError(`no applied policy named '${name}' (see \`bae policy list\`)`);
      if (opts.json) {
        process.stdout.write(toJson(s, 2) + '\n');
        return;
      }
      process.stdout.write(
        `${describePolicy(s)}\n` +
          `  id ${s.id}, from ${s.source}\n` +
          `  matched ${s.counters.matched}, applied ${s.counters.applied}, trigger fired ${s.counters.fired}, blocks ${s.counters.blocks}\n` +
          `  trigger windows ${s.windows} (on now: ${s.activeWindows})\n`,
      );
    });
}
