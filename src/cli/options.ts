// The options and argument parsers that more than one command uses, declared once.
//
// `--pin-dir` is a global option: buildProgram() (main.ts) adds it to the root program, commander
// recognises it before or after the subcommand (`bae --pin-dir X status` and `bae status
// --pin-dir X` alike), BAE_PIN_DIR is its default, and a command reads it with pinDirOf(). Help
// shows it under "Global Options". As for --version, a command run by `bae lab exec` that has
// options of its own goes after `--`, so that bae does not take them.
import { Command, InvalidArgumentError, Option } from 'commander';
import { SUBJECTS, checkNatsUrl, checkSubject } from '../bus';
import { DEFAULT_PIN_DIR, checkPinDir } from '../datapath';
import { parseDuration } from '../policy';
import { DEFAULT_DB } from '../store';

/** `--pin-dir`: where bae's pins are, for every command that finds bae through them. */
export function pinDirOption(): Option {
  return new Option('--pin-dir <dir>', 'bpffs directory of bae\'s pins, one per bae instance (every command but lab and doctor uses it)')
    .default(DEFAULT_PIN_DIR)
    .env('BAE_PIN_DIR')
    .argParser((v: string) => checkPinDir(v));
}

/** The --pin-dir in force for `command`: the option, else BAE_PIN_DIR, else DEFAULT_PIN_DIR. */
export function pinDirOf(command: Command): string {
  return (command.optsWithGlobals() as { pinDir: string }).pinDir;
}

/** A commander argument parser for whole numbers in [min, max]. */
export function wholeNumber(min: number, max: number): (value: string) => number {
  return (value: string) => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

/** A commander argument parser for numbers (fractions too) in [min, max]. */
export function numberIn(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number from ${min} to ${max}`);
    return n;
  };
}

/** `--nats <url>`: the NATS server(s) of the fleet (checked here; the connection is the bus's). */
export function natsOption(what: string): Option {
  return new Option('--nats <url>', `NATS server URL(s), comma-separated (nats://HOST:PORT); ${what}`).argParser((v: string) => {
    try {
      return checkNatsUrl(v);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  });
}

/** `--block-subject <subject>`: where block commands travel (a SecBeat orchestrator's, for one). */
export function blockSubjectOption(): Option {
  return new Option('--block-subject <subject>', 'subject of block commands (SecBeat\'s orchestrator publishes on secbeat.commands.block)')
    .default(SUBJECTS.block)
    .argParser((v: string) => {
      try {
        return checkSubject(v);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
    });
}

/** `--db <file>`: the store's SQLite file (BAE_DB; default /var/lib/bae/bae.db). */
export function dbOption(what = 'the store\'s SQLite file'): Option {
  return new Option('--db <file>', what)
    .default(DEFAULT_DB)
    .env('BAE_DB')
    .argParser((v: string) => {
      if (v.trim() === '') throw new InvalidArgumentError('expected a file name');
      return v;
    });
}

/**
 * `--since <time>`: an ISO 8601 time (2026-12-07T10:00:00Z) or a duration ago (30s, 10m, 2h),
 * as ns since the Unix epoch.
 */
export function parseSince(value: string, nowMs: number = Date.now()): bigint {
  const ns = parseDuration(value);
  if (typeof ns === 'bigint') return BigInt(nowMs) * 1_000_000n - ns;
  const ms = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) throw new InvalidArgumentError('expected a time (2026-12-07T10:00:00Z) or a duration ago (30s, 10m, 2h)');
  return BigInt(ms) * 1_000_000n;
}
