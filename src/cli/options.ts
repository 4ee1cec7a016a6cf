// The options and argument parsers that more than one command uses, declared once.
//
// `--pin-dir` is a global option: buildProgram() (main.ts) adds it to the root program, commander
// recognises it before or after the subcommand (`bae --pin-dir X status` and `bae status
// --pin-dir X` alike), BAE_PIN_DIR is its default, and a command reads it with pinDirOf(). Help
// shows it under "Global Options". As for --version, a command run by `bae lab exec` that has
// options of its own goes after `--`, so that bae does not take them.
import { Command, InvalidArgumentError, Option } from 'commander';
import { SUBJECTS, checkNatsUrl, checkSubject, type NatsAuth } from '../bus';
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

/** The --nats-* options of credentials and TLS, as NatsAuth takes them. */
export interface NatsAuthOpts {
  natsUser?: string;
  natsPass?: string;
  natsToken?: string;
  natsNkey?: string;
  natsCreds?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
}

/**
 * Credentials and TLS for every command that takes --nats (docs/bus.md "Credentials and TLS"),
 * each with an environment variable, so that a secret need not be on the command line. Add them
 * after natsOption(): `for (const o of natsAuthOptions()) cmd.addOption(o)`.
 */
export function natsAuthOptions(): Option[] {
  return [
    new Option('--nats-user <user>', 'NATS user name (with --nats-pass)').env('BAE_NATS_USER'),
    new Option('--nats-pass <password>', 'NATS password (better: BAE_NATS_PASS)').env('BAE_NATS_PASS'),
    new Option('--nats-token <token>', 'NATS token (better: BAE_NATS_TOKEN)').env('BAE_NATS_TOKEN'),
    new Option('--nats-nkey <file>', 'file holding the nkey seed (SU...) of this client').env('BAE_NATS_NKEY'),
    new Option('--nats-creds <file>', 'NATS credentials file (user JWT and seed, as nsc writes it)').env('BAE_NATS_CREDS'),
    new Option('--nats-tls-ca <file>', 'PEM CA that signed the server\'s certificate (TLS)').env('BAE_NATS_TLS_CA'),
    new Option('--nats-tls-cert <file>', 'PEM client certificate (mutual TLS; with --nats-tls-key)').env('BAE_NATS_TLS_CERT'),
    new Option('--nats-tls-key <file>', 'PEM key of the client certificate').env('BAE_NATS_TLS_KEY'),
  ];
}

/** The NatsAuth of a command's options (only what was given). */
export function natsAuthOf(o: NatsAuthOpts): NatsAuth {
  const pick: [keyof NatsAuth, string | undefined][] = [
    ['user', o.natsUser],
    ['pass', o.natsPass],
    ['token', o.natsToken],
    ['nkeyFile', o.natsNkey],
    ['credsFile', o.natsCreds],
    ['tlsCa', o.natsTlsCa],
    ['tlsCert', o.natsTlsCert],
    ['tlsKey', o.natsTlsKey],
  ];
  return Object.fromEntries(pick.filter(([, v]) => v !== undefined)) as NatsAuth;
}

/** `--nats` and its credentials and TLS options, on `cmd`. */
export function addNatsOptions(cmd: Command, what: string): Command {
  cmd.addOption(natsOption(what));
  for (const o of natsAuthOptions()) cmd.addOption(o);
  return cmd;
}
