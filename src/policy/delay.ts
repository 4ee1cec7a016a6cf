// Delay-class actions (delay, duplicate, reorder): the part of compile and apply that the agent
// owns (docs/agent.md). The kernel cannot hold a packet, so these actions do not become kernel
// code: the policies of a set that carry them are grouped by their parameters, each distinct
// parameter set gets one class of the agent's delay line, and the rule carries only the class
// (policy_rule.delay_class). Class 0 is "no delay", so a set has at most DELAY_CLASSES_USABLE.
import { POLICY_DELAY_CLASSES } from '../datapath';
import type { DelayParams } from '../emulation';
import { ACTION_BY_KIND } from './actions';
import { PolicyError } from './errors';
import type { Policy, PolicyAction } from './model';

/** Classes per port of the delay line (bae.h POLICY_DELAY_CLASSES). */
export { POLICY_DELAY_CLASSES };
/** Classes a policy set may use: 1..7 (0 means "no delay"). */
export const DELAY_CLASSES_USABLE = POLICY_DELAY_CLASSES - 1;

export const DELAY_CLASS_ACTIONS: readonly string[] = ['delay', 'duplicate', 'reorder'];
/** Their bits in policy_rule.action_mask. */
const DELAY_CLASS_MASK = DELAY_CLASS_ACTIONS.reduce((m, kind) => m | (1 << ACTION_BY_KIND.get(kind)!.bit), 0);

/** A delay class of a compiled set: the class number (1..7) and the delay line's parameters. */
export interface DelayClass {
  cls: number;
  params: DelayParams;
  /** Policies that use it, in decision order. */
  policies: string[];
}

export function hasDelayClassAction(p: Policy): boolean {
  return p.actions.some((a) => DELAY_CLASS_ACTIONS.includes(a.kind));
}

/** The first delay-class action of a policy (for errors that point at it). */
export function firstDelayClassAction(p: Policy): PolicyAction | undefined {
  return p.actions.find((a) => DELAY_CLASS_ACTIONS.includes(a.kind));
}

const pct = (v: unknown) => (v === undefined ? 0 : (v as number) / 100);

/** The delay line's parameters of a policy's delay-class actions; undefined when it has none. */
export function delayParamsOf(p: Policy): DelayParams | undefined {
  if (!hasDelayClassAction(p)) return undefined;
  const get = (kind: string) => p.actions.find((a) => a.kind === kind)?.params;
  const delay = get('delay');
  const duplicate = get('duplicate');
  const reorder = get('reorder');
  if (reorder && !delay) {
    const a = p.actions.find((x) => x.kind === 'reorder')!;
    throw new PolicyError({ ...(a.source ?? p.source), policy: p.name }, "action 'reorder' needs a 'delay' action in the same policy (reordered packets skip the delay that holds the others)");
  }
  return {
    delayMs: delay ? Number(delay.time as bigint) / 1e6 : 0,
    jitterMs: delay?.jitter !== undefined ? Number(delay.jitter as bigint) / 1e6 : 0,
    distribution: (delay?.distribution as DelayParams['distribution'] | undefined) ?? 'uniform',
    correlation: pct(delay?.correlation),
    duplicate: pct(duplicate?.probability),
    duplicateCorrelation: pct(duplicate?.correlation),
    reorder: pct(reorder?.probability),
    reorderCorrelation: pct(reorder?.correlation),
    reorderGap: reorder?.gap !== undefined ? (reorder.gap as number) : 1,
  };
}

/** A text that is equal for equal parameter sets (field order fixed). */
function paramsKey(d: DelayParams): string {
  return [d.delayMs, d.jitterMs, d.distribution, d.correlation, d.duplicate, d.duplicateCorrelation, d.reorder, d.reorderCorrelation, d.reorderGap].join('|');
}

/**
 * Classes of the policies in decision order: equal parameters share a class, numbered from 1 in
 * order of first use, so the same set always gets the same classes (the agent recomputes them
 * from the stored set when it starts). Returns each policy's class (0: none) and the classes.
 * `masks`: each policy's action_mask when the caller has them (policies without a delay-class
 * bit are passed over without looking at their actions).
 */
export function assignDelayClasses(ordered: readonly Policy[], masks?: Int32Array): { classOf: number[]; classes: DelayClass[] } {
  const byKey = new Map<string, DelayClass>();
  const classOf = new Array<number>(ordered.length).fill(0);
  for (let i = 0; i < ordered.length; i++) {
    if (masks && !(masks[i]! & DELAY_CLASS_MASK)) continue;
    const p = ordered[i]!;
    const params = delayParamsOf(p);
    if (!params) continue;
    const key = paramsKey(params);
    let c = byKey.get(key);
    if (!c) {
      if (byKey.size >= DELAY_CLASSES_USABLE) {
        const a = firstDelayClassAction(p)!;
        throw new PolicyError(
          { ...(a.source ?? p.source), policy: p.name },
          `too many distinct delay/duplicate/reorder parameter sets: the delay line has ${DELAY_CLASSES_USABLE} classes and this is the ${byKey.size + 1}th; give policies the same parameters to share one`,
        );
      }
      c = { cls: byKey.size + 1, params, policies: [] };
      byKey.set(key, c);
    }
    c.policies.push(p.name);
    classOf[i] = c.cls;
  }
  return { classOf, classes: [...byKey.values()] };
}
