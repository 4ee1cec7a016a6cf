// test-unit: needs no root and no kernel (make test-unit).
// One JSON encoding (src/json.ts) for every --json and every agent reply: a bigint (64-bit
// counter, nanosecond timestamp) is a decimal string, always; plain numbers stay numbers.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { toJson, toJsonValue, type Json } from '../../src/json';
import { repoRoot } from '../lib/fixtures';

describe('the JSON encoding', () => {
  test('a bigint is a decimal string whatever its size, so a field keeps one type and every digit', () => {
    const value = { small: 5n, zero: 0n, big: 2n ** 63n + 7n, negative: -3n, list: [1n, 2n ** 60n], count: 3, name: 'x', none: null };
    assert.deepEqual(toJsonValue(value), {
      small: '5',
      zero: '0',
      big: '9223372036854775815',
      negative: '-3',
      list: ['1', '1152921504606846976'],
      count: 3,
      name: 'x',
      none: null,
    });
    assert.equal(toJson({ n: 1n }), '{"n":"1"}');
    assert.equal(toJson({ n: 1n }, 2), '{\n  "n": "1"\n}');
    // What a reader gets back, by type as well.
    const back: Json<{ n: bigint; m: number[] }> = JSON.parse(toJson({ n: 12n, m: [1] })) as Json<{ n: bigint; m: number[] }>;
    assert.equal(BigInt(back.n) + 1n, 13n);
  });

  test('every command writes its JSON through src/json.ts', () => {
    const dir = path.join(repoRoot, 'src/cli');
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const text = fs.readFileSync(path.join(dir, file), 'utf8');
      assert.doesNotMatch(text, /JSON\.stringify\(/, `src/cli/${file} encodes JSON by itself`);
    }
  });
});
