// Policy sets over the bus (docs/bus.md): `bae policy apply --nats URL --node NAME|--all FILES`
// sends the files' texts as a request on bae.commands.policy.<node> (or .<ALL_NODES>); the agent
// applies them exactly as `bae policy apply` does on the node and answers with the generation
// applied or the error. One apply at a time per agent.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BaeError } from '../errors';
import { moduleLogger } from '../log';
import { applyPolicyFiles } from '../policy';
import { agentDelayLineStep } from './client';

const log = moduleLogger('agent/bus');

/** The token that addresses every agent: bae.commands.policy._all. */
export const ALL_NODES = '_all';
/** Bounds of a request: files and bytes. */
export const MAX_POLICY_FILES = 256;
const MAX_NAME = 255;

export interface PolicyRequest {
  files: { name: string; text: string }[];
  /** The files become the whole set (bae policy apply --replace). */
  replace?: boolean;
}

export type PolicyReply =
  | { ok: true; node: string; generation: number; policies: string[]; added: string[]; changed: string[]; unchanged: string[]; removed: string[] }
  | { ok: false; node: string; code: string; error: string };

/** The reasons `value` is not a PolicyRequest; [] when it is. */
export function checkPolicyRequest(value: unknown): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return ['a policy request is a JSON object {files: [{name, text}], replace?}'];
  const v = value as Record<string, unknown>;
  const errors: string[] = [];
  if (!Array.isArray(v.files) || v.files.length === 0 || v.files.length > MAX_POLICY_FILES) {
    errors.push(`files must be a list of 1 to ${MAX_POLICY_FILES} {name, text}`);
  } else {
    const names = new Set<string>();
    v.files.forEach((f: unknown, i) => {
      const { name, text } = (f ?? {}) as { name?: unknown; text?: unknown };
      if (typeof name !== 'string' || !/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.') || name.length > MAX_NAME) errors.push(`files[${i}].name must be a plain file name`);
      else if (names.has(name)) errors.push(`files[${i}].name '${name}' is given twice`);
      else names.add(name);
      if (typeof text !== 'string') errors.push(`files[${i}].text must be a string`);
    });
  }
  if (v.replace !== undefined && typeof v.replace !== 'boolean') errors.push('replace must be true or false');
  return errors;
}

/** Applies a checked request at `pinDir`; never throws (the error is the reply). */
export async function applyPolicyRequest(req: PolicyRequest, node: string, pinDir: string): Promise<PolicyReply> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-bus-policy-'));
  try {
    const paths = req.files.map((f) => {
      const file = path.join(dir, f.name);
      fs.writeFileSync(file, f.text);
      return file;
    });
    const out = await applyPolicyFiles(paths, { pinDir, replace: req.replace ?? false, delayLine: agentDelayLineStep });
    log.info({ generation: out.result.gen, added: out.added, changed: out.changed, removed: out.removed }, 'policy set applied from the bus');
    return {
      ok: true,
      node,
      generation: out.result.gen,
      policies: out.policies.map((p) => p.name),
      added: out.added,
      changed: out.changed,
      unchanged: out.unchanged,
      removed: out.removed,
    };
  } catch (err) {
    // Errors name the file as the sender wrote it, not the temporary copy.
    const error = (err instanceof Error ? err.message : String(err)).split(`${dir}/`).join('');
    log.warn({ error }, 'policy set from the bus refused: nothing changed');
    return { ok: false, node, code: err instanceof BaeError ? err.code : 'BAE_UNEXPECTED', error };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
