// The malformed policy files of test/policy/malformed/ and what each must produce: the
// expectation is the file's first line (`# expect: LINE:COL fragment`), or for JSON files (which
// cannot carry comments) the sidecar FILE.expect.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../lib/fixtures';

export const MALFORMED_DIR = path.join(repoRoot, 'test/policy/malformed');

export interface MalformedCase {
  file: string;
  line: number;
  column: number;
  fragment: string;
}

export function malformedCases(): MalformedCase[] {
  return fs
    .readdirSync(MALFORMED_DIR)
    .filter((n) => /\.(ya?ml|json)$/.test(n))
    .sort()
    .map((n) => {
      const file = path.join(MALFORMED_DIR, n);
      if (n.endsWith('.json')) {
        const e = JSON.parse(fs.readFileSync(`${file}.expect`, 'utf8')) as { line: number; col: number; fragment: string };
        return { file, line: e.line, column: e.col, fragment: e.fragment };
      }
      const first = fs.readFileSync(file, 'utf8').split('\n')[0]!;
      const m = /^# expect: (\d+):(\d+) (.*)$/.exec(first);
      if (!m) throw new Error(`${file}: the first line must be '# expect: LINE:COL fragment'`);
      return { file, line: Number(m[1]), column: Number(m[2]), fragment: m[3]! };
    });
}
