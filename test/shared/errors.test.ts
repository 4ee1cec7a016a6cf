// test-unit: needs no root and no kernel (make test-unit).
// One vocabulary of errors: every code is namespaced and no errno name, every class carries its
// exit code, and the CLI's one handler (src/cli/main.ts) writes one line and returns that code.
import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, test } from 'node:test';
import { CommanderError, InvalidArgumentError } from 'commander';
import { AgentError, AgentNotRunningError, NoAgentError } from '../../src/agent';
import { handleError } from '../../src/cli/main';
import { BpfError } from '../../src/datapath';
import {
  AlreadyLoadedError,
  BaeError,
  ERROR_CODES,
  EXIT,
  LabError,
  NoInterfaceError,
  NotLoadedError,
  NotRootError,
  UnsupportedKernelError,
  UsageError,
  exitCodeFor,
} from '../../src/errors';
import { PolicyError } from '../../src/policy';

/** What the handler writes for `err`, and the exit code it returns. */
function handled(err: unknown): { code: number; out: string } {
  let out = '';
  const code = handleError(err, (text) => (out += text));
  return { code, out };
}

describe('error codes and exit codes', () => {
  test('every code is BAE_ and a word, and none is an errno name', () => {
    for (const code of Object.keys(ERROR_CODES)) {
      assert.match(code, /^BAE_[A-Z]+(_[A-Z]+)*$/);
      assert.equal(code in os.constants.errno, false, `${code} reads as an errno name`);
    }
  });

  test('each class has its code and its exit code: 2 for input to fix, 1 otherwise, 3 for no agent in agent status', () => {
    const where = { file: 'p.yaml', line: 1, column: 1 };
    const cases: [BaeError, string, number][] = [
      [new UsageError('bad flag'), 'BAE_USAGE', 2],
      [new PolicyError(where, 'bad field'), 'BAE_POLICY', 2],
      [new NotRootError('bae load'), 'BAE_NOT_ROOT', 1],
      [new NotLoadedError(), 'BAE_NOT_LOADED', 1],
      [new AlreadyLoadedError('there'), 'BAE_ALREADY_LOADED', 1],
      [new NoInterfaceError('eth9'), 'BAE_NO_IFACE', 1],
      [new UnsupportedKernelError('old'), 'BAE_KERNEL', 1],
      [new LabError('no lab'), 'BAE_LAB', 1],
      [new NoAgentError('none'), 'BAE_NO_AGENT', 1],
      [new AgentError('refused'), 'BAE_AGENT', 1],
      [new AgentNotRunningError('none'), 'BAE_NO_AGENT', 3],
      [new BaeError('BAE_VERIFIER', 'refused'), 'BAE_VERIFIER', 1],
      [new BaeError('BAE_BUSY', 'locked'), 'BAE_BUSY', 1],
    ];
    for (const [err, code, exit] of cases) {
      assert.equal(err.code, code, err.name);
      assert.equal(err.exitCode, exit, err.name);
      assert.equal(exitCodeFor(err), exit, err.name);
      assert.ok(err instanceof BaeError && err instanceof Error);
    }
    assert.equal(new AgentNotRunningError('none').name, 'AgentNotRunningError');
    assert.deepEqual(EXIT, { failure: 1, input: 2, notRunning: 3 });
  });

  test('a BpfError keeps the errno name as its code (as Node system errors do) and exits 1', () => {
    const err = new BpfError('bpf_map_update_elem', 17, 'File exists', { object: 'sized' });
    assert.equal(err.code, 'EEXIST');
    assert.equal(err.errno, 17);
    assert.equal(exitCodeFor(err), EXIT.failure);
  });
});

describe('the CLI error handler', () => {
  test("writes one line 'bae: message' and returns the class's exit code", () => {
    assert.deepEqual(handled(new NotLoadedError()), { code: 1, out: 'bae: bae is not loaded; run `bae load --iface IF` first\n' });
    assert.deepEqual(handled(new PolicyError({ file: 'a.yaml', line: 3, column: 5, policy: 'p' }, 'bad')), {
      code: 2,
      out: "bae: a.yaml:3:5: policy 'p': bad\n",
    });
    assert.deepEqual(handled(new AgentNotRunningError('no bae agent is running')), { code: 3, out: 'bae: no bae agent is running\n' });
  });

  test('an error bae does not know is unexpected and exits 1', () => {
    assert.deepEqual(handled(new TypeError('x is undefined')), { code: 1, out: 'bae: unexpected error: x is undefined\n' });
    assert.deepEqual(handled('a string'), { code: 1, out: 'bae: unexpected error: a string\n' });
  });

  test("commander's refusals are input to fix (2) and print nothing more; help and version exit 0", () => {
    assert.deepEqual(handled(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'")), { code: 2, out: '' });
    assert.deepEqual(handled(new InvalidArgumentError('expected a whole number')), { code: 2, out: '' });
    assert.deepEqual(handled(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)')), { code: 0, out: '' });
  });
});
