// The `inject` action in `bae agent` (kept apart from agent.ts, which several areas edit): the
// agent's InjectAction, fed with the kernel's fire events, its packets to the store, its outcomes
// to the bus (bae.events.<node>.injected / .inject-refused) and the store; and its status lines.
import * as path from 'node:path';
import { InjectAction, NoAgentError, agentRequest, agentSocketPath, hasInjectAction, type Agent, type InjectActionStatus, type InjectOutcome, type StoreBridge } from '../agent';
import { DEFAULT_PIN_DIR } from '../datapath';
import type { Policy, PolicyEventView } from '../policy';
import { SUBJECTS, type Bus } from '../bus';
import { moduleLogger } from '../log';

const log = moduleLogger('agent/inject');

/**
 * An injection as an event, in the shape of the kernel's (PolicyEventView, which `bae events`
 * reads from the store and the stream): value = the frames sent (0 when refused), the outcome
 * itself under `inject`.
 */
export function injectEventView(kind: 'injected' | 'inject-refused', o: InjectOutcome): PolicyEventView & { inject: InjectOutcome } {
  return {
    kind,
    policy: o.policy,
    policyId: o.policyId,
    scope: o.scope,
    src: o.src,
    dst: o.dst,
    value: BigInt(o.outcome === 'injected' ? o.frames : 0),
    timeNs: process.hrtime.bigint(),
    time: o.time,
    inject: o,
  };
}

/**
 * The fields of a packet event (docs/inject.md "Packet events") that `bae inject` and `bae
 * reconstruct` events carry, so that the live view shows a policy's injections like theirs.
 */
function packetEventFields(o: InjectOutcome): { by: string; reason: string; frames: number; port: string | null; sport: number | null; dport: number | null; proto: 'tcp' } {
  return o.outcome === 'injected'
    ? { by: 'policy', reason: o.kind, frames: o.frames, port: o.port, sport: o.sport, dport: o.dport, proto: 'tcp' }
    : { by: 'policy', reason: o.reason, frames: 0, port: null, sport: null, dport: null, proto: 'tcp' };
}

/** `readsEvents`: whether the agent takes the kernel's events from the ring (else fires never reach it). */
export function startInjectAction(running: Agent, o: { bus: Bus; node: string; store: StoreBridge | undefined; readsEvents: boolean }): InjectAction {
  const action = new InjectAction({
    pinDir: running.pinDir,
    ports: running.peer === undefined ? [running.iface] : [running.iface, running.peer],
    mode: running.peer === undefined ? 'ingress' : 'inline',
    enabled: o.readsEvents,
    why: 'with --no-db and neither --nats nor --http the agent leaves the kernel\'s events in the ring for `bae events`',
    ...(o.store ? { onPacket: (r) => o.store!.packet(r) } : {}),
    onOutcome: (kind, outcome) => {
      const view = injectEventView(kind, outcome);
      o.store?.agentEvent(kind, view);
      try {
        o.bus.publishEvent(SUBJECTS.event(o.node, kind), { node: o.node, ...view, ...packetEventFields(outcome) });
      } catch (err) {
        log.warn({ err, kind }, 'an injection event could not be published');
      }
    },
  });
  running.addStatus('inject', () => action.status());
  return action;
}

export function injectStatusLines(extras: unknown): string[] {
  const st = (extras as { inject?: InjectActionStatus } | undefined)?.inject;
  if (!st) return [];
  if (!st.enabled) return [`  inject actions: off (${st.why ?? 'fires do not reach the agent'})`];
  const last = st.recent.at(-1);
  const lastText = last ? `; last: ${last.outcome} ${last.kind} of '${last.policy}' toward ${last.dst}${last.outcome === 'refused' ? ` (${last.reason})` : ''}` : '';
  return [`  inject actions: ${st.fires} fires, ${st.injected} injected (${st.frames} frames), ${st.refused} refused, ${st.running} running${lastText}`];
}

/**
 * After `bae policy apply`: a set with `inject` needs a running agent that reads the kernel's
 * events (the kernel cannot forge packets). Says so on stderr when none answers or it cannot;
 * the set stays applied (its triggers fire and count; nothing is injected meanwhile).
 */
export async function warnInjectWithoutAgent(policies: readonly Policy[], pinDir: string): Promise<string | undefined> {
  const names = policies.filter((p) => hasInjectAction([p])).map((p) => p.name);
  if (names.length === 0) return undefined;
  const which = `policy '${names[0]}'${names.length > 1 ? ` (and ${names.length - 1} more)` : ''} has 'inject'`;
  const socket = agentSocketPath(pinDir);
  let warning: string | undefined;
  try {
    const st = await agentRequest<{ extras?: { inject?: InjectActionStatus } }>(socket, { op: 'status' }, 2000);
    const inj = st.extras?.inject;
    if (!inj) warning = `${which}, and the agent at ${socket} does not carry out inject actions (an older bae agent?): restart it`;
    else if (!inj.enabled) warning = `${which}, and the agent at ${socket} cannot carry it out: ${inj.why ?? 'fires do not reach it'}`;
  } catch (err) {
    if (!(err instanceof NoAgentError)) throw err;
    warning =
      `${which}, which only a running agent carries out, and none answers on ${socket}: ` +
      `start \`bae agent --iface IF [--peer IF2]${path.resolve(pinDir) === DEFAULT_PIN_DIR ? '' : ` --pin-dir ${pinDir}`}\`; applied anyway (its trigger fires, nothing is injected until then)`;
  }
  if (warning) process.stderr.write(`bae: warning: ${warning}\n`);
  return warning;
}
