// The verifier's cost of bae's programs, kept like a benchmark: the instructions the kernel's
// verifier processed to accept each program (bpf_prog_info.verified_insns), per kernel line,
// against a budget of a quarter of the kernel's limit, and against the figures recorded in
// bpf/verifier-figures.json. A kernel update once turned bae off: its program sat near the
// 1M-instruction limit, nothing measured it, and a newer verifier refused it. The same object
// processed 589k instructions on 6.1, 209k on 6.12 and over 1M on 6.18, so a figure is only
// worth something next to the kernel it was measured on.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadCollection } from './collection';
import { parseKernelRelease } from './features';
import { CONSTANTS, Clock, Mode } from './layout';

/** The kernel's limit of processed instructions per program (BPF_COMPLEXITY_LIMIT_INSNS). */
export const VERIFIER_LIMIT = 1_000_000;
/** bae's budget per program: a quarter of the limit (cilium warns at half and fails at 70%). */
export const VERIFIER_BUDGET = 250_000;
/** A figure more than this much above its recorded one fails until the new figure is recorded. */
export const VERIFIER_RISE_MAX = 0.1;
/** ...and by more than this many instructions: a 2-instruction program that takes 3 is no news. */
export const VERIFIER_RISE_MIN = 1000;

/** <repo>/build/bpf (dist/src/datapath/verifier-cost.js -> <repo>). */
export const BUILD_BPF_DIR = path.resolve(__dirname, '../../../build/bpf');
/** <repo>/bpf/verifier-figures.json: the recorded figures, one entry per kernel line. */
export const FIGURES_FILE = path.resolve(__dirname, '../../../bpf/verifier-figures.json');

/** One way an object is loaded: its `const volatile` knobs change which code the verifier walks. */
export interface CostVariant {
  name: string;
  constants?: Record<string, number>;
}

export interface CostObject {
  /** Path below build/bpf. */
  object: string;
  variants: CostVariant[];
}

const ONLY: CostVariant[] = [{ name: '' }];
// bae_mode decides whether the forwarding and delay-line code is live; the test clock swaps the
// clock read for a map lookup. Every mode bae loads in (and the tests' clock) is measured.
const BAE_MODES: CostVariant[] = [
  { name: 'ingress', constants: { [CONSTANTS.mode]: Mode.ingress } },
  { name: 'inline', constants: { [CONSTANTS.mode]: Mode.inline } },
];
const BAE_VARIANTS: CostVariant[] = [
  ...BAE_MODES,
  { name: 'inline,test-clock', constants: { [CONSTANTS.mode]: Mode.inline, [CONSTANTS.clock]: Clock.test } },
];

/** Every object bae ships or tests with, and how each is loaded. */
export const COST_OBJECTS: CostObject[] = [
  { object: 'bae.o', variants: BAE_VARIANTS },
  { object: 'inject.o', variants: ONLY },
  { object: 'test/bae_core.o', variants: BAE_MODES },
  { object: 'test/bae_shared.o', variants: BAE_MODES },
  { object: 'test/addon_fixture.o', variants: ONLY },
  { object: 'test/bench.o', variants: ONLY },
  { object: 'test/delay_line.o', variants: ONLY },
  { object: 'test/smoke.o', variants: ONLY },
  { object: 'test/xdp_pass.o', variants: ONLY },
];
/** Objects built on purpose to be refused by the verifier or to break the budget. */
export const COST_EXEMPT = ['test/bad_verifier.o', 'test/oversized.o'];

export interface ProgramCost {
  /** `<object>:<program>` with `[variant]` when the object has several: the figures' key. */
  key: string;
  insns: number;
}

/** The kernel line a figure belongs to: "6.18" of "6.18.44-amd64". */
export function kernelLine(release: string = os.release()): string {
  const v = parseKernelRelease(release);
  return v ? `${v.major}.${v.minor}` : release;
}

/** Loads `object` (below buildDir) once per variant and reads every program's processed instructions. */
export function measureObject(entry: CostObject, buildDir: string = BUILD_BPF_DIR): ProgramCost[] {
  const costs: ProgramCost[] = [];
  for (const v of entry.variants) {
    const coll = loadCollection(path.join(buildDir, entry.object), { constants: v.constants });
    try {
      for (const p of coll.programs.values()) {
        costs.push({ key: `${entry.object}:${p.name}${v.name ? `[${v.name}]` : ''}`, insns: p.verifiedInsns });
      }
    } finally {
      coll.close();
    }
  }
  return costs;
}

export function measureAll(objects: CostObject[] = COST_OBJECTS, buildDir: string = BUILD_BPF_DIR): ProgramCost[] {
  return objects.flatMap((o) => measureObject(o, buildDir));
}

