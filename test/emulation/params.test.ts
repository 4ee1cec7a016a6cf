// test-unit: needs no root and no kernel (make test-unit).
// Pure parts of the delay line's wrapper: parameter checks, the XSKMAP key, lateness quantiles.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkDelayParams, DEFAULT_DELAY_PARAMS, delayLineKey, latenessQuantileNs } from '../../src/emulation';
import { UsageError } from '../../src/errors';

test('a parameter change merges into the current parameters after every field is checked', () => {
  const base = checkDelayParams({ delayMs: 10, jitterMs: 2, distribution: 'normal' });
  assert.deepEqual(checkDelayParams({ jitterMs: 3 }, base), { ...base, jitterMs: 3 });
  assert.deepEqual(checkDelayParams({}), { ...DEFAULT_DELAY_PARAMS });
  const before = { ...base };
  assert.throws(() => checkDelayParams({ delayMs: 5, reorderGap: 0 }, base), UsageError);
  assert.deepEqual(base, before, 'a refused change leaves the base untouched');
});

test('each bad parameter gets one error naming it', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ delayMs: -1 }, /delayMs must be a number from 0 to 60000, got -1/],
    [{ delayMs: Infinity }, /delayMs must be a number/],
    [{ delayMs: 50_000, jitterMs: 5000 }, /delayMs \+ 4 \* jitterMs must not exceed 60000 ms/],
    [{ correlation: 1.5 }, /correlation must be a number from 0 to 1, got 1.5/],
    [{ reorder: -0.1 }, /reorder must be a number from 0 to 1/],
    [{ reorderGap: 2.5 }, /reorderGap must be an integer from 1/],
    [{ distribution: 'Normal' }, /distribution must be one of uniform, normal, pareto, paretonormal, got Normal/],
    [{ lossy: true }, /unknown parameter 'lossy'/],
  ];
  for (const [patch, message] of cases) {
    assert.throws(() => checkDelayParams(patch as never), (err: unknown) => err instanceof UsageError && message.test(err.message));
  }
});

test('the XSKMAP key of a port and class is ifindex * 8 + class', () => {
  assert.equal(delayLineKey(1, 0), 8);
  assert.equal(delayLineKey(7, 3), 59);
});

test('lateness quantiles are the upper bound of the bucket that holds them', () => {
  const hist = [
    { lowNs: 0, highNs: 1, count: 50 },
    { lowNs: 1000, highNs: 1152, count: 49 },
    { lowNs: 40960, highNs: 45056, count: 1 },
  ];
  assert.equal(latenessQuantileNs(hist, 0.5), 1);
  assert.equal(latenessQuantileNs(hist, 0.99), 1152);
  assert.equal(latenessQuantileNs(hist, 1), 45056);
  assert.equal(latenessQuantileNs([], 0.5), undefined);
});
