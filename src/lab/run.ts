// Running the few external tools the lab needs (ip, ethtool, sysctl, nsenter). Synchronous on
// purpose: set-up is a short, ordered list of steps, and a step that fails must stop the next.
import { spawnSync } from 'node:child_process';
import { LabError } from '../errors';

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Time limit of one set-up step; `ip` and `ethtool` answer in milliseconds. */
const STEP_TIMEOUT_MS = 15_000;

/** Runs a command and returns what it printed; never throws for a non-zero exit. */
export function tryRun(argv: readonly string[], input?: string): RunResult {
  const [cmd, ...args] = argv;
  const res = spawnSync(cmd, args, {
    encoding: 'utf8',
    input,
    timeout: STEP_TIMEOUT_MS,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (res.error) {
    const err = res.error as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? `${cmd} is not installed (run scripts/install-deps.sh)` : err.message;
    return { status: 127, stdout: '', stderr: why };
  }
  return { status: res.status ?? 128, stdout: res.stdout, stderr: res.stderr };
}

/** Runs a command; a non-zero exit becomes a LabError naming the command and its first error line. */
export function run(argv: readonly string[], input?: string): string {
  const res = tryRun(argv, input);
  if (res.status !== 0) {
    const firstLine = res.stderr.trim().split('\n')[0] || `exit status ${res.status}`;
    throw new LabError(`'${argv.join(' ')}' failed: ${firstLine}`);
  }
  return res.stdout;
}

/** The argv that runs `cmd` in the network namespace `ns`, keeping the host's mount namespace
 *  (so /sys/fs/bpf pins stay shared between calls; `ip netns exec` would hide them). */
export function inNetns(ns: string, cmd: readonly string[]): string[] {
  return ['nsenter', `--net=/run/netns/${ns}`, '--', ...cmd];
}
