// Shared by the benchmarks: a lab of their own, `bae` run through `bae lab exec`, and progress
// lines on stderr (stdout carries only the JSON result).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Lab, LabNode, labExecArgv } from '../../src/lab';

export const REPO = path.resolve(__dirname, '../../..');
const BAE_BIN = path.join(REPO, 'bin/bae');

export function note(msg: string): void {
  process.stderr.write(`${path.basename(process.argv[1] ?? 'bench')}: ${msg}\n`);
}

/** Runs `node bin/bae ...args` on a lab node; throws with its stderr when it fails. */
export function baeOn(lab: Lab, node: LabNode, args: string[]): string {
  const argv = labExecArgv(lab, node, [process.execPath, BAE_BIN, ...args]);
  const res = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
  if (res.status !== 0) throw new Error(`bae ${args.join(' ')}: ${res.stderr.trim() || res.error?.message}`);
  return res.stdout;
}

/** The JSON line of a benchmark: raw figures first, ratios after. */
export function printResult(result: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
