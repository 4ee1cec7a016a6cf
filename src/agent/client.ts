// The agent's control socket, client side, and what `bae policy apply` asks of it. The socket is
// a Unix stream socket under the run directory (root only, mode 0600), one per pin directory;
// each request and each reply is one JSON object on one line.
//
// This file knows nothing of the daemon (agent.ts): it is what a command needs of a running
// agent. prepareDelayLine is the policy area's delay-line step (agentDelayLineStep), which the
// CLI hands to `applyPolicyFiles` and `deletePolicies`.
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import * as path from 'node:path';
import { DEFAULT_PIN_DIR, MAPS, openLoadedMap } from '../datapath';
import { BaeError, EXIT, type BaeErrorOptions } from '../errors';
import { toJson } from '../json';
import { moduleLogger } from '../log';
import type { DelayParams } from '../emulation';
import { PolicyError, type CompiledSet, type DelayLineStep } from '../policy';

/** No agent answers on the control socket (nothing listens, or it did not answer in time). */
export class NoAgentError extends BaeError {
  constructor(message: string, options?: BaeErrorOptions) {
    super('BAE_NO_AGENT', message, options);
  }
}

/** `bae agent status` found no agent: the answer of a status query, exit 3 (EXIT.notRunning). */
export class AgentNotRunningError extends BaeError {
  override readonly exitCode = EXIT.notRunning;
  constructor(message: string, options?: BaeErrorOptions) {
    super('BAE_NO_AGENT', message, options);
  }
}

/** The control socket failed, or the agent refused the request or answered nonsense. */
export class AgentError extends BaeError {
  constructor(message: string, options?: BaeErrorOptions) {
    super('BAE_AGENT', message, options);
  }
}

const log = moduleLogger('agent/client');

/** BAE_RUN_DIR or /run/bae (the directory of the applied-policy files too). */
function runDir(): string {
  return process.env.BAE_RUN_DIR ?? '/run/bae';
}

/** The control socket of the agent of `pinDir`: agent.sock for the default pin directory. */
export function agentSocketPath(pinDir: string = DEFAULT_PIN_DIR): string {
  const resolved = path.resolve(pinDir);
  if (resolved === DEFAULT_PIN_DIR) return path.join(runDir(), 'agent.sock');
  const tag = crypto.createHash('sha256').update(resolved).digest('hex').slice(0, 12);
  return path.join(runDir(), `agent-${tag}.sock`);
}

export interface DelayClassConfig {
  cls: number;
  params: DelayParams;
}

export type AgentRequest =
  | { op: 'status' }
  | { op: 'delay-classes'; pinDir: string; classes: DelayClassConfig[] }
  /** Packet events of a command (src/agent/packet-events.ts): published on the agent's bus. */
  | { op: 'event'; pinDir: string; events: unknown[] };

/** One request, one reply; rejects with NoAgentError when nothing listens on the socket. */
export function agentRequest<T = unknown>(socketPath: string, req: AgentRequest, timeoutMs = 5000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let buf = '';
    let done = false;
    const finish = (err: Error | undefined, value?: T) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value as T);
    };
    const timer = setTimeout(() => finish(new NoAgentError(`the agent at ${socketPath} did not answer within ${timeoutMs} ms`)), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(toJson(req) + '\n'));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let reply: { ok: boolean; error?: string; result?: T };
      try {
        reply = JSON.parse(buf.slice(0, nl)) as typeof reply;
      } catch {
        finish(new AgentError(`the agent at ${socketPath} sent a reply that is not JSON`));
        return;
      }
      if (reply.ok) finish(undefined, reply.result as T);
      else finish(new AgentError(`the agent refused: ${reply.error ?? 'no reason given'}`));
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') finish(new NoAgentError(`no agent listens on ${socketPath}`, { cause: err }));
      else finish(new AgentError(`agent socket ${socketPath}: ${err.message}`, { cause: err }));
    });
    sock.on('end', () => finish(new AgentError(`the agent at ${socketPath} closed the connection without a reply`)));
  });
}

/** Whether the bae pinned at pinDir runs inline (its port map has entries). */
export function loadedInline(pinDir: string): boolean {
  const ports = openLoadedMap(MAPS.ports, pinDir, 'bae policy apply');
  try {
    for (const _ of ports.keys()) return true;
    return false;
  } finally {
    ports.close();
  }
}

/**
 * Hands the delay classes of a set to the agent that holds the delay line of `pinDir`, before
 * the set's rules are written. No agent: NoAgentError naming the command to start, and nothing
 * has been changed (the caller writes the maps only after this returns).
 */
export async function configureAgentDelayClasses(pinDir: string, classes: readonly DelayClassConfig[], usedBy: string): Promise<void> {
  const socket = agentSocketPath(pinDir);
  try {
    await agentRequest(socket, { op: 'delay-classes', pinDir: path.resolve(pinDir), classes: [...classes] });
  } catch (err) {
    if (!(err instanceof NoAgentError)) throw err;
    throw new NoAgentError(
      `${usedBy} needs the delay line, and no agent holds it (${socket} does not answer): start \`bae agent --iface IF --peer IF2${path.resolve(pinDir) === DEFAULT_PIN_DIR ? '' : ` --pin-dir ${pinDir}`}\` (or the bae-agent service) first; nothing was applied`,
      { cause: err },
    );
  }
}

/**
 * What `bae policy apply` (and delete) does before writing a set whose rules have delay classes:
 * refuses in ingress mode (a PolicyError at the first such action: exit 2), then configures the
 * agent's classes (no agent: NoAgentError, exit 1). Nothing is written when either fails.
 */
export async function prepareDelayLine(pinDir: string, set: Pick<CompiledSet, 'rules' | 'delayClasses'>): Promise<void> {
  if (set.delayClasses.length === 0) {
    // No class in use: a running agent forgets its classes (so its status tells the truth); no
    // agent is fine.
    await agentRequest(agentSocketPath(pinDir), { op: 'delay-classes', pinDir: path.resolve(pinDir), classes: [] }).catch((err: unknown) => {
      log.debug({ err, pinDir }, 'no agent took the empty class list');
    });
    return;
  }
  const first = set.rules.find((r) => r.delayClass !== 0)!.policy;
  const action = first.actions.find((a) => a.kind === 'delay' || a.kind === 'duplicate' || a.kind === 'reorder')!;
  if (!loadedInline(pinDir)) {
    throw new PolicyError(
      { ...(action.source ?? first.source), policy: first.name },
      `action '${action.kind}' needs bae inline (frames wait in the delay line between two ports); this bae runs in ingress mode: use \`bae agent --iface IF --peer IF2\``,
    );
  }
  const names = [...new Set(set.delayClasses.flatMap((c) => c.policies))];
  await configureAgentDelayClasses(
    pinDir,
    set.delayClasses.map((c) => ({ cls: c.cls, params: c.params })),
    `policy '${names[0]}'${names.length > 1 ? ` (and ${names.length - 1} more)` : ''} with '${action.kind}'`,
  );
}

/** The delay-line step of `bae policy apply` and `delete`: prepareDelayLine (above). */
export const agentDelayLineStep: DelayLineStep = { prepare: prepareDelayLine };
