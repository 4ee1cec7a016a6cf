// The verifier's cost of every program bae ships or tests with, on the running kernel: the
// instructions it processed for each (bpf_prog_info.verified_insns), against bae's budget and
// the figures recorded for this kernel line in bpf/verifier-figures.json. Prints one JSON
// object. With --record, writes this kernel's figures into that file (`make verifier-figures`).
//
//   node dist/bench/verifier.js [--record]
import os from 'node:os';
import {
  VERIFIER_BUDGET,
  VERIFIER_LIMIT,
  checkCosts,
  kernelLine,
  measureAll,
  readFigures,
  recordFigures,
} from '../src/datapath/verifier-cost';

const release = os.release();
const costs = measureAll();
const { rows, problems } = checkCosts(costs, readFigures().kernels[kernelLine(release)], release);
if (process.argv.includes('--record')) recordFigures(costs, release);
const max = Math.max(...costs.map((c) => c.insns));
process.stdout.write(
  JSON.stringify(
    {
      bench: 'verifier',
      kernel: release,
      budget: VERIFIER_BUDGET,
      limit: VERIFIER_LIMIT,
      // The largest program's share of the budget: below 1 is within it.
      ratioToBudget: Math.round((max / VERIFIER_BUDGET) * 1000) / 1000,
      programs: Object.fromEntries(rows.map((r) => [r.key, { insns: r.now, recorded: r.recorded ?? null }])),
      problems,
      recorded: process.argv.includes('--record'),
    },
    null,
    2,
  ) + '\n',
);
