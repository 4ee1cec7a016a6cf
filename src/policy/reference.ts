// The reference model: the policy semantics of bpf/policy.h in plain TypeScript, evaluated from
// the policies themselves (a linear scan by definition of every match field, not the compiled
// tables), with the kernel's integer arithmetic for windows. Fed packets with timestamps, it
// returns verdicts, counters, blocklist and events; the differential test holds the kernel to it.
import { ACTION_BY_KIND } from './actions';
import { METRIC_BY_NAME, metricContribution, metricReversed, type PacketFacts } from './metrics';
import { CAPTURE, ENUMS, type IpVersion, type PolicyEmul, type PolicyOffence } from '../datapath';
import { actionVerdict, blockEscalation, escalatedTtl, recordOffence } from './escalate';
import { CAPTURE_BIT, compileEmul, EMUL_ACTIONS, EMUL_BITS, EMUL_MODIFY, EMUL_STATEFUL, freshState, lossDecide, modifyFrame, nextRandom, PROB_ONE, rateTake, ruleSeed, type EmulState } from './actions-model';
import { SCOPE_IDS, WINDOW_BUCKETS, type Policy, type TriggerScope } from './model';
import type { Prefix } from './net';
import { prefixContainsAddress } from './net';
import { orderPolicies } from './order';

const U64_MAX = (1n << 64n) - 1n;
const U64 = (x: bigint) => x & U64_MAX;

export interface RefPacket extends PacketFacts {
  timeNs: bigint;
  family: IpVersion;
  /** 16 bytes each, IPv4 in the first 4. */
  src: Uint8Array;
  dst: Uint8Array;
  /** 0 when the protocol has none (or the header was not reached). */
  sport: number;
  dport: number;
  ifindex: number;
  /** false for frames without a usable IP header: the policy stage leaves them alone. */
  ip: boolean;
  /** The frame's bytes: needed when a policy with truncate, corrupt or tcp-flags applies. */
  frame?: Uint8Array;
}

export interface RefCounters {
  matched: bigint;
  applied: bigint;
  fired: bigint;
  blocks: bigint;
}

export type RefEventKind = 'fire' | 'block' | 'match' | 'refused' | 'would-block';

export interface RefEvent {
  kind: RefEventKind;
  policyId: number;
  timeNs: bigint;
  value: bigint;
  family: IpVersion;
  src: Uint8Array;
  dst: Uint8Array;
}

export interface RefDecision {
  verdict: 'pass' | 'drop';
  /** The policy that decided, if one did. */
  policy?: string;
  /** Dropped by the blocklist before any rule. */
  blocked: boolean;
  /** Dropped by an emulation action (rate or loss) of this policy. */
  emulated?: 'rate' | 'loss';
  /** Kept by a capture action (bpf/capture.h): its policy and what the record names, the action
   * that removed the frame or 'capture'. Capture changes no other field. */
  captured?: { policy: string; action: 'capture' | 'drop' | 'block' | 'loss' | 'rate' };
  /** The frame as it leaves, when truncate, corrupt or tcp-flags applied (verdict pass). */
  frame?: Uint8Array;
}

export interface TriggerState {
  bucketBase: bigint;
  firedUntil: bigint;
  cooldownUntil: bigint;
  counts: bigint[];
}

