// test-unit: needs no root and no kernel (make test-unit).
// The logger (src/log.ts): module loggers under one root, JSON lines on stderr by default, a
// short line for a person only when stderr is a terminal (or BAE_LOG_FORMAT says so).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { createLogger, prettyLine } from '../../src/log';
import { repoRoot } from '../lib/fixtures';

const LOG_MODULE = path.join(repoRoot, 'dist/src/log.js');
/** A child that logs one warning through a module logger, with a field and an error. */
const CHILD = `require(${JSON.stringify(LOG_MODULE)}).moduleLogger('agent').warn({ pinDir: '/sys/fs/bpf/bae', err: Object.assign(new Error('boom'), { code: 'BAE_BPF' }) }, 'the line was late');`;

/** The child's environment: level info, the format left to the terminal, not a test runner's child. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, BAE_LOG_LEVEL: 'info' };
  delete env.BAE_LOG_FORMAT;
  delete env.NODE_TEST_CONTEXT;
  return env;
}

function lines(capture: string[]): Record<string, unknown>[] {
  const text = capture.join('');
  return text.trim().split('\n').map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      assert.fail(`not a JSON line: ${JSON.stringify(l)} in ${JSON.stringify(text)}`);
    }
  });
}

describe('the logger', () => {
  test('a module logger writes one JSON object per line with the module, the level and the message', () => {
    const out: string[] = [];
    const root = createLogger({ format: 'json', level: 'info', write: (l) => out.push(l) });
    root.child({ module: 'policy' }).info({ generation: 3 }, 'set applied');
    root.child({ module: 'policy' }).debug('not at info');
    const [line, ...rest] = lines(out);
    assert.equal(rest.length, 0, 'debug is below the level');
    assert.equal(line!.module, 'policy');
    assert.equal(line!.level, 30);
    assert.equal(line!.msg, 'set applied');
    assert.equal(line!.generation, 3);
    assert.equal(line!.name, 'bae');
    assert.equal(line!.pid, process.pid);
  });

  test('the pretty form is one line of time, level, module, message and fields, then the error stack', () => {
    const time = new Date(2026, 0, 2, 3, 4, 5, 67).getTime();
    const json = JSON.stringify({ level: 40, time, pid: 1, name: 'bae', module: 'agent', msg: 'late', frames: 3, pinDir: '/x y', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at f', code: 'BAE_BPF' } });
    assert.equal(prettyLine(json), '03:04:05.067 WARN  agent: late frames=3 pinDir="/x y" code=BAE_BPF\n    Error: boom\n        at f\n');
    assert.equal(prettyLine('not json\n'), 'not json\n');
  });

  test('stderr that is not a terminal gets JSON; BAE_LOG_FORMAT=pretty asks for the short line', () => {
    const env = childEnv();
    const plain = spawnSync(process.execPath, ['-e', CHILD], { encoding: 'utf8', env, timeout: 20_000 });
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(plain.stdout, '', `logs never go to stdout; stderr: ${plain.stderr}`);
    const [line] = lines([plain.stderr]);
    assert.equal(line!.module, 'agent');
    assert.equal(line!.msg, 'the line was late');
    assert.equal((line!.err as { code: string }).code, 'BAE_BPF');
    const pretty = spawnSync(process.execPath, ['-e', CHILD], { encoding: 'utf8', env: { ...env, BAE_LOG_FORMAT: 'pretty' }, timeout: 20_000 });
    assert.equal(pretty.status, 0, pretty.stderr);
    assert.match(pretty.stderr, /^\d\d:\d\d:\d\d\.\d{3} WARN {2}agent: the line was late pinDir=\/sys\/fs\/bpf\/bae code=BAE_BPF\n {4}Error: boom\n/);
  });

  test('stderr that is a terminal gets the short line', (t) => {
    // util-linux `script` runs the child on a pseudo-terminal.
    if (spawnSync('script', ['--version']).status !== 0) {
      if (process.env.CI === 'true') assert.fail('script (util-linux) is missing');
      t.skip('no script(1) here');
      return;
    }
    const res = spawnSync('script', ['-qec', `${JSON.stringify(process.execPath)} -e ${JSON.stringify(CHILD).replace(/\$/g, '\\$')}`, '/dev/null'], {
      encoding: 'utf8',
      env: childEnv(),
      timeout: 20_000,
    });
    assert.equal(res.status, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /\d\d:\d\d:\d\d\.\d{3} WARN {2}agent: the line was late pinDir=\/sys\/fs\/bpf\/bae code=BAE_BPF\r?\n/);
    assert.doesNotMatch(res.stdout, /"msg"/);
  });
});
