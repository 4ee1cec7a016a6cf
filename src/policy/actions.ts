// The action table. Each action is one entry: its kernel bit (enum policy_action in bpf/bae.h),
// whether it decides the verdict, its parameters, and whether this datapath can carry it out.
// The emulation actions of the next stage (loss, corrupt, truncate, tcp-flags, rate, duplicate,
// reorder, delay) are more entries here plus their bits in the kernel; nothing else changes.

export type ParamSpec =
  | { type: 'duration'; required: boolean; minNs: bigint; maxNs: bigint }
  | { type: 'number'; required: boolean; min: number; max: number; integer: boolean }
  | { type: 'enum'; required: boolean; values: readonly string[] };

export interface ActionDef {
  kind: string;
  /** Bit index in policy_rule.action_mask. */
  bit: number;
  /** 'pass' or 'drop' when the action decides the verdict and ends evaluation; null when it does not. */
  verdict: 'pass' | 'drop' | null;
  params: Readonly<Record<string, ParamSpec>>;
  /** False while the datapath has no code for it: `policy check` accepts it, `apply` refuses it. */
  kernel: boolean;
  description: string;
}

const MS = 1_000_000n;
const S = 1000n * MS;
const DAY = 86_400n * S;

export const ACTIONS: readonly ActionDef[] = [
  { kind: 'pass', bit: 0, verdict: 'pass', params: {}, kernel: true, description: 'let the packet through; lower-priority policies are not looked at' },
  { kind: 'drop', bit: 1, verdict: 'drop', params: {}, kernel: true, description: 'drop the packet' },
  {
    kind: 'block',
    bit: 2,
    verdict: 'drop',
    params: { ttl: { type: 'duration', required: true, minNs: MS, maxNs: 30n * DAY } },
    kernel: true,
    description: 'drop the packet and put its source address on the blocklist for ttl',
  },
  { kind: 'count', bit: 3, verdict: null, params: {}, kernel: true, description: 'count the packet in the policy\'s counters and go on to the next policy' },
  { kind: 'event', bit: 4, verdict: null, params: {}, kernel: true, description: 'emit a match event for the packet and go on to the next policy' },
  {
    kind: 'delay',
    bit: 5,
    verdict: null,
    params: {
      time: { type: 'duration', required: true, minNs: 0n, maxNs: 10n * S },
      jitter: { type: 'duration', required: false, minNs: 0n, maxNs: 10n * S },
      correlation: { type: 'number', required: false, min: 0, max: 100, integer: false },
      distribution: { type: 'enum', required: false, values: ['uniform', 'normal', 'pareto', 'paretonormal'] },
    },
    // Delay-class actions (delay, duplicate, reorder; owned by src/agent/): the kernel reads the
    // rule's delay_class, not these bits; src/policy/delay.ts turns them into delay-line classes.
    kernel: true,
    description: 'hold the packet for time (± jitter) in the delay line (inline mode, needs `bae agent`)',
  },
  {
    kind: 'duplicate',
    bit: 14,
    verdict: null,
    params: {
      probability: { type: 'number', required: true, min: 0, max: 100, integer: false },
      correlation: { type: 'number', required: false, min: 0, max: 100, integer: false },
    },
    kernel: true,
    description: 'send the packet twice with probability % (each copy delayed on its own; inline mode, needs `bae agent`)',
  },
  {
    kind: 'reorder',
    bit: 15,
    verdict: null,
    params: {
      probability: { type: 'number', required: true, min: 0, max: 100, integer: false },
      correlation: { type: 'number', required: false, min: 0, max: 100, integer: false },
      gap: { type: 'number', required: false, min: 1, max: 4294967295, integer: true },
    },
    kernel: true,
    description: 'let the packet skip the delay with probability % once gap - 1 packets were delayed (netem reorder; needs delay)',
  },
];

export const ACTION_BY_KIND = new Map(ACTIONS.map((a) => [a.kind, a]));

export const ACTION_BIT = Object.fromEntries(ACTIONS.map((a) => [a.kind, a.bit])) as Record<string, number>;
