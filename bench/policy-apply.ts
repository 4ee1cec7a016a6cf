// Compile + apply of 10k policies into the kernel tables of a loaded bae.o, against the 200 ms
// target. Rows: the first apply into empty maps (cold, then with warm code), steady state
// (re-applying the same 10k: the idle generation already holds them), and 10k with one policy
// changed each time (what `bae policy apply one.yaml` costs on top of 10k). Prints one JSON object.
//
//   node dist/bench/policy-apply.js [--rounds N]
import os from 'node:os';
import path from 'node:path';
import { loadCollection } from '../src/datapath';
import { CONSTANTS, Clock } from '../src/datapath/layout';
import { applyCompiled, policyMapsOf } from '../src/policy/apply';
import { compilePolicies, summarize } from '../src/policy/compile';
import { parsePolicyText } from '../src/policy/parse';
import { benchPolicies, benchPolicyYaml, RULES } from './lib/policy-set';
import { median, round2, wholeOption } from './lib/args';

const TARGET_MS = 200;
const root = path.resolve(__dirname, '../..');
const rounds = wholeOption('policy-apply', 'rounds', 5);


async function main(): Promise<void> {
  const t0 = performance.now();
  const yaml = benchPolicyYaml();
  const policies = parsePolicyText(yaml, 'bench.yaml');
  const parseMs = performance.now() - t0;
  const coll = loadCollection(path.join(root, 'build/bpf/bae.o'), { constants: { [CONSTANTS.clock]: Clock.real } });
  try {
    const maps = policyMapsOf((n) => coll.map(n));
    // Applies wait for the grace period after the previous flip as `bae policy apply` does; the
    // wait starts when a flip is made, so in one process it is mostly over by the next apply.
    // Wall time, and this process's CPU time (user + system, system calls included): the
    // machine is shared, and CPU time is what the work itself costs when others run too.
    const rows: Record<string, { compile: number[]; apply: number[]; grace: number[]; total: number[]; cpu: number[] }> = {};
    const measure = async (name: string, set: typeof policies) => {
      const cpu = process.cpuUsage();
      const a = performance.now();
      const compiled = compilePolicies(set, { requireKernelActions: true });
      const b = performance.now();
      const applied = await applyCompiled(maps, compiled);
      const c = performance.now();
      const used = process.cpuUsage(cpu);
      const row = (rows[name] ??= { compile: [], apply: [], grace: [], total: [], cpu: [] });
      row.compile.push(b - a);
      row.apply.push(c - b);
      row.grace.push(applied.ms.grace);
      row.total.push(c - a);
      row.cpu.push((used.user + used.system) / 1000);
      return compiled;
    };
    // first_cold: this process's first compile and apply (JIT cold), into empty maps, like a
    // `bae policy apply` of 10k policies on a fresh bae. first_warm: the same into a second
    // fresh bae.o, code warm.
    const compiled = await measure('first_cold', policies);
    const fresh = loadCollection(path.join(root, 'build/bpf/bae.o'), { constants: { [CONSTANTS.clock]: Clock.real } });
    try {
      const a = performance.now();
      const cpu = process.cpuUsage();
      const warm = compilePolicies(policies, { requireKernelActions: true });
      const b = performance.now();
      const applied = await applyCompiled(policyMapsOf((n) => fresh.map(n)), warm);
      const c = performance.now();
      const used = process.cpuUsage(cpu);
      rows.first_warm = { compile: [b - a], apply: [c - b], grace: [applied.ms.grace], total: [c - a], cpu: [(used.user + used.system) / 1000] };
    } finally {
      fresh.close();
    }
    for (let r = 0; r < rounds; r++) await measure('steady', policies);
    const other = benchPolicies(RULES).map((p, i) => (i === 0 ? parsePolicyText(benchPolicyYaml(1).replace('dport: 1000', 'dport: 999'), 'one.yaml')[0]! : p));
    for (let r = 0; r < rounds; r++) await measure('one_changed', r % 2 ? policies : other);
    const ms = Object.fromEntries(
      Object.entries(rows).map(([k, v]) => [
        k,
        { compile: round2(median(v.compile)), apply: round2(median(v.apply)), grace: round2(median(v.grace)), total: round2(median(v.total)), cpuTotal: round2(median(v.cpu)) },
      ]),
    );
    const result = {
      bench: 'policy-apply',
      rules: RULES,
      tables: summarize(compiled),
      parseYamlMs: round2(parseMs),
      ms,
      targetMs: TARGET_MS,
      ratioToTarget: round2(ms.steady!.total / TARGET_MS),
      cpuRatioToTarget: round2(ms.steady!.cpuTotal / TARGET_MS),
      loadAverage: os.loadavg().map(round2),
      withinTarget: Object.values(ms).every((m) => m.total <= TARGET_MS),
      raw: rows,
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    coll.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`policy-apply: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
