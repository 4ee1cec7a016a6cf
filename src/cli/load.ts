// `bae load`: attach bae to one interface (ingress mode) or between two (inline mode) and pin
// everything, so that later commands in other processes find what this one started.
import { Command, Option } from 'commander';
import { MAX_CONVERSATIONS_LIMIT, type LoadedState, checkIfaceName, load } from '../datapath';
import { toJson } from '../json';
import { pinDirOf, wholeNumber } from './options';

function ifaceArg(value: string): string {
  return checkIfaceName(value);
}

export function describeLoaded(st: LoadedState): string {
  const where = st.ports.map((p) => `${p.iface} (ifindex ${p.ifindex}, prog ${p.progId})`).join(' <-> ');
  return `bae is loaded ${st.mode === 'inline' ? 'inline between' : 'in ingress mode on'} ${where}, ${st.xdpMode} XDP; pins in ${st.pinDir}`;
}

interface LoadOpts {
  iface: string;
  peer?: string;
  mode: 'native' | 'generic';
  maxConversations?: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('load')
    .description('attach bae to an interface (ingress mode) or between two (inline mode)')
    .requiredOption('--iface <name>', 'interface to watch; in inline mode the first port', ifaceArg)
    .option('--peer <name>', 'second port: run inline, forwarding every frame between --iface and --peer', ifaceArg)
    .addOption(
      new Option('--mode <mode>', 'XDP attach mode: native (driver) or generic (skb, slower, works everywhere)')
        .choices(['native', 'generic'])
        .default('native'),
    )
    .option(
      '--max-conversations <n>',
      `capacity of the conversation profile map (least recently seen are evicted), 1-${MAX_CONVERSATIONS_LIMIT}`,
      wholeNumber(1, MAX_CONVERSATIONS_LIMIT),
    )
    .option('--json', 'print what was loaded as JSON')
    .addHelpText(
      'after',
      `
In ingress mode every frame continues to the stack (XDP_PASS) after bae has profiled it. Inline,
bae is a bump in the wire: each frame that arrives on one port leaves on the other. Maps and
links are pinned under --pin-dir; \`bae status\`, \`bae profiles\` and \`bae unload\` find them there.

Examples:
  sudo bae load --iface eth1
  sudo bae load --iface eth1 --peer eth2 --max-conversations 100000
  sudo bae load --iface eth1 --mode generic
  sudo bae lab exec bae -- bae load --iface to-client --peer to-server`,
    )
    .action((opts: LoadOpts, command: Command) => {
      const st = load({
        iface: opts.iface,
        peer: opts.peer,
        xdpMode: opts.mode,
        maxConversations: opts.maxConversations,
        pinDir: pinDirOf(command),
      });
      process.stdout.write(opts.json ? toJson(st, 2) + '\n' : describeLoaded(st) + '\n');
    });
}
