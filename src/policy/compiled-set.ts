// What a compile produces (compile.ts): one policy set as the kernel's policy tables will hold
// it. Types only, shared by the compiler, the table builders (combo-table.ts, prefix4.ts), apply
// and the agent, so that none of them imports another for its types.
import type { PolicyEmul, PolicyRuleValue } from '../datapath';
import type { DelayClass } from './delay';
import type { Policy } from './model';
import type { Prefix } from './net';

/** One policy as the kernel's struct policy_rule holds it (PolicyRuleValue, documented there),
 * with the policy it came from. */
export interface CompiledRule extends PolicyRuleValue {
  policy: Policy;
  /** Delay-class actions (delay.ts): the delay line's class, 0 none. */
  delayClass: number;
  /**
   * Emulation actions (actions-model.ts): struct policy_emul; undefined when the policy has none
   * (the kernel reads policy_emul, its seed included, only for those actions: it stays zero).
   */
  emul: PolicyEmul | undefined;
}

export interface CompiledPrefix {
  prefix: Prefix;
  cls: number;
}

export interface CompiledCombo {
  proto: number;
  srcClass: number;
  dstClass: number;
  sportClass: number;
  dportClass: number;
  /** Rule slots in decision order. */
  slots: number[];
  /** Every rule in slots is plain (isPlainRule): the kernel walks them without bpf_loop. */
  plain?: boolean;
}

export interface CompiledSet {
  /** In decision order; a rule's index is its slot. */
  rules: CompiledRule[];
  srcPrefixes: CompiledPrefix[];
  dstPrefixes: CompiledPrefix[];
  /** Protocols some rule names (bit p set for protocol p). */
  protoBits: boolean[];
  sportClass: Uint16Array;
  dportClass: Uint16Array;
  combos: CompiledCombo[];
  /** The combinations as the kernel's cuckoo table holds them (combo-table.ts). */
  comboTable: ComboTable;
  /** Delay-class actions (delay.ts): the classes the rules use, for the agent's delay line. */
  delayClasses: DelayClass[];
}

/** The combinations as the kernel's cuckoo table holds them (built by combo-table.ts). */
export interface ComboTable {
  /** Buckets - 1. */
  mask: number;
  seed: number;
  /** Slot index within the generation's region -> the combination in it. */
  slots: Map<number, CompiledCombo>;
}
