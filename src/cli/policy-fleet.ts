// `bae policy apply --nats URL --node NAME|--all FILES`: the policy files, checked here first
// (a file that does not parse or validate is refused before anything is sent), go as one
// request on bae.commands.policy.<node> (or ._all); each agent applies them and answers with the
// generation applied or its error (docs/bus.md).
import fs from 'node:fs';
import path from 'node:path';
import { ALL_NODES, type PolicyReply, type PolicyRequest } from '../agent';
import { BusError, SUBJECTS, checkToken, openBus, type NatsAuth } from '../bus';
import { BaeError, ERROR_CODES, UsageError, type ErrorCode } from '../errors';
import { toJson } from '../json';
import { expandPolicyPaths, parsePolicyFiles } from '../policy';

export interface FleetApplyOptions {
  nats: string;
  auth?: NatsAuth;
  node?: string;
  all?: boolean;
  replace?: boolean;
  json?: boolean;
  timeoutMs: number;
}

function reply(value: unknown): PolicyReply {
  const r = value as PolicyReply;
  if (typeof r !== 'object' || r === null || typeof r.node !== 'string' || typeof r.ok !== 'boolean') throw new BusError(`an agent answered with something that is not a policy reply: ${toJson(value)}`);
  return r;
}

function line(r: PolicyReply): string {
  if (!r.ok) return `${r.node}: refused (${r.code}): ${r.error}`;
  const parts = [r.added.length ? `added ${r.added.join(', ')}` : '', r.changed.length ? `changed ${r.changed.join(', ')}` : '', r.removed.length ? `removed ${r.removed.join(', ')}` : ''].filter(Boolean);
  return `${r.node}: ${r.policies.length} ${r.policies.length === 1 ? 'policy' : 'policies'} active (generation ${r.generation})${parts.length ? ': ' + parts.join('; ') : ''}`;
}

export async function applyOverBus(paths: readonly string[], o: FleetApplyOptions): Promise<void> {
  if ((o.node === undefined) === !o.all) throw new UsageError('with --nats, name one node (--node NAME) or every node (--all)');
  if (o.node !== undefined) {
    try {
      checkToken(o.node, 'node name');
    } catch (err) {
      throw new UsageError(`--node: ${(err as Error).message}`);
    }
  }
  // The same checks as a local apply, before anything is sent.
  parsePolicyFiles(paths);
  const files = expandPolicyPaths(paths).map((p) => ({ name: path.basename(p), text: fs.readFileSync(p, 'utf8') }));
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.name)) throw new UsageError(`two files are named '${f.name}': the agents receive files by name, give them distinct names`);
    seen.add(f.name);
  }
  const request: PolicyRequest = { files, ...(o.replace ? { replace: true } : {}) };
  const bus = await openBus({ url: o.nats, name: 'bae-cli', ...(o.auth ? { auth: o.auth } : {}) });
  let replies: PolicyReply[];
  try {
    if (o.node !== undefined) {
      replies = [reply((await bus.request(SUBJECTS.policy(o.node), request, { timeoutMs: o.timeoutMs })).json())];
    } else {
      replies = (await bus.requestMany(SUBJECTS.policy(ALL_NODES), request, { timeoutMs: o.timeoutMs })).map((m) => reply(m.json()));
      if (replies.length === 0) throw new BusError(`no agent answered on ${SUBJECTS.policy(ALL_NODES)} within ${o.timeoutMs} ms`);
    }
  } finally {
    await bus.close();
  }
  replies.sort((a, b) => a.node.localeCompare(b.node));
  process.stdout.write(o.json ? toJson(replies, 2) + '\n' : replies.map(line).join('\n') + '\n');
  const failed = replies.filter((r): r is Extract<PolicyReply, { ok: false }> => !r.ok);
  if (failed.length === 0) return;
  const code: ErrorCode = failed.length === 1 && failed[0]!.code in ERROR_CODES ? (failed[0]!.code as ErrorCode) : 'BAE_BUS';
  throw new BaeError(code, failed.length === 1 ? `node ${failed[0]!.node}: ${failed[0]!.error}` : `${failed.length} of ${replies.length} nodes refused the policy set: ${failed.map((f) => f.node).join(', ')}`);
}
