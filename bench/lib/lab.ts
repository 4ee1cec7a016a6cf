// Shared by the benchmarks: a lab of their own, `bae` run through `bae lab exec`, and progress
// lines on stderr (stdout carries only the JSON result).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { openPinnedLink } from '../../src/datapath';
import { Lab, LabNode, labExecArgv } from '../../src/lab';

export { median } from './args';

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


const PPS_WORKER = path.join(__dirname, 'pps-worker.js');

/** Runs a step of pps-worker.js on a lab node and returns its JSON line. */
export function worker(lab: Lab, node: LabNode, args: string[], timeoutMs = 120_000): Record<string, unknown> {
  const argv = labExecArgv(lab, node, [process.execPath, PPS_WORKER, ...args]);
  const res = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs });
  if (res.status !== 0) throw new Error(`pps-worker ${args[0]} on ${node}: ${res.stderr.trim() || res.error?.message}`);
  return JSON.parse(res.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

/** Detaches every link pinned as link-* in `dir` (by pps-worker attach), then removes `dir`. */
export function detachAll(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const name of fs.readdirSync(dir).filter((n) => n.startsWith('link-'))) {
    try {
      openPinnedLink(path.join(dir, name)).detach();
    } catch {
      /* already gone with its interface */
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}
