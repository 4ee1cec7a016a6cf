// The policy CLI without a lab: bae.o loaded by the test with the test clock and its maps pinned
// (nothing attached), a run directory of its own (BAE_RUN_DIR: the applied set), and `node
// bin/bae` run as another process against both. close() unpins and removes everything.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadCollection, type Collection } from '../../src/datapath';
import { CONSTANTS, Clock } from '../../src/datapath/layout';
import { BAE_OBJECT, pinToOneCpu } from '../bpf/harness';
import { BAE_BIN, type CliResult } from '../lib/bae-cli';
import { testPinDir } from '../lib/fixtures';

export interface PinnedBae {
  pinDir: string;
  runDir: string;
  collection: Collection;
  /** `bae ...args` with this run directory (the pin directory is the caller's to pass). */
  cli(...args: string[]): CliResult;
  /** Writes a file (a policy) under runDir and returns its path. */
  write(name: string, text: string): string;
  /** Unpins the maps, closes bae.o, removes the pin and run directories; safe twice. */
  close(): void;
}

export function pinnedBae(tag: string): PinnedBae {
  pinToOneCpu();
  const pinDir = testPinDir(tag);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-test-run-'));
  let collection: Collection;
  try {
    collection = loadCollection(BAE_OBJECT, { pinPath: pinDir, constants: { [CONSTANTS.clock]: Clock.test } });
  } catch (err) {
    fs.rmSync(pinDir, { recursive: true, force: true });
    fs.rmSync(runDir, { recursive: true, force: true });
    throw err;
  }
  let closed = false;
  return {
    pinDir,
    runDir,
    collection,
    cli: (...args) => {
      const res = spawnSync(process.execPath, [BAE_BIN, ...args], { encoding: 'utf8', env: { ...process.env, BAE_RUN_DIR: runDir }, timeout: 30_000 });
      if (res.error) throw res.error;
      return { status: res.status, stdout: res.stdout, stderr: res.stderr };
    },
    write: (name, text) => {
      const file = path.join(runDir, name);
      fs.writeFileSync(file, text);
      return file;
    },
    close: () => {
      if (closed) return;
      closed = true;
      try {
        collection.unpinMaps();
        collection.close();
      } finally {
        fs.rmSync(pinDir, { recursive: true, force: true });
        fs.rmSync(runDir, { recursive: true, force: true });
      }
    },
  };
}