export interface ReferenceOptions {
  /** match.iface -> ifindex, as apply resolves it; unresolved interfaces never match. */
  ifindexOf?: (name: string) => number;
  /** The set-level seed given to the compiler (CompileOptions.seed); policies without spec.seed
   * and without it get random seeds the model cannot know. */
  seed?: bigint;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const ZERO_HEX = '00'.repeat(16);

function compareAddr(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

export class ReferenceModel {
  #policies: Policy[] = [];
  #triggers = new Map<string, TriggerState>();
  readonly counters = new Map<number, RefCounters>();
  /** "family/addr-hex" -> expiry ns. */
  readonly blocklist = new Map<string, bigint>();
  /** "family/addr-hex" -> history of escalating blocks (the kernel's policy_offences). */
  readonly offences = new Map<string, PolicyOffence>();
  readonly events: RefEvent[] = [];
  blocklistDrops = 0n;
  /** Blocks of a protected address refused (policy_stats.block_refused). */
  blockRefused = 0n;
  /** Protected prefixes (the kernel's policy_protected): no policy blocks an address in them. */
  protectedPrefixes: Prefix[] = [];
  readonly #ifindexOf: (name: string) => number;
  #seed: bigint | undefined;
  /** Emulation states by the kernel's key text (see #scopeKey): id|scope|family|addr_a|addr_b. */
  readonly #emul = new Map<string, EmulState>();
  readonly #emulParams = new Map<number, PolicyEmul>();

  constructor(options: ReferenceOptions = {}) {
    this.#ifindexOf = options.ifindexOf ?? (() => 0);
    this.#seed = options.seed;
  }

  /** Emulation states (policy_act_states), as copies. */
  emulStates(): Map<string, EmulState> {
    return new Map([...this.#emul].map(([k, v]) => [k, { ...v }]));
  }

  /** Replaces the policy set, as an apply does: state of unchanged policies (same id) stays. */
  setPolicies(policies: readonly Policy[]): void {
    this.#policies = orderPolicies(policies);
    const ids = new Set(this.#policies.map((p) => p.id));
    for (const id of [...this.counters.keys()]) if (!ids.has(id)) this.counters.delete(id);
    for (const key of [...this.#triggers.keys()]) if (!ids.has(Number(key.split('|')[0]))) this.#triggers.delete(key);
    for (const key of [...this.#emul.keys()]) if (!ids.has(Number(key.split('|')[0]))) this.#emul.delete(key);
    this.#emulParams.clear();
    // A state, once made, keeps its sequence; the parameters are the policy's (same id, same content).
    for (const p of this.#policies) this.#emulParams.set(p.id, compileEmul(p, ruleSeed(p, this.#seed)));
    for (const p of this.#policies) if (!this.counters.has(p.id)) this.counters.set(p.id, { matched: 0n, applied: 0n, fired: 0n, blocks: 0n });
  }

  get policies(): readonly Policy[] {
    return this.#policies;
  }

  matches(p: Policy, pkt: RefPacket): boolean {
    const m = p.match;
    if (m.src && !m.src.some((x) => prefixContainsAddress(x, pkt.family, pkt.src))) return false;
    if (m.dst && !m.dst.some((x) => prefixContainsAddress(x, pkt.family, pkt.dst))) return false;
    if (m.proto && !m.proto.includes(pkt.proto)) return false;
    if (m.sport && !m.sport.some((r) => pkt.sport >= r.lo && pkt.sport <= r.hi)) return false;
    if (m.dport && !m.dport.some((r) => pkt.dport >= r.lo && pkt.dport <= r.hi)) return false;
    if (m.tcpFlags && (pkt.tcpFlags & m.tcpFlags.mask) !== m.tcpFlags.value) return false;
    if (m.iface !== undefined) {
      const ifindex = this.#ifindexOf(m.iface);
      if (ifindex !== 0 && ifindex !== pkt.ifindex) return false;
    }
    return true;
  }

  /**
   * The kernel's policy_trigger_key as text: id|scope|family|addr_a|addr_b (family as AF_INET 2 /
   * AF_INET6 10, addresses as hex, zero where the scope has none).
   */
  #scopeKey(p: Policy, pkt: RefPacket, scope: TriggerScope = p.trigger!.scope): string {
    const zero = ZERO_HEX;
    const af = pkt.family === 4 ? 2 : 10;
    switch (scope) {
      case 'policy':
        return `${p.id}|${SCOPE_IDS.policy}|0|${zero}|${zero}`;
      case 'source':
        return `${p.id}|${SCOPE_IDS.source}|${af}|${hex(this.#addrs(p, pkt)[0])}|${zero}`;
      case 'destination':
        return `${p.id}|${SCOPE_IDS.destination}|${af}|${hex(this.#addrs(p, pkt)[1])}|${zero}`;
      case 'conversation': {
        const [a, b] = compareAddr(pkt.src, pkt.dst) <= 0 ? [pkt.src, pkt.dst] : [pkt.dst, pkt.src];
        return `${p.id}|${SCOPE_IDS.conversation}|${af}|${hex(a)}|${hex(b)}`;
      }
    }
  }

  /** The packet's [source, destination] as the policy's metric takes them: the other way round
   * for response metrics (the kernel's policy_rule_src/dst). */
  #addrs(p: Policy, pkt: RefPacket): [Uint8Array, Uint8Array] {
    return p.trigger && metricReversed(METRIC_BY_NAME.get(p.trigger.metric)!.id) ? [pkt.dst, pkt.src] : [pkt.src, pkt.dst];
  }

  /** Trigger windows by their kernel key (see #scopeKey), as copies. */
  triggerStates(): Map<string, TriggerState> {
    return new Map([...this.#triggers].map(([k, v]) => [k, { ...v, counts: [...v.counts] }]));
  }

  /** The kernel's policy_trigger_eval(): counts the packet, says whether the policy is on. */
  #trigger(p: Policy, pkt: RefPacket, cnt: RefCounters): boolean {
    const t = p.trigger!;
    const key = this.#scopeKey(p, pkt);
    let st = this.#triggers.get(key);
    if (!st) {
      st = { bucketBase: 0n, firedUntil: 0n, cooldownUntil: 0n, counts: new Array<bigint>(WINDOW_BUCKETS).fill(0n) };
      this.#triggers.set(key, st);
    }
    const B = BigInt(WINDOW_BUCKETS);
    const bucketNs = t.withinNs / B;
    const now = pkt.timeNs;
    const idx = bucketNs ? now / bucketNs : 0n;
    if (idx > st.bucketBase) {
      const gap = idx - st.bucketBase;
      if (gap >= B) st.counts.fill(0n);
      else for (let i = 1n; i <= gap; i++) st.counts[Number((st.bucketBase + i) % B)] = 0n;
      st.bucketBase = idx;
    }
    const slot = Number(st.bucketBase % B);
    st.counts[slot] = U64(st.counts[slot]! + BigInt(metricContribution(METRIC_BY_NAME.get(t.metric)!.id, pkt)));
    let sum = 0n;
    for (const c of st.counts) sum = U64(sum + c);
    if (now < st.firedUntil) return true;
    if (now < st.cooldownUntil) return false;
    const pass = t.op === '>=' ? sum >= t.threshold : sum > t.threshold;
    if (!pass) return false;
    const forNs = p.forNs ?? 0n;
    let until = forNs ? U64(now + forNs) : U64_MAX;
    if (until < now) until = U64_MAX;
    st.firedUntil = until;
    let cool = forNs ? U64(until + p.cooldownNs) : U64_MAX;
    if (cool < until) cool = U64_MAX;
    st.cooldownUntil = cool;
    cnt.fired++;
    this.#event('fire', p, pkt, sum);
    return true;
  }

  #event(kind: RefEventKind, p: Policy, pkt: RefPacket, value: bigint): void {
    const [src, dst] = this.#addrs(p, pkt);
    this.events.push({ kind, policyId: p.id, timeNs: pkt.timeNs, value, family: pkt.family, src, dst });
  }

  static blockKey(family: IpVersion, addr: Uint8Array): string {
    return `${family}/${hex(addr)}`;
  }

  process(pkt: RefPacket): RefDecision {
    if (!pkt.ip) return { verdict: 'pass', blocked: false };
    const expiry = this.blocklist.get(ReferenceModel.blockKey(pkt.family, pkt.src));
    if (expiry !== undefined && pkt.timeNs < expiry) {
      this.blocklistDrops++;
      return { verdict: 'drop', blocked: true };
    }
    let decided: Policy | undefined;
    let verdict: 'pass' | 'drop' | undefined;
    let emulRule: Policy | undefined;
    let emulState: EmulState | undefined;
    let emulated: RefDecision['emulated'];
    let captured: RefDecision['captured'];
    for (const p of this.#policies) {
      if (!this.matches(p, pkt)) continue;
      const cnt = this.counters.get(p.id)!;
      cnt.matched++;
      const on = p.trigger ? this.#trigger(p, pkt, cnt) : true;
      if (!on || decided) continue;
      cnt.applied++;
      const kinds = new Set(p.actions.map((a) => a.kind));
      if (kinds.has('event')) this.#event('match', p, pkt, BigInt(pkt.length));
      const block = p.actions.find((a) => a.kind === 'block');
      // The policy's source (the client for response metrics); one blocked already is not blocked
      // again; a protected one is refused; a monitor-only policy only says it would block.
      const blockAddr = this.#addrs(p, pkt)[0];
      const blockKey = ReferenceModel.blockKey(pkt.family, blockAddr);
      const current = this.blocklist.get(blockKey);
      if (block && !(current !== undefined && pkt.timeNs < current)) {
        // Escalation (escalate.ts): only a real block is counted in the address's history.
        const esc = blockEscalation(block.params);
        const ttl = esc ? escalatedTtl(block.params.ttl as bigint, esc, this.offences.get(blockKey), pkt.timeNs) : undefined;
        const until = U64(pkt.timeNs + (ttl ? ttl.ttlNs : (block.params.ttl as bigint)));
        if (this.protectedPrefixes.some((x) => prefixContainsAddress(x, pkt.family, blockAddr))) {
          this.blockRefused++;
          this.#event('refused', p, pkt, until);
        } else if (p.monitor) {
          this.#event('would-block', p, pkt, until);
        } else {
          if (ttl) this.offences.set(blockKey, recordOffence(ttl.n, pkt.timeNs, ttl.ttlNs));
          this.blocklist.set(blockKey, until);
          cnt.blocks++;
          this.#event('block', p, pkt, until);
        }
      }
      if (p.monitor) continue; // enforces nothing; lower policies go on deciding
      let mask = 0;
      for (const a of p.actions) {
        const def = ACTION_BY_KIND.get(a.kind)!;
        mask |= 1 << def.bit;
        const v = actionVerdict(p, a.kind);
        if (v) {
          verdict = v;
          decided = p;
        }
      }
      // Emulation: the first policy that is on with any emulation action carries them out.
      let removed: 'drop' | 'block' | 'loss' | 'rate' | undefined;
      if (!emulRule && mask & EMUL_ACTIONS) {
        emulRule = p;
        const lost = this.#emulDecide(p, mask, pkt);
        emulState = lost.state;
        if (lost.drop) {
          verdict = 'drop';
          decided = p;
          emulated = lost.drop;
          removed = lost.drop;
        }
      }
      // Capture: the first policy that is on and captures the frame (capture_decide()).
      if (!captured && mask & CAPTURE_BIT) {
        if (!removed && decided === p && verdict === 'drop') removed = kinds.has('block') ? 'block' : 'drop';
        captured = this.#capture(p, removed);
      }
    }
    const out: RefDecision = { verdict: verdict === 'drop' ? 'drop' : 'pass', ...(decided ? { policy: decided.name } : {}), blocked: false, ...(emulated ? { emulated } : {}), ...(captured ? { captured } : {}) };
    if (out.verdict === 'pass' && emulRule) {
      const mask = emulRule.actions.reduce((m, a) => m | (1 << ACTION_BY_KIND.get(a.kind)!.bit), 0);
      if (mask & EMUL_MODIFY) {
        if (!pkt.frame) throw new Error(`reference: policy '${emulRule.name}' changes bytes; the packet needs its frame`);
        out.frame = modifyFrame(pkt.frame, mask, this.#emulParams.get(emulRule.id)!, emulState);
      }
    }
    return out;
  }

  #emulState(p: Policy, pkt: RefPacket, scope: TriggerScope): EmulState {
    const key = this.#scopeKey(p, pkt, scope);
    let st = this.#emul.get(key);
    if (!st) {
      st = freshState(this.#emulParams.get(p.id)!, pkt.timeNs);
      this.#emul.set(key, st);
    }
    return st;
  }

  /** capture_decide(): with drops only a removed frame; a sample draw from the policy's own
   * capture sequence (scope POLICY_SCOPE_CAPTURE) unless the fraction is 1. */
  #capture(p: Policy, removed: 'drop' | 'block' | 'loss' | 'rate' | undefined): RefDecision['captured'] {
    const e = this.#emulParams.get(p.id)!;
    if (e.captureFlags & CAPTURE.flagDrops && !removed) return undefined;
    if (e.captureP < PROB_ONE) {
      const key = `${p.id}|${ENUMS.policy_scope.POLICY_SCOPE_CAPTURE}|0|${ZERO_HEX}|${ZERO_HEX}`;
      let st = this.#emul.get(key);
      if (!st) {
        st = { prng: e.captureSeed, credit: 0n, lastNs: 0n, lossLast: 0, geBad: 0 };
        this.#emul.set(key, st);
      }
      if (nextRandom(st) >= e.captureP) return undefined;
    }
    return { policy: p.name, action: removed ?? 'capture' };
  }

  /** actions_decide(): rate, then loss. */
  #emulDecide(p: Policy, mask: number, pkt: RefPacket): { drop?: 'rate' | 'loss'; state?: EmulState } {
    if (!(mask & EMUL_STATEFUL)) return {};
    const e = this.#emulParams.get(p.id)!;
    const st = this.#emulState(p, pkt, 'policy');
    if (mask & (1 << EMUL_BITS.rate)) {
      const bucket = e.rateScope === SCOPE_IDS.conversation ? this.#emulState(p, pkt, 'conversation') : st;
      if (!rateTake(e, bucket, pkt.length, pkt.timeNs)) return { drop: 'rate', state: st };
    }
    if (mask & (1 << EMUL_BITS.loss) && lossDecide(e, st)) return { drop: 'loss', state: st };
    return { state: st };
  }
}
