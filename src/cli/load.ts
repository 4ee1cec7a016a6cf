// `bae load`: attach bae to one interface (ingress mode) or between two (inline mode) and pin
// everything, so that later commands in other processes find what this one started.
import { Command, Option } from 'commander';
import { DEFAULT_HTTP_PORTS, MAX_CONVERSATIONS_LIMIT, type LoadedState, checkIfaceName, load } from '../datapath';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { pinDirOf, wholeNumber } from './options';

function ifaceArg(value: string): string {
  return checkIfaceName(value);
}

/** --http-ports: a comma-separated list of TCP ports, or 'none'. */
export function httpPortsArg(value: string): number[] {
  if (value === 'none') return [];
  const ports = value.split(',').map((p) => p.trim());
  for (const p of ports) {
    if (!/^[0-9]+$/.test(p) || Number(p) < 1 || Number(p) > 65535) {
      throw new UsageError(`bad --http-ports '${value}': '${p}' is not a TCP port (1-65535); give a list like 80,8080 or 'none'`);
    }
  }
  return [...new Set(ports.map(Number))];
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
  httpPorts?: number[];
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
    .option(
      '--http-ports <list>',
      `TCP ports whose payloads are read for HTTP/1.x request and status lines (http.* metrics), or 'none' (default ${DEFAULT_HTTP_PORTS.join(',')})`,
      httpPortsArg,
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
  sudo bae load --iface eth1 --http-ports 80,8080,8000
  sudo bae lab exec bae -- bae load --iface to-client --peer to-server`,
    )
    .action((opts: LoadOpts, command: Command) => {
      const st = load({
        iface: opts.iface,
        peer: opts.peer,
        xdpMode: opts.mode,
        maxConversations: opts.maxConversations,
        httpPorts: opts.httpPorts,
        pinDir: pinDirOf(command),
      });
      process.stdout.write(opts.json ? toJson(st, 2) + '\n' : describeLoaded(st) + '\n');
    });
}
