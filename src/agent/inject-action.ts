// The `inject` action of policies (docs/policies.md "Inject"): the kernel cannot forge packets,
// so the agent does it. It hears the trigger's fire events (the bus bridge is the ring's one
// reader and hands each event in), finds the policy and its `inject` action in the applied set,
// the TCP flow of the conversation that fired it in bae's flow state, the port and MAC of the
// address the packets go to in the neighbour table, and sends them with the code of `bae inject`
// (src/reconstruct: forged from the flow state, bounded in count and rate). Every packet sent goes
// to the store with its reason; each injection, done or refused, is an event (bus and log) and is
// counted in the agent's status.
//
// Bounds: one injection per fire (a fire is once per scope key until `for` and `cooldown` end);
// at most MAX_RUNNING at once and one per policy and conversation; a fire older than
// STALE_FIRE_MS (the ring's backlog when the agent starts) is refused.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { ENUMS, MAPS, POLICY, POLICY_MAPS, decodePolicyCtl, decodePolicyRule, openLoadedMap, parseAddress, formatAddress } from '../datapath';
import { moduleLogger } from '../log';
import {
  INJECT_ACTION_LIMITS,
  METRIC_BY_NAME,
  loadStoredSet,
  metricReversed,
  openPolicyMaps,
  policiesFromStored,
  stateFile,
  type Policy,
  type PolicyAction,
  type PolicyEventView,
  type PortRange,
} from '../policy';
import { Injector, flowsBetween, formatMac, neighbourEntry, planInjection, sendFrames, type FrameSender, type PacketRecord } from '../reconstruct';

const log = moduleLogger('agent/inject');

/** Injections running at once, over all policies. */
export const MAX_RUNNING = 4;
/** A fire older than this (kernel clock) is not acted on: the packets would no longer fit. */
export const STALE_FIRE_MS = 5000;
/** Outcomes kept for the status. */
const RECENT = 10;

interface OutcomeBase {
  time: string;
  policy: string;
  policyId: number;
  /** The trigger's scope (as in the fire event). */
  scope: string;
  /** The forged kind. */
  kind: string;
  toward: string;
  /** The injected packets' sender and receiver. */
  src: string;
  dst: string;
}

export type InjectOutcome =
  | (OutcomeBase & { outcome: 'injected'; sport: number; dport: number; port: string; frames: number; elapsedMs: number })
  | (OutcomeBase & { outcome: 'refused'; reason: string });

export interface InjectActionStatus {
  /** False when fires cannot reach the agent (it leaves the kernel's events in the ring). */
  enabled: boolean;
  why: string | null;
  /** Fires of policies with `inject`. */
  fires: number;
  injected: number;
  refused: number;
  /** Frames on the wire, repeats counted. */
  frames: number;
  running: number;
  recent: InjectOutcome[];
}

export interface InjectActionOptions {
  pinDir: string;
  /** The agent's port(s): one in ingress mode, two inline. */
  ports: readonly string[];
  mode: 'inline' | 'ingress';
  /** False (with why) when the agent does not read the kernel's events. */
  enabled?: boolean;
  why?: string;
  /** Each packet sent (a storm of N: N records), for the store. */
  onPacket?: (record: PacketRecord) => void;
  /** Each outcome, for the bus: 'injected' or 'inject-refused'. */
  onOutcome?: (kind: 'injected' | 'inject-refused', outcome: InjectOutcome) => void;
  /** The sender (tests hand in a stand-in); default: the live-frames Injector, made at first use. */
  sender?: () => FrameSender & { close(): void };
}

class Refused extends Error {}

const inRanges = (port: number, ranges: PortRange[] | undefined) => !ranges || ranges.some((r) => port >= r.lo && port <= r.hi);

