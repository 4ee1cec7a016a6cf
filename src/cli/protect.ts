// `bae protect`: prefixes that no policy may block (the kernel's policy_protected). A block of an
// address inside one is refused in the kernel, counted and sent as a `refused` event.
import { Command } from 'commander';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { formatPrefix, listProtectedPrefixes, openPolicyMaps, parsePrefix, protectPrefix, unprotectPrefix, withApplyLock, type Prefix } from '../policy';
import { pinDirOf } from './options';

function prefixArg(value: string): Prefix {
  const p = parsePrefix(value);
  if (typeof p === 'string') throw new UsageError(`bad prefix: ${p}`);
  return p;
}

/** Runs `fn` on the loaded bae's policy maps under the apply lock (writers never interleave). */
async function withMaps<T>(command: Command, fn: (maps: ReturnType<typeof openPolicyMaps>['maps']) => T): Promise<T> {
  const pinDir = pinDirOf(command);
  const loaded = openPolicyMaps(pinDir);
  try {
    return await withApplyLock(pinDir, async () => fn(loaded.maps));
  } finally {
    loaded.close();
  }
}

export function register(program: Command): void {
  const protect = program
    .command('protect')
    .description('prefixes no policy may block: add, remove, list')
    .addHelpText(
      'after',
      `
An address inside a protected prefix is never put on the blocklist by a policy: the policy still
fires and its verdict still applies to the packet, but the block is refused in the kernel, counted
(\`bae status\`) and sent as a \`refused\` event (\`bae events\`). Protect your gateways, resolvers
and monitoring hosts before you apply blocking policies. The list lives in the kernel beside the
blocklist and stays while bae is loaded.

Examples:
  sudo bae protect add 192.168.1.0/24 2001:db8:1::/48
  sudo bae protect list
  sudo bae protect remove 192.168.1.0/24`,
    );

  protect
    .command('add')
    .description('protect prefixes (an address is a /32 or /128)')
    .argument('<prefix...>', 'IPv4 or IPv6 prefixes or addresses')
    .option('--json', 'print the protected prefixes afterwards as JSON')
    .action(async (texts: string[], opts: { json?: boolean }, command: Command) => {
      const prefixes = texts.map(prefixArg); // every argument is checked before anything changes
      const list = await withMaps(command, (maps) => {
        for (const p of prefixes) protectPrefix(maps, p);
        return listProtectedPrefixes(maps);
      });
      process.stdout.write(opts.json ? toJson({ protected: list }, 2) + '\n' : `protected: ${list.join(', ')}\n`);
    });

  protect
    .command('remove')
    .description('remove protections (exactly the prefixes given)')
    .argument('<prefix...>', 'protected prefixes')
    .option('--json', 'print the protected prefixes afterwards as JSON')
    .action(async (texts: string[], opts: { json?: boolean }, command: Command) => {
      const prefixes = texts.map(prefixArg);
      const { missing, list } = await withMaps(command, (maps) => {
        const current = new Set(listProtectedPrefixes(maps));
        const absent = texts.filter((_t, i) => !current.has(formatPrefix(prefixes[i]!)));
        if (absent.length) return { missing: absent, list: [...current] };
        for (const p of prefixes) unprotectPrefix(maps, p);
        return { missing: [] as string[], list: listProtectedPrefixes(maps) };
      });
      if (missing.length) throw new UsageError(`not protected: ${missing.join(', ')} (see \`bae protect list\`); nothing was removed`);
      process.stdout.write(opts.json ? toJson({ protected: list }, 2) + '\n' : list.length ? `protected: ${list.join(', ')}\n` : 'no protected prefixes\n');
    });

  protect
    .command('list')
    .description('list the protected prefixes')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const list = await withMaps(command, (maps) => listProtectedPrefixes(maps));
      if (opts.json) process.stdout.write(toJson({ protected: list }, 2) + '\n');
      else process.stdout.write(list.length ? list.join('\n') + '\n' : 'no protected prefixes\n');
    });
}
