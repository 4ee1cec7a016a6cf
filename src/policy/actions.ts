// The action table. Each action is one entry: its kernel bit (enum policy_action in bpf/bae.h),
// whether it decides the verdict, its parameters, and whether this datapath can carry it out.
// The emulation actions (loss, corrupt, truncate, tcp-flags, rate: bpf/actions.h; duplicate,
// reorder, delay: the delay line) are entries here too, with their bits in the kernel.

import { CAPTURE, ENUMS } from '../datapath';

/** enum policy_action of bpf/bae.h, generated from bae.o's BTF. */
const ACT = ENUMS.policy_action;

export type ParamSpec =
  | { type: 'duration'; required: boolean; minNs: bigint; maxNs: bigint }
  | { type: 'number'; required: boolean; min: number; max: number; integer: boolean }
  | { type: 'enum'; required: boolean; values: readonly string[] }
  /** Bits per second: a number, or a string with a unit (bit kbit mbit gbit tbit, or bps kbps ...). */
  | { type: 'rate'; required: boolean; min: number; max: number }
  /** Bytes: a number, or a string with a unit (b kb mb gb, or kib mib gib). */
  | { type: 'size'; required: boolean; min: number; max: number }
  /** TCP flag names: "SYN,PSH" (FIN SYN RST PSH ACK URG ECE CWR). */
  | { type: 'flags'; required: boolean }
  /** true or false. */
  | { type: 'boolean'; required: boolean };

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
  /** Checks between parameters: a problem naming the parameter it is about (or the action). */
  check?: (params: Readonly<Record<string, bigint | number | string | boolean>>) => { param?: string; message: string } | undefined;
}

const PERCENT = { type: 'number', min: 0, max: 100, integer: false } as const;

const MS = 1_000_000n;
const has = (q: Readonly<Record<string, unknown>>, k: string) => q[k] !== undefined;
const S = 1000n * MS;
const DAY = 86_400n * S;

/**
 * Bit of `inject` in policy_rule.action_mask. The agent carries it out (src/agent/inject-action.ts)
 * on the trigger's fire events; the kernel never tests it, like the delay-class bits 14 and 15.
 * enum policy_action (bpf/policy_abi.h) leaves 12..13 free; test/policy/inject-action.test.ts
 * checks that it still does.
 */
export const INJECT_BIT = 12;

/**
 * Kinds of the forged-packet catalogue (src/reconstruct/forge-catalogue.ts) that an `inject`
 * action may send: those that fit a TCP flow of the conversation (the fire event names the
 * addresses, the agent finds the flow). UDP kinds need ports that no event carries. The policy
 * area does not import reconstruct (it imports policy): test/policy/inject-action.test.ts holds
 * this list to the catalogue.
 */
export const INJECT_ACTION_KINDS = [
  'tcp-rst', 'tcp-dup-ack-storm', 'tcp-in-window', 'tcp-bad-checksum', 'tcp-truncated', 'tcp-syn-fin', 'tcp-null', 'tcp-xmas',
  'tcp-bad-options', 'tcp-out-of-window', 'ip-bad-checksum', 'ip-truncated', 'ip-bad-ihl', 'ip-bad-total-length', 'ip-tiny-fragment',
  'ip-overlapping-fragments', 'eth-truncated',
] as const;

/** The agent injects once per fire: without a trigger every matching packet would ask for it (parse.ts). */
export const INJECT_NEEDS_TRIGGER =
  "action 'inject' needs a trigger: the agent injects once per fire (to inject once per conversation: trigger: { when: packets >= 1, within: 1s, scope: conversation })";

/** Bounds of one `inject` (per fire): instances, frames per second, and seconds a send may take. */
export const INJECT_ACTION_LIMITS = { countMax: 100_000, rateMin: 0.001, rateMax: 1_000_000, rateDefault: 1000, secondsMax: 60 } as const;

