// Escalation of blocks for repeat offenders, as fail2ban's bantime.increment: a block lasts
// ttl x factor^n, at most a maximum, where n counts the address's earlier escalating blocks since
// its history last lapsed (`forget` after the latest of them ended). The history is the kernel's
// LRU map policy_offences, shared by the program's block actions and user space's blocks
// (`bae block --escalate`, block commands), so that both count as one. This is the one
// definition in TypeScript: the reference model, the Blocklist and the compiler use it, and
// bpf/policy_trigger.h policy_escalate_ttl() computes the same in the kernel.
import { ENUMS, type PolicyEscalate, type PolicyOffence } from '../datapath';
import { ACTION_BY_KIND } from './actions';
import { METRIC_BY_NAME, metricReversed } from './metrics';
import type { Policy } from './model';

export type Escalation = PolicyEscalate;

/** POLICY_ESCALATE_STEPS: the kernel's loop bound (factor >= 2 reaches any maximum within it). */
export const ESCALATE_STEPS = ENUMS.policy_bounds.POLICY_ESCALATE_STEPS;
export const ESCALATE_FACTOR_MIN = 2;
export const ESCALATE_FACTOR_MAX = 16;
const H = 3_600_000_000_000n;
/** Defaults of a block's maxTtl and forget when only the factor is given. */
export const ESCALATE_DEFAULT_MAX_NS = 24n * H;
export const ESCALATE_DEFAULT_FORGET_NS = 24n * H;

/** n: the earlier escalating blocks that count at `nowNs` (0 once the history lapsed). */
export function offencesInMemory(history: PolicyOffence | undefined, forgetNs: bigint, nowNs: bigint): number {
  if (!history) return 0;
  return nowNs < history.lastExpiryNs || nowNs - history.lastExpiryNs < forgetNs ? history.count : 0;
}

/** The TTL of a block with base `ttlNs` of an address with `history` at `nowNs`, and its n. */
export function escalatedTtl(ttlNs: bigint, e: Escalation, history: PolicyOffence | undefined, nowNs: bigint): { ttlNs: bigint; n: number } {
  const n = offencesInMemory(history, e.forgetNs, nowNs);
  const factor = BigInt(e.factor);
  let ttl = ttlNs;
  for (let i = 0; i < ESCALATE_STEPS && i < n && ttl < e.maxNs && factor > 1n; i++) ttl = ttl > e.maxNs / factor ? e.maxNs : ttl * factor;
  if (ttl > e.maxNs) ttl = e.maxNs;
  return { ttlNs: ttl, n };
}

/** The history after a block of `ttlNs` at `nowNs` that found n earlier ones. */
export const recordOffence = (n: number, nowNs: bigint, ttlNs: bigint): PolicyOffence => ({ count: n + 1, lastExpiryNs: nowNs + ttlNs });

/** The escalation of a block action's parameters (escalate, maxTtl, forget), or undefined. */
export function blockEscalation(params: Readonly<Record<string, bigint | number | string | boolean>>): Escalation | undefined {
  if (params.escalate === undefined) return undefined;
  return {
    factor: params.escalate as number,
    maxNs: (params.maxTtl as bigint | undefined) ?? ESCALATE_DEFAULT_MAX_NS,
    forgetNs: (params.forget as bigint | undefined) ?? ESCALATE_DEFAULT_FORGET_NS,
  };
}

/**
 * The verdict an action of policy p gives the packet. A block for a response metric lists the
 * client, the packet's destination: it decides nothing about the server's packet, which is not
 * from the address it blocks, so the response that fired it still reaches the client (as
 * SecBeat's do) and the client's next packets meet the blocklist.
 */
export function actionVerdict(p: Policy, kind: string): 'pass' | 'drop' | null {
  const v = ACTION_BY_KIND.get(kind)!.verdict;
  if (kind === 'block' && p.trigger && metricReversed(METRIC_BY_NAME.get(p.trigger.metric)!.id)) return null;
  return v;
}
