// `bae block ADDR --ttl DUR`, `bae unblock ADDR`, `bae blocks`: the kernel blocklist of the local
// bae (its expiry is in the kernel entry: a block lasts its TTL with or without a bae process), or
// with --nats, a BlockCommand (SecBeat's) published to every agent of the fleet.
import { Command, InvalidArgumentError, Option } from 'commander';
import os from 'node:os';
import { NatsBus, newBlockCommand, openBus, parseBlockCommand, type BlockCommand, type NatsAuth } from '../bus';
import { UsageError } from '../errors';
import { toJson } from '../json';
import {
  Blocklist,
  ESCALATE_DEFAULT_FORGET_NS,
  ESCALATE_DEFAULT_MAX_NS,
  ESCALATE_FACTOR_MAX,
  ESCALATE_FACTOR_MIN,
  MAX_BLOCK_TTL_NS,
  formatDuration,
  parseBlockTarget,
  parseDuration,
  type BlockEntry,
  type BlockTarget,
  type Escalation,
} from '../policy';
import { blockSubjectOption, natsAuthOf, natsAuthOptions, natsOption, pinDirOf, type NatsAuthOpts } from './options';

/** `--ttl`: a duration with a unit, 1 ms to 10 years. */
function ttlArg(value: string): bigint {
  const ns = parseDuration(value);
  if (typeof ns === 'string') throw new InvalidArgumentError(ns);
  if (ns < 1_000_000n || ns > MAX_BLOCK_TTL_NS) throw new InvalidArgumentError(`'${value}' is outside 1ms..3650d`);
  return ns;
}

/** `--escalate`: the factor, a whole number 2..16. */
function factorArg(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value.trim()) || n < ESCALATE_FACTOR_MIN || n > ESCALATE_FACTOR_MAX) {
    throw new InvalidArgumentError(`'${value}' is not a whole number from ${ESCALATE_FACTOR_MIN} to ${ESCALATE_FACTOR_MAX}`);
  }
  return n;
}

/** The escalation of `bae block`'s options; a UsageError when --max-ttl or --forget come without --escalate. */
function escalationOf(opts: { ttl: bigint; escalate?: number; maxTtl?: bigint; forget?: bigint }): Escalation | undefined {
  if (opts.escalate === undefined) {
    if (opts.maxTtl !== undefined || opts.forget !== undefined) throw new UsageError('--max-ttl and --forget need --escalate FACTOR');
    return undefined;
  }
  const e = { factor: opts.escalate, maxNs: opts.maxTtl ?? ESCALATE_DEFAULT_MAX_NS, forgetNs: opts.forget ?? ESCALATE_DEFAULT_FORGET_NS };
  if (e.maxNs < opts.ttl) throw new UsageError(`--max-ttl ${formatDuration(e.maxNs)}${opts.maxTtl === undefined ? ' (the default)' : ''} is shorter than --ttl ${formatDuration(opts.ttl)}`);
  return e;
}

function targetOf(text: string): BlockTarget {
  const t = parseBlockTarget(text);
  if (typeof t === 'string') throw new UsageError(t);
  return t;
}

/** A block as `bae blocks --json` prints it: address, expiry (monotonic ns and wall time), time left. */
export interface BlockView {
  address: string;
  version: 4 | 6;
  expiryNs: bigint;
  expires: string;
  remainingMs: number;
  /** Escalating blocks of the address in its history, this one included (0: none). */
  offences: number;
}

export function viewBlock(e: BlockEntry, wallNowMs = Date.now()): BlockView {
  const remainingMs = Number(e.remainingNs / 1000n) / 1000;
  return { address: e.address, version: e.version, expiryNs: e.expiryNs, expires: new Date(wallNowMs + remainingMs).toISOString(), remainingMs, offences: e.offences };
}

/** Publishes one command on the fleet's bus, checked as the agents will check it. */
async function publishCommand(url: string, auth: NatsAuth, subject: string, cmd: BlockCommand): Promise<void> {
  const checked = parseBlockCommand(cmd);
  if ('errors' in checked) throw new UsageError(checked.errors.join('; '));
  const bus = await openBus({ url, auth, name: 'bae-cli' });
  try {
    // Kept by the command stream where there is one, for agents that are away (docs/bus.md).
    if (bus instanceof NatsBus) await bus.publishCommand(subject, cmd, cmd.command_id);
    else bus.publish(subject, cmd);
    await bus.flush();
  } finally {
    await bus.drain();
  }
}

