// The lab of a test file: client <-> bae <-> server namespaces (labUp with a prefix of this
// process), a pin directory and a run directory of its own (BAE_RUN_DIR: the applied policy set,
// the agent's socket), `bae` run as another process in the bae namespace (entered with nsenter,
// which keeps the host's /sys/fs/bpf), and one teardown that unloads and removes all of it, also
// when a test failed. Tests that run bae through `bae lab exec` on purpose use `lab` directly.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { labDown, labUp, type Lab } from '../../src/lab';
import { bae, type CliResult } from './bae-cli';
import { testPinDir } from './fixtures';

export interface BaeLab {
  lab: Lab;
  pinDir: string;
  runDir: string;
  /** The environment of every `bae` the fixture runs: BAE_RUN_DIR, BAE_DB and the options' env. */
  env: Record<string, string>;
  /** `bae ...args --pin-dir pinDir` in the bae namespace, as another process. */
  cli(args: readonly string[]): CliResult;
  /** Writes a file (a policy) under runDir and returns its path. */
  write(name: string, text: string): string;
  /** Unloads bae, removes the pins, the run directory and the lab; safe twice. */
  teardown(): void;
}

export interface BaeLabOptions {
  /** More environment for every `bae` the fixture runs (BAE_LOG_LEVEL, ...). */
  env?: Record<string, string>;
}

/** Builds the lab `bt<pid><tag>-` with pins under /sys/fs/bpf/bae-test-<pid>-<tag>. */
export function createBaeLab(tag: string, options: BaeLabOptions = {}): BaeLab {
  if (!/^[a-z0-9]{1,4}$/.test(tag)) throw new Error(`lab tag must be 1-4 lowercase letters or digits, got '${tag}'`);
  const prefix = `bt${process.pid}${tag}-`;
  const pinDir = testPinDir(tag);
  const { lab } = labUp(prefix);
  let runDir: string;
  try {
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-test-run-'));
  } catch (err) {
    labDown(prefix);
    throw err;
  }
  // The agent's store (--db) in the run directory too: never the machine's /var/lib/bae.
  const env = { BAE_RUN_DIR: runDir, BAE_DB: path.join(runDir, 'bae.db'), ...options.env };
  const cli = (args: readonly string[]) => bae([...args, '--pin-dir', pinDir], { lab, node: 'bae', spawn: { env } });
  let torn = false;
  return {
    lab,
    pinDir,
    runDir,
    env,
    cli,
    write: (name, text) => {
      const file = path.join(runDir, name);
      fs.writeFileSync(file, text);
      return file;
    },
    teardown: () => {
      if (torn) return;
      torn = true;
      try {
        cli(['unload']);
      } finally {
        fs.rmSync(pinDir, { recursive: true, force: true });
        fs.rmSync(runDir, { recursive: true, force: true });
        labDown(prefix);
      }
    },
  };
}
