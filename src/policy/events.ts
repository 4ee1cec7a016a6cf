// Policy events (the ring buffer policy_events, bpf/policy_trigger.h) as people and programs read
// them: `bae events` prints this view, the agent publishes it on the bus.
import { decodeAddress, type PolicyEventRecord } from '../datapath';

export const EVENT_KINDS: Record<number, string> = { 1: 'fire', 2: 'block', 3: 'match', 4: 'refused', 5: 'would-block' };
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
    kind: EVENT_KINDS[e.kind] ?? `kind-${e.kind}`,
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