const source = () => `bae-cli@${os.hostname()}`;

export function register(program: Command): void {
  const blockCommand = program
    .command('block')
    .description('drop every packet from an address for a time (the local bae, or with --nats every agent of the fleet)')
    .argument('<addr>', 'an IPv4 or IPv6 address or prefix (ADDR/LEN)')
    .addOption(new Option('--ttl <duration>', 'how long: 30s, 5m, 1h, 2d (1ms to 3650d)').argParser(ttlArg).makeOptionMandatory())
    .option('--reason <text>', 'why (kept in the command and the log)')
    .addOption(new Option('--escalate <factor>', 'repeat offenders: ttl x factor^n, n = earlier escalating blocks of the address (2..16)').argParser(factorArg))
    .addOption(new Option('--max-ttl <duration>', 'with --escalate: the longest block (default 24h)').argParser(ttlArg))
    .addOption(new Option('--forget <duration>', 'with --escalate: forget the history this long after its latest block ended (default 1d)').argParser(ttlArg))
    .addOption(natsOption('publish the block to every agent instead of writing the local blocklist'))
    .addOption(blockSubjectOption())
    .option('--json', 'print the block (or the command published) as JSON')
    .addHelpText(
      'after',
      `
The block is an entry of the kernel's blocklist with its expiry (CLOCK_MONOTONIC): the XDP
program drops the address's packets until then, whether or not any bae process runs, and the
entry ends on its own. Blocking an address again sets a new expiry. A prefix (10.0.0.0/24,
2001:db8::/48) blocks every address in it, with its own expiry (a kernel prefix table). Nothing
that a protected prefix covers is blocked (\`bae protect\`): the refusal names it, exit 2.

With --nats the block goes to the fleet as a BlockCommand (SecBeat's fields: command_id, ip,
reason, duration_seconds, action, issued_at, source) on --block-subject; every \`bae agent
--nats\` applies it once (by command_id). A TTL in whole seconds there.

--escalate FACTOR lengthens the block of a repeat offender, as fail2ban's bantime.increment:
ttl x FACTOR^n up to --max-ttl, where n counts the address's earlier escalating blocks (this
command's, a policy's \`block: { escalate }\`, a block command's: one history in the kernel),
forgotten --forget after the latest of them ended. Without it a block lasts its ttl and leaves
the history alone. Prefixes do not escalate. With --nats the command carries \`escalate:
{ factor, max_seconds, forget_seconds }\` (docs/bus.md).

Examples:
  sudo bae block 203.0.113.7 --ttl 5m --reason "scanner"
  sudo bae block 2001:db8::7 --ttl 1h
  sudo bae block 198.51.100.0/24 --ttl 10m
  sudo bae block 203.0.113.7 --ttl 5m --escalate 2 --max-ttl 1d --forget 7d
  bae block 203.0.113.7 --ttl 300s --nats nats://10.0.0.1:4222
  sudo bae lab exec bae -- bae block 10.0.0.1 --ttl 30s`,
    )
    .action(async (addr: string, opts: { ttl: bigint; reason?: string; escalate?: number; maxTtl?: bigint; forget?: bigint; nats?: string; blockSubject: string; json?: boolean } & NatsAuthOpts, command: Command) => {
      const target = targetOf(addr);
      const escalate = escalationOf(opts);
      if (opts.nats !== undefined) {
        for (const [name, ns] of [['--ttl', opts.ttl], ['--max-ttl', escalate?.maxNs ?? 0n], ['--forget', escalate?.forgetNs ?? 0n]] as const) {
          if (ns % 1_000_000_000n !== 0n) throw new UsageError(`${name} ${formatDuration(ns)}: a BlockCommand carries whole seconds`);
        }
        const cmd = newBlockCommand({ ip: target.address, action: 'block', durationSeconds: Number(opts.ttl / 1_000_000_000n), ...(opts.reason !== undefined ? { reason: opts.reason } : {}), source: source(), ...(escalate ? { escalate } : {}) });
        await publishCommand(opts.nats, natsAuthOf(opts), opts.blockSubject, cmd);
        process.stdout.write(opts.json ? toJson(cmd) + '\n' : `block of ${target.address} for ${formatDuration(opts.ttl)} published on ${opts.blockSubject} (command ${cmd.command_id})\n`);
        return;
      }
      const list = Blocklist.open(pinDirOf(command), 'bae block');
      try {
        const e = list.block(target, opts.ttl, escalate);
        const v = viewBlock(e);
        const times = escalate ? ` (offence ${v.offences})` : '';
        process.stdout.write(opts.json ? toJson(v) + '\n' : `blocked ${v.address} for ${formatDuration(e.remainingNs)}${times} (until ${v.expires})\n`);
      } finally {
        list.close();
      }
    });
  for (const o of natsAuthOptions()) blockCommand.addOption(o);

  const unblockCommand = program
    .command('unblock')
    .description('lift the block of an address (the local bae, or with --nats every agent of the fleet)')
    .argument('<addr>', 'an IPv4 or IPv6 address or prefix, exactly as blocked')
    .addOption(natsOption('publish the unblock to every agent instead of writing the local blocklist'))
    .addOption(blockSubjectOption())
    .option('--json', 'print the result (or the command published) as JSON')
    .addHelpText(
      'after',
      `
Removes the address's blocklist entry, whether a \`bae block\`, a block command or a policy's
block action put it there. An address that was not blocked is not an error (it says so).

Examples:
  sudo bae unblock 203.0.113.7
  bae unblock 203.0.113.7 --nats nats://10.0.0.1:4222`,
    )
    .action(async (addr: string, opts: { nats?: string; blockSubject: string; json?: boolean } & NatsAuthOpts, command: Command) => {
      const target = targetOf(addr);
      if (opts.nats !== undefined) {
        const cmd = newBlockCommand({ ip: target.address, action: 'unblock', source: source() });
        await publishCommand(opts.nats, natsAuthOf(opts), opts.blockSubject, cmd);
        process.stdout.write(opts.json ? toJson(cmd) + '\n' : `unblock of ${target.address} published on ${opts.blockSubject} (command ${cmd.command_id})\n`);
        return;
      }
      const list = Blocklist.open(pinDirOf(command), 'bae unblock');
      try {
        const removed = list.unblock(target);
        process.stdout.write(
          opts.json ? toJson({ address: target.address, removed }) + '\n' : removed ? `unblocked ${target.address}\n` : `${target.address} was not blocked; nothing to do\n`,
        );
      } finally {
        list.close();
      }
    });
  for (const o of natsAuthOptions()) unblockCommand.addOption(o);

  program
    .command('blocks')
    .description('list the addresses and prefixes the local bae blocks, with expiry and time left')
    .option('--json', 'print as JSON (expiryNs: CLOCK_MONOTONIC ns as a decimal string)')
    .addHelpText(
      'after',
      `
Lists the blocklist entries still in force, soonest expiry first: those of \`bae block\`, of
block commands from the bus, and of policies' block actions. \`offences\` is the address's count
of escalating blocks (this one included; 0: it has no history).

Examples:
  sudo bae blocks
  sudo bae blocks --json | jq -r '.[].address'`,
    )
    .action((opts: { json?: boolean }, command: Command) => {
      const list = Blocklist.open(pinDirOf(command), 'bae blocks');
      try {
        const views = list.list().map((e) => viewBlock(e));
        if (opts.json) {
          process.stdout.write(toJson(views, 2) + '\n');
        } else if (views.length === 0) {
          process.stdout.write('no address is blocked\n');
        } else {
          for (const v of views) process.stdout.write(`${v.address.padEnd(39)} ${(v.remainingMs / 1000).toFixed(1).padStart(10)}s left (until ${v.expires})${v.offences ? `, offence ${v.offences}` : ''}\n`);
        }
      } finally {
        list.close();
      }
    });
}