/** This host's addresses (bae's network namespace), in bae's text form. */
function localAddresses(): Set<string> {
  const out = execFileSync('ip', ['-j', 'addr', 'show'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const links = JSON.parse(out || '[]') as { addr_info?: { local?: string }[] }[];
  const set = new Set<string>();
  for (const l of links) for (const a of l.addr_info ?? []) {
    const p = a.local ? parseAddress(a.local) : undefined;
    if (p) set.add(formatAddress(p.family, p.addr));
  }
  return set;
}

export class InjectAction {
  readonly #o: InjectActionOptions;
  #policies = new Map<number, Policy>();
  #policiesMtime = -1;
  #sender: (FrameSender & { close(): void }) | undefined;
  readonly #running = new Map<string, Promise<void>>();
  readonly #abort = new AbortController();
  #counts = { fires: 0, injected: 0, refused: 0, frames: 0 };
  readonly #recent: InjectOutcome[] = [];

  constructor(o: InjectActionOptions) {
    this.#o = o;
  }

  /** A kernel event, as the bus bridge viewed it: fires of policies with `inject` start one. */
  onEvent(v: PolicyEventView): void {
    if (v.kind !== 'fire' || this.#abort.signal.aborted) return;
    const policy = this.#policy(v.policyId);
    const action = policy?.actions.find((a) => a.kind === 'inject');
    if (!policy || !action) return;
    this.#counts.fires++;
    const toward = (action.params.toward as string | undefined) ?? 'source';
    const [src, dst] = toward === 'source' ? [v.dst, v.src] : [v.src, v.dst];
    const base: Omit<OutcomeBase, 'time'> = { policy: policy.name, policyId: policy.id, scope: v.scope, kind: action.params.kind as string, toward, src, dst };
    const key = `${policy.id}/${v.src}/${v.dst}`;
    const ageMs = Number(process.hrtime.bigint() - v.timeNs) / 1e6;
    let refusal: string | undefined;
    if (!(this.#o.enabled ?? true)) refusal = `the agent does not read the kernel's events: ${this.#o.why ?? 'off'}`;
    else if (policy.monitor) refusal = 'the policy is monitor-only (spec.monitor): nothing is injected';
    else {
      try {
        if (this.#monitorInKernel(policy.id)) refusal = 'the set was applied monitor-only (bae policy apply --monitor): nothing is injected';
      } catch (err) {
        refusal = `the policy's rule could not be read: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    if (refusal !== undefined) {
      this.#refuse(base, refusal);
      return;
    }
    if (ageMs > STALE_FIRE_MS) refusal = `the fire is ${Math.round(ageMs)} ms old (more than ${STALE_FIRE_MS} ms: the flow has moved on)`;
    else if (this.#running.has(key)) refusal = `an injection of this policy into ${v.src},${v.dst} is still running`;
    else if (this.#running.size >= MAX_RUNNING) refusal = `${MAX_RUNNING} injections are running already`;
    if (refusal !== undefined) {
      this.#refuse(base, refusal);
      return;
    }
    const run = this.#inject(policy, action, v, base)
      .catch((err: unknown) => this.#refuse(base, err instanceof Error ? err.message : String(err)))
      .finally(() => this.#running.delete(key));
    this.#running.set(key, run);
  }

  async #inject(policy: Policy, action: PolicyAction, v: PolicyEventView, base: Omit<OutcomeBase, 'time'>): Promise<void> {
    const { src, dst } = base;
    const { port, dstMac } = this.#egress(dst);
    const { sport, dport } = this.#flow(policy, v, src);
    const count = (action.params.count as number | undefined) ?? 1;
    const rate = (action.params.rate as number | undefined) ?? INJECT_ACTION_LIMITS.rateDefault;
    const plan = planInjection({
      src,
      dst,
      kind: base.kind,
      count,
      rate,
      seed: policy.seed === undefined ? 1 : Number(policy.seed & 0xffffffffn),
      port,
      sport,
      dport,
      dstMac: formatMac(dstMac),
      pinDir: this.#o.pinDir,
    });
    const metric = policy.trigger ? `${policy.trigger.metric} ${policy.trigger.op} ${policy.trigger.threshold}` : 'fire';
    const reason = `${base.kind} toward ${base.toward}: ${metric} fired (${v.value})`;
    const frames = plan.frames.map((f) => ({ ...f, policy: policy.name, action: 'inject', reason }));
    this.#sender ??= this.#o.sender ? this.#o.sender() : new Injector();
    const report = await sendFrames(this.#sender, frames, {
      ifindex: plan.ifindex,
      rate: plan.rate,
      signal: this.#abort.signal,
      onSent: (record, repeat) => {
        for (let i = 0; i < repeat; i++) this.#o.onPacket?.(record);
      },
    });
    this.#counts.injected++;
    this.#counts.frames += report.frames;
    const done: InjectOutcome = {
      outcome: 'injected',
      time: new Date().toISOString(),
      ...base,
      sport,
      dport,
      port,
      frames: report.frames,
      elapsedMs: Number(report.elapsedNs / 1000n) / 1000,
    };
    this.#remember(done);
    log.info(done, 'injected');
    this.#o.onOutcome?.('injected', done);
  }

  /** The port the packets leave by and the MAC they go to (docs/policies.md "Inject"). */
  #egress(dst: string): { port: string; dstMac: Buffer } {
    const entry = neighbourEntry(dst);
    if (this.#o.mode === 'ingress') {
      // One port: frames leave by it, toward the wire, never into this host's own stack.
      if (localAddresses().has(dst)) {
        throw new Refused(`${dst} is this host's own address: in ingress mode injected frames leave by ${this.#o.ports[0]} and never reach this host's stack`);
      }
      if (!entry) throw new Refused(`no MAC address known for ${dst}: the neighbour table of bae's namespace has none`);
      return { port: this.#o.ports[0]!, dstMac: entry.mac };
    }
    if (!entry) {
      throw new Refused(
        `no neighbour entry for ${dst} in bae's namespace: bae inline has no address, so the agent cannot learn which port and MAC lead to ${dst}; ` +
          `add one: ip neigh replace ${dst} lladdr MAC dev PORT nud permanent`,
      );
    }
    if (!this.#o.ports.includes(entry.dev)) {
      throw new Refused(`the neighbour entry of ${dst} is on ${entry.dev || 'no device'}, not on one of bae's ports (${this.#o.ports.join(', ')})`);
    }
    return { port: entry.dev, dstMac: entry.mac };
  }

  /** The one TCP flow of the conversation that the policy's match admits; ports for src -> dst. */
  #flow(policy: Policy, v: PolicyEventView, src: string): { sport: number; dport: number } {
    // The packet that fired went from v.src to v.dst, but for the response metrics (whose events
    // name the client first) it went the other way: the match's ports are the packet's.
    const metric = policy.trigger ? METRIC_BY_NAME.get(policy.trigger.metric) : undefined;
    const [from, to] = metric && metricReversed(metric.id) ? [v.dst, v.src] : [v.src, v.dst];
    const map = openLoadedMap(MAPS.tcpFlows, this.#o.pinDir, 'bae agent');
    let flows: ReturnType<typeof flowsBetween>;
    try {
      flows = flowsBetween(map, from, to).filter((f) => inRanges(f.sport, policy.match.sport) && inRanges(f.dport, policy.match.dport));
    } finally {
      map.close();
    }
    if (flows.length === 0) throw new Refused(`no TCP flow between ${from} and ${to} in bae's flow state fits the policy's match`);
    if (flows.length > 1) {
      const list = flows.map((f) => `${f.sport}->${f.dport}`).join(', ');
      throw new Refused(`${flows.length} TCP flows between ${from} and ${to} fit the policy's match (${list}), and a fire event names no ports: narrow match.sport or match.dport`);
    }
    const f = flows[0]!;
    return from === src ? { sport: f.sport, dport: f.dport } : { sport: f.dport, dport: f.sport };
  }

  /**
   * Whether the kernel's rule of this policy is monitor-only: `bae policy apply --monitor` sets
   * the flag on every rule of the set, and only the kernel keeps it (the stored set does not).
   */
  #monitorInKernel(id: number): boolean {
    const ctlMap = openLoadedMap(POLICY_MAPS.ctl, this.#o.pinDir, 'bae agent');
    const rulesMap = openLoadedMap(POLICY_MAPS.rules, this.#o.pinDir, 'bae agent');
    try {
      const raw = ctlMap.lookup(Buffer.alloc(4));
      if (!raw) return false;
      const ctl = decodePolicyCtl(raw);
      const gen = ctl.gen & 1;
      const { values } = rulesMap.lookupRange(gen * POLICY.maxRules, ctl.g[gen]!.rules);
      const size = values.length / Math.max(1, ctl.g[gen]!.rules);
      for (let i = 0; i < ctl.g[gen]!.rules; i++) {
        const rule = decodePolicyRule(values.subarray(i * size, (i + 1) * size));
        if (rule.id === id) return ((rule.flags ?? 0) & ENUMS.policy_rule_flag.POLICY_RULE_MONITOR) !== 0;
      }
      return false;
    } finally {
      ctlMap.close();
      rulesMap.close();
    }
  }

  /** The applied policy with this stable id (the stored set, read again when it changed). */
  #policy(id: number): Policy | undefined {
    let mtime: number;
    try {
      mtime = fs.statSync(stateFile(this.#o.pinDir)).mtimeMs;
    } catch {
      return undefined; // nothing applied
    }
    if (mtime !== this.#policiesMtime) {
      try {
        const loaded = openPolicyMaps(this.#o.pinDir);
        try {
          const stored = loadStoredSet(this.#o.pinDir, loaded.ctlMapId);
          this.#policies = new Map(policiesFromStored(stored, this.#o.pinDir).map((p) => [p.id, p]));
        } finally {
          loaded.close();
        }
        this.#policiesMtime = mtime;
      } catch (err) {
        log.warn({ err }, 'the applied policy set could not be read: no injection for this fire');
        return undefined;
      }
    }
    return this.#policies.get(id);
  }

  #refuse(base: Omit<OutcomeBase, 'time'>, reason: string): void {
    this.#counts.refused++;
    const out: InjectOutcome = { outcome: 'refused', time: new Date().toISOString(), ...base, reason };
    this.#remember(out);
    log.warn(out, 'injection refused');
    this.#o.onOutcome?.('inject-refused', out);
  }

  #remember(o: InjectOutcome): void {
    this.#recent.push(o);
    if (this.#recent.length > RECENT) this.#recent.shift();
  }

  status(): InjectActionStatus {
    return {
      enabled: this.#o.enabled ?? true,
      why: (this.#o.enabled ?? true) ? null : (this.#o.why ?? null),
      ...this.#counts,
      running: this.#running.size,
      recent: [...this.#recent],
    };
  }

  /** Stops what runs (each send ends at its next frame) and closes the sender. Safe twice. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled([...this.#running.values()]);
    this.#sender?.close();
    this.#sender = undefined;
  }
}

/** Whether a policy set holds an `inject` action (for `bae policy apply`'s warning). */
export function hasInjectAction(policies: readonly Pick<Policy, 'actions'>[]): boolean {
  return policies.some((p) => p.actions.some((a) => a.kind === 'inject'));
}
