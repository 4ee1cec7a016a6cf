// The validated form of a policy: what parse.ts produces, compile.ts turns into map entries and
// reference.ts evaluates directly. Times are nanoseconds as bigint (the kernel's u64).
import { ENUMS, POLICY } from '../datapath';
import type { Prefix } from './net';

export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

export interface PortRange {
  lo: number;
  hi: number;
}

export interface TcpFlagMatch {
  /** Flags that are looked at (TCP header byte 13 bit layout: FIN=1 ... CWR=128). */
  mask: number;
  /** Their required values. */
  value: number;
}

export interface PolicyMatch {
  src?: Prefix[];
  dst?: Prefix[];
  sport?: PortRange[];
  dport?: PortRange[];
  /** IP protocol numbers (the next header of IPv6). */
  proto?: number[];
  tcpFlags?: TcpFlagMatch;
  /** Name of the interface the packet arrived on; resolved to an ifindex at apply time. */
  iface?: string;
}

export type TriggerScope = 'conversation' | 'source' | 'destination' | 'policy';
export type TriggerOp = '>' | '>=';

export interface PolicyTrigger {
  metric: string;
  op: TriggerOp;
  threshold: bigint;
  withinNs: bigint;
  scope: TriggerScope;
}

export interface PolicyAction {
  kind: string;
  /** Parameters as validated by the action's entry in actions.ts (durations in ns as bigint). */
  params: Record<string, bigint | number | string | boolean>;
  /** Where the action was written (for errors about it after parsing, e.g. at apply). */
  source?: SourcePosition;
}

export interface Policy {
  name: string;
  priority: number;
  match: PolicyMatch;
  trigger?: PolicyTrigger;
  /** How long a fired trigger keeps the actions on; undefined: until the policy is removed. */
  forNs?: bigint;
  /** After a triggered period ends, how long before the trigger may fire again. */
  cooldownNs: bigint;
  actions: PolicyAction[];
  /** Start of the random sequence of the emulation actions (spec.seed); undefined: the set's, or random. */
  seed?: bigint;
  /** Monitor only (spec.monitor): counts, fires and events (a block as would-block), nothing enforced. */
  monitor?: boolean;
  /** Stable id: FNV-1a of name + canonical content; keys trigger state and counters. */
  id: number;
  /** Where the policy was written. */
  source: SourcePosition;
  /** The policy as plain data (durations as strings, as written), for list/show and storage. */
  spec: unknown;
}

export const SCOPE_IDS: Record<TriggerScope, number> = {
  policy: ENUMS.policy_scope.POLICY_SCOPE_POLICY,
  source: ENUMS.policy_scope.POLICY_SCOPE_SOURCE,
  destination: ENUMS.policy_scope.POLICY_SCOPE_DESTINATION,
  conversation: ENUMS.policy_scope.POLICY_SCOPE_CONVERSATION,
};

/** Bucket count of a sliding window: `within` is split into this many buckets (kernel: POLICY_WINDOW_BUCKETS). */
export const WINDOW_BUCKETS = POLICY.windowBuckets;

/** Upper bound of candidates the kernel looks at for one packet (kernel: POLICY_MAX_CANDIDATES). */
export const MAX_CANDIDATES = POLICY.maxCandidates;
