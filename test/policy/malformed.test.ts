// test-unit: needs no root and no kernel (make test-unit).
// Every malformed policy file of test/policy/malformed/ gives its own PolicyError (file, line,
// column, message). That `bae policy apply` of each exits 2 with that one line and leaves every
// policy map as it was: malformed-apply.test.ts.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { compilePolicies } from '../../src/policy/compile';
import { PolicyError } from '../../src/policy/errors';
import { parsePolicyFiles } from '../../src/policy/parse';
import { malformedCases } from './malformed-cases';

describe('malformed policy files', () => {
  const cases = malformedCases();

  it('there are at least 100 of them', () => {
    assert.ok(cases.length >= 100, `${cases.length} malformed files`);
  });

  it('each one fails validation or compilation with its file, line, column and message', () => {
    for (const c of cases) {
      const name = path.basename(c.file);
      let err: unknown;
      try {
        compilePolicies(parsePolicyFiles([c.file]), { requireKernelActions: true });
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof PolicyError, `${name}: a PolicyError (got ${String(err)})`);
      assert.equal(err.code, 'BAE_POLICY', name);
      assert.equal(err.file, c.file, `${name}: file`);
      assert.deepEqual([err.line, err.column], [c.line, c.column], `${name}: line and column (${err.message})`);
      assert.ok(err.detail.includes(c.fragment), `${name}: message '${err.detail}' has '${c.fragment}'`);
      assert.ok(err.message.startsWith(`${c.file}:${c.line}:${c.column}:`), `${name}: message starts with the location`);
      assert.ok(!err.message.includes('\n'), `${name}: one line`);
    }
  });
});
