// Running the built CLI (node bin/bae) as a child process, inside a lab namespace, and checking
// that nothing of bae is left behind.
import assert from 'node:assert/strict';
import { spawnSync, SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Lab, LabNode, labStatus } from '../../src/lab';

export const REPO = path.resolve(__dirname, '../../..');
export const BAE_BIN = path.join(REPO, 'bin/bae');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/bae ...args` (in the lab node's network namespace when `node` is given). */
export function bae(
  args: readonly string[],
  opts: { lab?: Lab; node?: LabNode; prefix?: readonly string[]; spawn?: SpawnSyncOptions } = {},
): CliResult {
  let argv = [process.execPath, BAE_BIN, ...args];
  if (opts.prefix) argv = [...opts.prefix, ...argv];
  if (opts.lab && opts.node) argv = ['nsenter', `--net=/run/netns/${opts.lab.ns[opts.node]}`, '--', ...argv];
  const res = spawnSync(argv[0]!, argv.slice(1), {
    encoding: 'utf8',
    timeout: 60_000,
    ...opts.spawn,
    env: { ...process.env, BAE_LOG_LEVEL: 'warn', ...(opts.spawn?.env ?? {}) },
  });
  if (res.error) throw res.error;
  return { status: res.status, stdout: String(res.stdout), stderr: String(res.stderr) };
}

/** Asserts a failed run: its exit code, and an error that names the problem on the first line. */
export function assertFails(res: CliResult, exitCode: number, pattern: RegExp): void {
  assert.equal(res.status, exitCode, `exit code ${res.status}, stderr: ${res.stderr}`);
  const first = res.stderr.split('\n')[0] ?? '';
  assert.match(first, pattern, `first line of stderr: ${first}`);
  // One line of error; commander adds one usage hint line after usage errors.
  const lines = res.stderr.trim().split('\n');
  assert.ok(lines.length <= 2, `more than one line of error:\n${res.stderr}`);
  if (lines.length === 2) assert.match(lines[1]!, /--help/);
}

/** Nothing of bae is attached to the lab's bae ports and nothing is pinned at `pinDir`. */
export function assertNothingLeft(lab: Lab, pinDir: string): void {
  assert.equal(fs.existsSync(pinDir), false, `${pinDir} still exists: ${fs.existsSync(pinDir) ? fs.readdirSync(pinDir).join(', ') : ''}`);
  const bae = labStatus(lab.prefix).nodes.find((n) => n.node === 'bae')!;
  for (const i of bae.interfaces) assert.equal(i.xdp, undefined, `${i.name} still carries XDP program ${i.xdp?.progId}`);
}
