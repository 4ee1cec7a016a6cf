// The verifier budget: every program bae ships or tests with loads on this kernel with at most
// VERIFIER_BUDGET processed instructions, and none rose more than VERIFIER_RISE_MAX over the
// figure recorded for this kernel line in bpf/verifier-figures.json. Runs on the host kernel
// and in every kernel of the matrix (`make test-kernels`), and prints each program's figures.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  BUILD_BPF_DIR,
  COST_EXEMPT,
  COST_OBJECTS,
  VERIFIER_BUDGET,
  checkCosts,
  kernelLine,
  measureAll,
  measureObject,
  readFigures,
  recordFigures,
  renderCostTable,
} from '../../src/datapath/verifier-cost';

const release = os.release();
// The kernels of the matrix and of CI carry recorded figures; a user's other kernel is held to
// the budget only.
const MATRIX_LINES = ['6.1', '6.12', '6.18'];
const requireRecorded = process.env.CI === 'true' || MATRIX_LINES.includes(kernelLine(release));

describe('the verifier budget', () => {
  test('every program of every object loads within the budget and its recorded figure on this kernel', () => {
    const costs = measureAll();
    const recorded = readFigures().kernels[kernelLine(release)];
    const { rows, problems } = checkCosts(costs, recorded, release, { requireRecorded });
    const table = renderCostTable(rows, release);
    // The figures, for the log of every run (and to record a kernel's line from the matrix).
    console.log(table);
    console.log(`verifier-figures ${kernelLine(release)} ${JSON.stringify(Object.fromEntries(costs.map((c) => [c.key, c.insns])))}`);
    assert.deepEqual(problems, [], `${problems.join('\n')}\n\n${table}`);
    assert.ok(costs.some((c) => c.key.startsWith('bae.o:bae_xdp')), 'bae.o was measured');
  });

  test('every object the build makes is measured or exempt on purpose', () => {
    const built: string[] = [];
    for (const dir of ['', 'test']) {
      for (const f of fs.readdirSync(path.join(BUILD_BPF_DIR, dir))) if (f.endsWith('.o')) built.push(path.posix.join(dir, f));
    }
    const known = new Set([...COST_OBJECTS.map((o) => o.object), ...COST_EXEMPT]);
    assert.deepEqual(built.filter((o) => !known.has(o)), [], 'objects in build/bpf that nothing holds to the budget');
  });

  test('an oversized program is caught, with its name, the kernel and its figure', () => {
    const costs = measureObject({ object: 'test/oversized.o', variants: [{ name: '' }] });
    assert.equal(costs.length, 1);
    const { problems } = checkCosts(costs, undefined, release);
    assert.equal(problems.length, 1, problems.join('\n'));
    const figure = costs[0]!.insns.toLocaleString('en-US');
    assert.ok(costs[0]!.insns > VERIFIER_BUDGET, `the fixture took ${figure}, it must be over the budget`);
    assert.match(problems[0]!, new RegExp(`^oversized \\(build/bpf/test/oversized\\.o\\) took ${figure} verified instructions on Linux ${release.replace(/[.+]/g, '\\$&')}: over bae's budget of 250,000`));
  });

  test('a rise of more than 10% over the recorded figure fails until it is recorded; a smaller one passes', () => {
    const recorded = { release: '6.18.1', programs: { 'bae.o:bae_xdp[inline]': 100_000, 'test/x.o:small': 20 } };
    const rise = checkCosts([{ key: 'bae.o:bae_xdp[inline]', insns: 111_000 }], recorded, '6.18.2');
    assert.equal(rise.problems.length, 1);
    assert.match(rise.problems[0]!, /^bae_xdp\[inline\] \(build\/bpf\/bae\.o\) took 111,000 verified instructions on Linux 6\.18\.2, \+11\.0% over the 100,000 recorded for 6\.18/);
    assert.equal(rise.rows[0]!.change!.toFixed(2), '0.11');
    assert.deepEqual(checkCosts([{ key: 'bae.o:bae_xdp[inline]', insns: 109_000 }], recorded, '6.18.2').problems, []);
    // A few instructions more of a tiny program are no news.
    assert.deepEqual(checkCosts([{ key: 'test/x.o:small', insns: 30 }], recorded, '6.18.2').problems, []);
    // A kernel line with no figures at all is a problem where figures are required.
    assert.match(checkCosts([{ key: 'bae.o:bae_xdp[inline]', insns: 1 }], undefined, '6.5.0', { requireRecorded: true }).problems[0]!, /no verifier figures are recorded for Linux 6\.5/);
  });

  test('recording writes this kernel line and keeps the others', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-figures-'));
    try {
      const file = path.join(dir, 'figures.json');
      recordFigures([{ key: 'bae.o:bae_xdp[inline]', insns: 5 }], '6.1.192-amd64', file);
      recordFigures([{ key: 'bae.o:bae_xdp[inline]', insns: 7 }], '6.12.118-amd64', file);
      recordFigures([{ key: 'bae.o:bae_xdp[inline]', insns: 6 }], '6.1.200-amd64', file);
      const f = readFigures(file);
      assert.deepEqual(Object.keys(f.kernels), ['6.1', '6.12']);
      assert.equal(f.kernels['6.1']!.release, '6.1.200-amd64');
      assert.equal(f.kernels['6.1']!.programs['bae.o:bae_xdp[inline]'], 6);
      assert.equal(f.kernels['6.12']!.programs['bae.o:bae_xdp[inline]'], 7);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