export interface KernelFigures {
  /** The full release the figures were measured on. */
  release: string;
  programs: Record<string, number>;
}

export interface FiguresFile {
  budget: number;
  kernels: Record<string, KernelFigures>;
}

export function readFigures(file: string = FIGURES_FILE): FiguresFile {
  if (!fs.existsSync(file)) return { budget: VERIFIER_BUDGET, kernels: {} };
  return JSON.parse(fs.readFileSync(file, 'utf8')) as FiguresFile;
}

/** Writes this kernel's figures into the file, the other kernels' as they were, keys sorted. */
export function recordFigures(costs: ProgramCost[], release: string = os.release(), file: string = FIGURES_FILE): FiguresFile {
  const figures = readFigures(file);
  const programs: Record<string, number> = {};
  for (const c of [...costs].sort((a, b) => a.key.localeCompare(b.key))) programs[c.key] = c.insns;
  figures.kernels[kernelLine(release)] = { release, programs };
  const kernels: Record<string, KernelFigures> = {};
  for (const k of Object.keys(figures.kernels).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))) kernels[k] = figures.kernels[k]!;
  const out = { budget: VERIFIER_BUDGET, kernels };
  fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  return out;
}

export interface CostRow {
  key: string;
  recorded: number | undefined;
  now: number;
  /** now / recorded - 1; undefined without a recorded figure. */
  change: number | undefined;
}

export interface CostCheck {
  rows: CostRow[];
  /** One sentence per failure: over the budget, a rise that was not recorded, a figure missing. */
  problems: string[];
}

const fmt = (n: number): string => n.toLocaleString('en-US');
const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;

/**
 * Holds the costs measured on `release` against the budget and the recorded figures of its
 * kernel line. `requireRecorded`: a program or a kernel line without a recorded figure is a
 * problem too (CI, and the kernels of the matrix).
 */
export function checkCosts(
  costs: ProgramCost[],
  recorded: KernelFigures | undefined,
  release: string,
  opts: { requireRecorded?: boolean; budget?: number } = {},
): CostCheck {
  const budget = opts.budget ?? VERIFIER_BUDGET;
  const line = kernelLine(release);
  const rows: CostRow[] = [];
  const problems: string[] = [];
  if (!recorded && opts.requireRecorded) {
    problems.push(`no verifier figures are recorded for Linux ${line} (${release}): run \`make verifier-figures\` on it and commit bpf/verifier-figures.json`);
  }
  for (const c of costs) {
    const [object, program] = c.key.split(':') as [string, string];
    const before = recorded?.programs[c.key];
    const change = before === undefined || before === 0 ? undefined : c.insns / before - 1;
    rows.push({ key: c.key, recorded: before, now: c.insns, change });
    if (c.insns > budget) {
      problems.push(
        `${program} (build/bpf/${object}) took ${fmt(c.insns)} verified instructions on Linux ${release}: ` +
          `over bae's budget of ${fmt(budget)} (the kernel refuses a program at ${fmt(VERIFIER_LIMIT)})`,
      );
    } else if (change !== undefined && change > VERIFIER_RISE_MAX && c.insns - before! > VERIFIER_RISE_MIN) {
      problems.push(
        `${program} (build/bpf/${object}) took ${fmt(c.insns)} verified instructions on Linux ${release}, ` +
          `${pct(change)} over the ${fmt(before!)} recorded for ${line}: record the new figure (\`make verifier-figures\`) in the commit that causes it`,
      );
    } else if (before === undefined && recorded && opts.requireRecorded) {
      problems.push(`${program} (build/bpf/${object}) has no recorded figure for Linux ${line}: run \`make verifier-figures\` and commit it`);
    }
  }
  return { rows, problems };
}

/** The rows as a table: program, recorded, now, change. */
export function renderCostTable(rows: CostRow[], release: string): string {
  const width = Math.max(7, ...rows.map((r) => r.key.length));
  const lines = [`verifier cost on Linux ${release} (budget ${fmt(VERIFIER_BUDGET)}, limit ${fmt(VERIFIER_LIMIT)})`];
  lines.push(`${'program'.padEnd(width)}  ${'recorded'.padStart(9)}  ${'now'.padStart(9)}  change`);
  for (const r of rows) {
    lines.push(
      `${r.key.padEnd(width)}  ${(r.recorded === undefined ? '-' : fmt(r.recorded)).padStart(9)}  ${fmt(r.now).padStart(9)}  ` +
        (r.change === undefined ? 'new' : pct(r.change)),
    );
  }
  return lines.join('\n');
}
