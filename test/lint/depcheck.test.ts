// test-unit: needs no root and no kernel (make test-unit).
// The dependency rules of .dependency-cruiser.cjs (`make depcheck`) catch what they are for: a copy
// of src/ with planted violations (a cycle, imports that go up the layers, an import past an
// area's index.ts) is reported with exactly those, by rule name, and nothing else.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../lib/fixtures';

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

/** The files planted into the copy, and what each must be reported for. */
const PLANTED: Record<string, string> = {
  'src/policy/planted-a.ts': "import { b } from './planted-b';\nexport const a = (): number => b() + 1;\n",
  'src/policy/planted-b.ts': "import { a } from './planted-a';\nexport const b = (): number => a() - 1;\n",
  // The cycle the agent's delay-line step once made: policy reaching up into agent.
  'src/policy/planted-agent.ts': "export { agentSocketPath } from '../agent';\n",
  'src/datapath/planted-up.ts': "export { parsePolicyText } from '../policy';\n",
  // The bus is below the agent: it never reaches up for it.
  'src/bus/planted-agent.ts': "export { agentSocketPath } from '../agent';\n",
  // The live view sits under the agent: the agent's status comes in as a function, never by import.
  'src/web/planted-agent.ts': "export { agentSocketPath } from '../agent';\n",
  'src/cli/planted-deep.ts': "export { parsePolicyText } from '../policy/parse';\n",
  'src/lab/planted-lab.ts': "export { loadCollection } from '../datapath';\n",
};

const EXPECTED = [
  'leaf-imports-no-area: src/lab/planted-lab.ts -> src/datapath/index.ts',
  'layer-datapath: src/datapath/planted-up.ts -> src/policy/index.ts',
  'layer-policy-profiles-emulation-bus-reconstruct-store: src/bus/planted-agent.ts -> src/agent/index.ts',
  'layer-policy-profiles-emulation-bus-reconstruct-store: src/policy/planted-agent.ts -> src/agent/index.ts',
  'layer-web-scenario: src/web/planted-agent.ts -> src/agent/index.ts',
  'no-circular: src/policy/planted-a.ts <-> src/policy/planted-b.ts',
  'through-the-index: src/cli/planted-deep.ts -> src/policy/parse.ts',
];

/** depcruise over the copy's src/ with the repository's rules, as `make depcheck` runs it. */
function depcruise(cwd: string, ...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const bin = path.join(repoRoot, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
  const argv = [bin, 'src', '--config', path.join(repoRoot, '.dependency-cruiser.cjs'), ...args];
  return new Promise((resolve) => {
    execFile(process.execPath, argv, { cwd, encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = (err as { code?: unknown } | null)?.code;
      resolve({ status: err ? (typeof code === 'number' ? code : -1) : 0, stdout, stderr });
    });
  });
}

/** "rule: from -> to"; a cycle by its two files in name order (it is reported from either end). */
function describeViolation(v: Violation): string {
  if (v.rule.name === 'no-circular') return `no-circular: ${[v.from, v.to].sort().join(' <-> ')}`;
  return `${v.rule.name}: ${v.from} -> ${v.to}`;
}

describe('the dependency rules', () => {
  let dir: string;
  let json: { status: number; stdout: string; stderr: string };
  let text: { status: number; stdout: string; stderr: string };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-depcheck-'));
    fs.cpSync(path.join(repoRoot, 'src'), path.join(dir, 'src'), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'tsconfig.json'), path.join(dir, 'tsconfig.json'));
    fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
    for (const [file, content] of Object.entries(PLANTED)) fs.writeFileSync(path.join(dir, file), content);
    // The JSON report to read the violations; the default one for the exit status make sees.
    [json, text] = await Promise.all([depcruise(dir, '--output-type', 'json'), depcruise(dir)]);
  });

  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('report a planted cycle, imports that go up the layers and one past an index, and nothing else', () => {
    assert.ok(json.stdout, `depcruise printed nothing (status ${json.status}): ${json.stderr}`);
    const violations = (JSON.parse(json.stdout) as { summary: { violations: Violation[] } }).summary.violations;
    assert.deepEqual([...new Set(violations.map(describeViolation))].sort(), [...EXPECTED].sort());
  });

  it('fail `make depcheck` (a non-zero exit) and name each rule broken', () => {
    assert.notEqual(text.status, 0, text.stdout);
    for (const rule of new Set(EXPECTED.map((e) => e.split(':')[0]!))) assert.match(text.stdout, new RegExp(`error ${rule}: `), rule);
  });
});