export const ACTIONS: readonly ActionDef[] = [
  { kind: 'pass', bit: ACT.POLICY_ACT_PASS, verdict: 'pass', params: {}, kernel: true, description: 'let the packet through; lower-priority policies are not looked at' },
  { kind: 'drop', bit: ACT.POLICY_ACT_DROP, verdict: 'drop', params: {}, kernel: true, description: 'drop the packet' },
  {
    kind: 'block',
    bit: ACT.POLICY_ACT_BLOCK,
    verdict: 'drop',
    params: {
      ttl: { type: 'duration', required: true, minNs: MS, maxNs: 30n * DAY },
      // Repeat offenders (src/policy/escalate.ts): ttl x escalate^n, at most maxTtl, n = the
      // address's earlier escalating blocks, forgotten `forget` after the latest one ended.
      escalate: { type: 'number', required: false, min: 2, max: 16, integer: true },
      maxTtl: { type: 'duration', required: false, minNs: MS, maxNs: 30n * DAY },
      forget: { type: 'duration', required: false, minNs: MS, maxNs: 365n * DAY },
    },
    kernel: true,
    description: 'drop the packet and put its source address on the blocklist for ttl (escalate: x escalate per earlier block of the address, up to maxTtl, history forgotten after forget)',
    check: (q) => {
      if (!has(q, 'escalate')) for (const k of ['maxTtl', 'forget']) if (has(q, k)) return { param: k, message: `block.${k} needs 'escalate' (the factor, 2..16)` };
      if (has(q, 'escalate') && (q.maxTtl === undefined ? 24n * 3600n * S : (q.maxTtl as bigint)) < (q.ttl as bigint)) {
        return { param: has(q, 'maxTtl') ? 'maxTtl' : 'ttl', message: `block.maxTtl (default 24h) must be at least its ttl` };
      }
      return undefined;
    },
  },
  { kind: 'count', bit: ACT.POLICY_ACT_COUNT, verdict: null, params: {}, kernel: true, description: 'count the packet in the policy\'s counters and go on to the next policy' },
  { kind: 'event', bit: ACT.POLICY_ACT_EVENT, verdict: null, params: {}, kernel: true, description: 'emit a match event for the packet and go on to the next policy' },
  {
    kind: 'delay',
    bit: ACT.POLICY_ACT_DELAY,
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
  // Emulation actions (bpf/actions.h, src/policy/actions-model.ts); order of execution: rate -> loss
  // -> truncate -> corrupt -> tcp-flags -> delay class (docs/policies.md).
  {
    kind: 'loss',
    bit: ACT.POLICY_ACT_LOSS,
    verdict: null,
    params: {
      model: { type: 'enum', required: false, values: ['random', 'gilbert-elliott'] },
      probability: { ...PERCENT, required: false },
      correlation: { ...PERCENT, required: false },
      p: { ...PERCENT, required: false },
      r: { ...PERCENT, required: false },
      lossBad: { ...PERCENT, required: false },
      lossGood: { ...PERCENT, required: false },
    },
    kernel: true,
    description: 'drop the packet with probability % (correlation %: chance to repeat the last decision), or by a Gilbert-Elliott model (p, r, lossBad = 1-h, lossGood = 1-k as netem gemodel)',
    check: (q) => {
      if (q.model === 'gilbert-elliott') {
        for (const k of ['probability', 'correlation']) if (has(q, k)) return { param: k, message: `loss.${k} is for model random; gilbert-elliott takes p, r, lossBad, lossGood` };
        for (const k of ['p', 'r']) if (!has(q, k)) return { message: `loss with model gilbert-elliott needs '${k}'` };
        return undefined;
      }
      for (const k of ['p', 'r', 'lossBad', 'lossGood']) if (has(q, k)) return { param: k, message: `loss.${k} needs model: gilbert-elliott` };
      if (!has(q, 'probability')) return { message: "loss needs 'probability' (or model: gilbert-elliott with p and r)" };
      return undefined;
    },
  },
  {
    kind: 'corrupt',
    bit: ACT.POLICY_ACT_CORRUPT,
    verdict: null,
    params: {
      probability: { ...PERCENT, required: true },
      bits: { type: 'number', required: false, min: 1, max: 8, integer: true },
      region: { type: 'enum', required: false, values: ['any', 'ip', 'transport', 'payload'] },
      checksums: { type: 'enum', required: false, values: ['leave', 'fix'] },
    },
    kernel: true,
    description: 'flip bits (default 1) in region (ip, transport, payload, any) of a TCP/UDP/ICMP packet with probability %; checksums left wrong (default) or fixed',
  },
  {
    kind: 'truncate',
    bit: ACT.POLICY_ACT_TRUNCATE,
    verdict: null,
    params: {
      to: { type: 'number', required: false, min: 14, max: 65535, integer: true },
      by: { type: 'number', required: false, min: 1, max: 65535, integer: true },
      lengths: { type: 'enum', required: false, values: ['fix', 'leave'] },
    },
    kernel: true,
    description: 'cut a TCP/UDP/ICMP frame to `to` bytes or by `by` bytes (not below 14); IP/UDP lengths and checksums fixed (default) or left stale',
    check: (q) => {
      if (has(q, 'to') && has(q, 'by')) return { param: 'by', message: "truncate takes 'to' or 'by', not both" };
      if (!has(q, 'to') && !has(q, 'by')) return { message: "truncate needs 'to' (bytes) or 'by' (bytes)" };
      return undefined;
    },
  },
  {
    kind: 'tcp-flags',
    bit: ACT.POLICY_ACT_TCP_FLAGS,
    verdict: null,
    params: { set: { type: 'flags', required: false }, clear: { type: 'flags', required: false } },
    kernel: true,
    description: 'set and/or clear TCP flags (FIN SYN RST PSH ACK URG ECE CWR); the checksum is updated',
    check: (q) => {
      if (!has(q, 'set') && !has(q, 'clear')) return { message: "tcp-flags needs 'set' or 'clear'" };
      return undefined;
    },
  },
  {
    kind: 'rate',
    bit: ACT.POLICY_ACT_RATE,
    verdict: null,
    params: {
      rate: { type: 'rate', required: true, min: 1000, max: 1e12 },
      burst: { type: 'size', required: false, min: 64, max: 1e9 },
      per: { type: 'enum', required: false, values: ['policy', 'conversation'] },
    },
    kernel: true,
    description: 'token bucket of rate bits/s and burst bytes (default 10 ms at the rate, at least 1600), per policy or per conversation; excess dropped',
  },
  {
    kind: 'duplicate',
    bit: ACT.POLICY_ACT_DUPLICATE,
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
    bit: ACT.POLICY_ACT_REORDER,
    verdict: null,
    params: {
      probability: { type: 'number', required: true, min: 0, max: 100, integer: false },
      correlation: { type: 'number', required: false, min: 0, max: 100, integer: false },
      gap: { type: 'number', required: false, min: 1, max: 4294967295, integer: true },
    },
    kernel: true,
    description: 'let the packet skip the delay with probability % once gap - 1 packets were delayed (netem reorder; needs delay)',
  },
  {
    kind: 'capture',
    bit: ACT.POLICY_ACT_CAPTURE,
    verdict: null,
    params: {
      snaplen: { type: 'number', required: false, min: 1, max: CAPTURE.snaplenMax, integer: true },
      sample: { type: 'number', required: false, min: 0, max: 1, integer: false },
      drops: { type: 'boolean', required: false },
    },
    kernel: true,
    description: `copy the frame as it arrived (its first snaplen bytes, default ${CAPTURE.snaplenDefault}, at most ${CAPTURE.snaplenMax}) to the capture ring, a seeded sample fraction 0 < sample <= 1 of them (default 1); with drops: true only the frames this policy's drop, block, loss or rate removes (\`bae capture\`)`,
    check: (q) => {
      if (q.sample === 0) return { param: 'sample', message: 'capture.sample must be above 0 (a fraction 0 < sample <= 1); remove the action to capture nothing' };
      return undefined;
    },
  },
  {
    kind: 'inject',
    bit: INJECT_BIT,
    verdict: null,
    params: {
      kind: { type: 'enum', required: true, values: INJECT_ACTION_KINDS },
      count: { type: 'number', required: false, min: 1, max: INJECT_ACTION_LIMITS.countMax, integer: true },
      rate: { type: 'number', required: false, min: INJECT_ACTION_LIMITS.rateMin, max: INJECT_ACTION_LIMITS.rateMax, integer: false },
      toward: { type: 'enum', required: false, values: ['source', 'destination'] },
    },
    kernel: true,
    description:
      'when the trigger fires, the agent forges count (default 1) packets of kind (bae inject --list) into the TCP flow of the conversation that fired it, ' +
      `at rate frames/s (default ${INJECT_ACTION_LIMITS.rateDefault}), sent to its source (default) or destination; needs a trigger and a running \`bae agent\``,
    check: (q) => {
      const count = (q.count as number | undefined) ?? 1;
      const rate = (q.rate as number | undefined) ?? INJECT_ACTION_LIMITS.rateDefault;
      if (count / rate > INJECT_ACTION_LIMITS.secondsMax) {
        return { param: has(q, 'rate') ? 'rate' : 'count', message: `inject: ${count} packets at ${rate}/s take ${Math.ceil(count / rate)} s, more than the ${INJECT_ACTION_LIMITS.secondsMax} s one fire may inject for` };
      }
      return undefined;
    },
  },
];

export const ACTION_BY_KIND = new Map(ACTIONS.map((a) => [a.kind, a]));

export const ACTION_BIT = Object.fromEntries(ACTIONS.map((a) => [a.kind, a.bit])) as Record<string, number>;
