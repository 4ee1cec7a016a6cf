// test-unit: needs no root and no kernel (make test-unit).
// --help, README and docs say what the code does: every command teaches with examples run as
// `bae`, `bae policy --help` names every action of the action table, docs/agent.md every option
// of `bae agent`, and the README and docs/development.md every error code and exit code.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main';
import { ERROR_CODES, EXIT } from '../../src/errors';
import { ACTIONS } from '../../src/policy';
import { bae } from '../lib/bae-cli';
import { repoRoot } from '../lib/fixtures';

const read = (file: string) => fs.readFileSync(path.join(repoRoot, file), 'utf8');

function command(program: Command, ...names: string[]): Command {
  let c = program;
  for (const n of names) c = c.commands.find((x) => x.name() === n)!;
  assert.ok(c, names.join(' '));
  return c;
}

describe('help and docs', () => {
  test('every command and subcommand with an action has examples of `bae` itself, never `node bin/bae`', () => {
    const program = buildProgram();
    const topics = [...program.commands.map((c) => [c.name()]), ['lab', 'exec']];
    for (const names of topics) {
      const res = bae([...names, '--help']);
      assert.equal(res.status, 0, res.stderr);
      assert.match(res.stdout, /\nExamples:\n\s+(sudo )?bae /, `bae ${names.join(' ')} --help has examples`);
      assert.doesNotMatch(res.stdout, /node bin\/bae/, `bae ${names.join(' ')} --help`);
    }
  });

  test('`bae policy --help` names every action of the action table', () => {
    const res = bae(['policy', '--help']);
    assert.equal(res.status, 0, res.stderr);
    const listed = [...res.stdout.matchAll(/^ {2}([a-z-]+) {2,}\S/gm)].map((m) => m[1]);
    for (const a of ACTIONS) assert.ok(listed.includes(a.kind), `action ${a.kind} in bae policy --help`);
  });

  test('--pin-dir is one global option: in the help of the commands that use it, with BAE_PIN_DIR', () => {
    const res = bae(['status', '--help']);
    assert.match(res.stdout, /Global Options:\n(.*\n)*\s+--pin-dir <dir>\s+.*\n(.*\n)*.*env: BAE_PIN_DIR/);
    const program = buildProgram();
    const declared = (c: Command): string[] => [
      ...c.options.filter((o) => o.long === '--pin-dir').map(() => c.name()),
      ...c.commands.flatMap(declared),
    ];
    assert.deepEqual(declared(program), ['bae'], 'declared on the root program only');
  });

  test('docs/agent.md has every option of `bae agent` in its synopsis and its table', () => {
    const doc = read('docs/agent.md');
    const synopsis = doc.slice(0, doc.indexOf('## '));
    const table = doc.slice(doc.indexOf('## Options'), doc.indexOf('## ', doc.indexOf('## Options') + 3));
    for (const o of command(buildProgram(), 'agent').options) {
      assert.ok(synopsis.includes(o.long!), `${o.long} in the synopsis of docs/agent.md`);
      assert.ok(table.includes(`\`${o.long}`), `${o.long} in the options table of docs/agent.md`);
    }
  });

  test('README.md and docs/development.md name every error code and every exit code', () => {
    const readme = read('README.md');
    const dev = read('docs/development.md');
    for (const code of Object.keys(ERROR_CODES)) assert.ok(dev.includes(`\`${code}\``), `${code} in docs/development.md`);
    for (const exit of Object.values(EXIT)) {
      assert.match(readme, new RegExp(`exit code[^.]*\\b${exit}\\b|\\b${exit}\\b[^.]*exit`, 'i'), `exit code ${exit} in README.md`);
    }
  });
});
