// `bae status`: where bae is attached and how, how full its maps are, its global counters.
import { Command } from 'commander';
import { PARSE_OUTCOMES, VERDICT_NAMES, VERIFIER_BUDGET, VERIFIER_LIMIT, status, type Status } from '../datapath';
import { agentRequest, agentSocketPath, type AgentStatus } from '../agent';
import { toJson, type Json } from '../json';
import { listBlockedPrefixes, listProtectedPrefixes, openPolicyMaps, readBlocklist, readPolicyStats } from '../policy';
import { moduleLogger } from '../log';
import { pinDirOf } from './options';

const log = moduleLogger('cli/status');

/** The running agent of pinDir (src/agent/), or null when none answers. */
async function agentOf(pinDir: string): Promise<Json<AgentStatus> | null> {
  return agentRequest<Json<AgentStatus>>(agentSocketPath(pinDir), { op: 'status' }, 2000).catch((err: unknown) => {
    log.debug({ err, pinDir }, 'no agent answered');
    return null;
  });
}

const fmt = (n: number): string => n.toLocaleString('en-US');

/** The policy stage's counters and blocklist sizes; null when its maps are not pinned. */
export function policyStage(pinDir: string) {
  let loaded;
  try {
    loaded = openPolicyMaps(pinDir);
  } catch (err) {
    log.debug({ err, pinDir }, 'no policy maps');
    return null;
  }
  try {
    const stats = readPolicyStats(loaded.maps);
    return {
      ...stats,
      blockedAddresses: readBlocklist(loaded.maps).length,
      blockedPrefixes: listBlockedPrefixes(loaded.maps).length,
      protectedPrefixes: listProtectedPrefixes(loaded.maps),
    };
  } finally {
    loaded.close();
  }
}

export function renderPolicyStage(p: NonNullable<ReturnType<typeof policyStage>>): string {
  return (
    `  policy stage:  ${p.blocklistDrops} dropped by blocks (${p.blockedAddresses} addresses, ${p.blockedPrefixes} prefixes listed), ` +
    `${p.blockRefused} blocks refused (${p.protectedPrefixes.length} protected prefixes), ${p.eventsLost} events lost` +
    `\n  capture:       ${p.captured} frames captured, ${p.captureLost} lost to a full ring (bae capture reads them)`
  );
}

function percent(n: number, of: number): string {
  return of > 0 ? `${((100 * n) / of).toFixed(1)}%` : '-';
}

export function renderStatus(st: Status): string {
  if (!st.loaded) return `bae is not loaded (nothing pinned in ${st.pinDir})`;
  const lines: string[] = [];
  lines.push(`bae is loaded, ${st.mode ?? 'unknown'} mode; pins in ${st.pinDir}`);
  for (const p of st.ports) {
    const where = p.attached
      ? `attached, ${p.xdpMode} XDP, prog ${p.progId}, link ${p.linkId}, ifindex ${p.ifindex}`
      : p.ifindex === 0
        ? 'NOT attached: no such interface in this network namespace (gone, or bae was loaded in another one)'
        : `NOT attached (the interface carries ${p.xdpMode === 'none' ? 'no' : 'another'} XDP program)`;
    lines.push(`  port ${p.iface}: ${where}`);
  }
  if (st.program) {
    const p = st.program;
    lines.push(
      `  program:       ${p.name} (id ${p.id}), ${fmt(p.verifiedInsns)} instructions verified ` +
        `(bae's budget ${fmt(VERIFIER_BUDGET)}, the kernel's limit ${fmt(VERIFIER_LIMIT)})`,
    );
  }
  const c = st.maps.conversations;
  if (c) lines.push(`  conversations: ${c.entries} of ${c.maxEntries} (${percent(c.entries, c.maxEntries)})`);
  const f = st.maps.tcpFlows;
  if (f) lines.push(`  tcp flows:     ${f.entries} of ${f.maxEntries} (${percent(f.entries, f.maxEntries)})`);
  if (st.counters) {
    const s = st.counters;
    lines.push(`  verdicts:      ${VERDICT_NAMES.map((v) => `${v} ${s.verdicts[v]}`).join(', ')}`);
    const parsed = PARSE_OUTCOMES.filter((o) => s.parse[o] > 0n);
    lines.push(`  parsed:        ${parsed.length ? parsed.map((o) => `${o} ${s.parse[o]}`).join(', ') : 'nothing yet'}`);
    lines.push(
      `  not profiled:  ${s.convFull} (conversation map full), ${s.flowFull} (flow map full); ` +
        `inline without a port: ${s.inlineNoPort}`,
    );
  }
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('status')
    .description('show where bae is attached, in which mode, its verifier cost, how full its maps are and its counters')
    .option('--json', 'print as JSON (every counter)')
    .addHelpText(
      'after',
      `
Run it in the network namespace where \`bae load\` ran: interfaces are looked up there.

Examples:
  sudo bae status
  sudo bae status --json | jq .counters.verdicts
  sudo bae status --json | jq .program.verifiedInsns
  sudo bae lab exec bae -- bae status`,
    )
    .action(async (opts: { json?: boolean }, command: Command) => {
      const pinDir = pinDirOf(command);
      const st = status({ pinDir });
      const agent = st.loaded ? await agentOf(pinDir) : null;
      const policy = st.loaded ? policyStage(pinDir) : null;
      if (opts.json) {
        process.stdout.write(toJson({ ...st, policy, agent }, 2) + '\n');
        return;
      }
      // The agent (src/agent/): whether delay, duplicate and reorder policies can be applied.
      const agentLine = !st.loaded
        ? ''
        : agent
          ? `\n  agent:         running (pid ${agent.pid}), delay line holding ${agent.line.inFlight} frames, ${agent.classes.length} delay classes in use`
          : '\n  agent:         none (delay, duplicate and reorder policies need `bae agent`)';
      process.stdout.write(renderStatus(st) + (policy ? '\n' + renderPolicyStage(policy) : '') + agentLine + '\n');
    });
}
