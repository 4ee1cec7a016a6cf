// `bae events [--follow] [--json]`: trigger fires, blocks and `event` matches from the policy
// stage's ring buffer. Without --follow it prints what is waiting and exits.
import { Command } from 'commander';
import { decodeAddress, decodePolicyEvent, openLoadedMap, POLICY_MAPS, RingBuffer, type PolicyEventRecord } from '../datapath';
import { toJson } from '../json';
import { storedNames } from '../policy';
import { pinDirOf } from './options';

const KINDS: Record<number, string> = { 1: 'fire', 2: 'block', 3: 'match', 4: 'refused', 5: 'would-block' };
const SCOPES: Record<number, string> = { 0: 'policy', 1: 'source', 2: 'destination', 3: 'conversation' };

export interface PolicyEventView {
  kind: string;
  policy: string;
  policyId: number;
  scope: string;
  src: string;
  dst: string;
  /** The window's sum (fire), the block's end in ns (block), the frame's length (match). */
  value: bigint;
  timeNs: bigint;
  /** Wall-clock time, from the monotonic kernel time (real clock). */
  time: string;
}

export function viewEvent(e: PolicyEventRecord, names: Map<number, string>, monoNow: bigint, wallNowMs: number): PolicyEventView {
  const ageMs = Number(monoNow - e.timeNs) / 1e6;
  return {
    kind: KINDS[e.kind] ?? `kind-${e.kind}`,
    policy: names.get(e.policyId) ?? `#${e.policyId}`,
    policyId: e.policyId,
    scope: SCOPES[e.scope] ?? String(e.scope),
    src: e.family ? decodeAddress(e.family, e.addrA) : '',
    dst: e.family ? decodeAddress(e.family, e.addrB) : '',
    value: e.value,
    timeNs: e.timeNs,
    time: new Date(wallNowMs - ageMs).toISOString(),
  };
}

export function formatEvent(v: PolicyEventView, e: PolicyEventRecord): string {
  const what =
    v.kind === 'fire'
      ? `trigger fired (window sum ${v.value})`
      : v.kind === 'block'
        ? `blocked ${v.src} for ${(Number(e.value - e.timeNs) / 1e9).toFixed(3)}s`
        : v.kind === 'refused'
          ? `refused to block ${v.src}: it is in a protected prefix`
          : v.kind === 'would-block'
            ? `would block ${v.src} for ${(Number(e.value - e.timeNs) / 1e9).toFixed(3)}s (monitor only)`
            : `matched (${v.value} bytes)`;
  return `${v.time} ${v.kind.padEnd(5)} ${v.policy} ${v.src} -> ${v.dst} scope=${v.scope}: ${what}`;
}

export function register(program: Command): void {
  program
    .command('events')
    .description('print policy events: trigger fires, blocks and `event` matches')
    .option('--follow', 'keep printing new events until interrupted')
    .option('--json', 'one JSON object per line')
    .addHelpText(
      'after',
      `
Each event names its kind (fire: a trigger switched its policy on; block: a source went on the
blocklist; match: a packet met an \`event\` action; refused: a block of an address in a protected
prefix was refused; would-block: a monitor-only policy would have blocked), the policy, the
addresses (the client first for HTTP response metrics) and the scope. The
kernel keeps events in a ring buffer until a reader takes them: without --follow, bae events
prints those waiting and exits.

Examples:
  sudo bae events
  sudo bae events --follow
  sudo bae events --follow --json | jq 'select(.kind == "block") | .src'
  sudo bae lab exec bae -- bae events --follow`,
    )
    .action(async (opts: { follow?: boolean; json?: boolean }, command: Command) => {
      const pinDir = pinDirOf(command);
      const names = storedNames(pinDir);
      const map = openLoadedMap(POLICY_MAPS.events, pinDir);
      const print = (record: Buffer) => {
        const e = decodePolicyEvent(record);
        const v = viewEvent(e, names, process.hrtime.bigint(), Date.now());
        process.stdout.write((opts.json ? toJson(v) : formatEvent(v, e)) + '\n');
      };
      const ring = new RingBuffer(map, print);
      try {
        ring.consume();
        if (!opts.follow) return;
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
      } finally {
        ring.close();
        map.close();
      }
    });
}
