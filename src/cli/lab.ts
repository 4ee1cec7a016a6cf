// `bae lab up|down|status|exec`: the three-namespace lab (client <-> bae <-> server).
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { Command, Option } from 'commander';
import { UsageError } from '../errors';
import { toJson } from '../json';
import {
  DEFAULT_LAB_PREFIX,
  LAB_NODES,
  Lab,
  LabStatus,
  checkLabPrefix,
  isLabNode,
  labDown,
  labExecArgv,
  labStatus,
  labTopology,
  labUp,
} from '../lab';

function prefixOption(): Option {
  return new Option('--prefix <prefix>', 'name prefix of the lab namespaces (several labs can coexist)')
    .default(DEFAULT_LAB_PREFIX)
    .env('BAE_LAB_PREFIX')
    .argParser(checkPrefixArg);
}

function checkPrefixArg(value: string): string {
  return checkLabPrefix(value);
}

function describeLab(lab: Lab): string {
  return [
    `  ${lab.ns.client}: ${lab.client.iface} ${lab.client.ipv4}/${lab.ipv4PrefixLen} ` +
      `${lab.client.ipv4Second}/${lab.ipv4PrefixLen} ${lab.client.ipv6}/${lab.ipv6PrefixLen}`,
    `  ${lab.ns.bae}: ${lab.bae.clientPort} (to the client), ${lab.bae.serverPort} (to the server), no addresses`,
    `  ${lab.ns.server}: ${lab.server.iface} ${lab.server.ipv4}/${lab.ipv4PrefixLen} ${lab.server.ipv6}/${lab.ipv6PrefixLen}`,
  ].join('\n');
}

function printStatus(st: LabStatus): void {
  const present = st.nodes.filter((n) => n.exists);
  if (present.length === 0) {
    process.stdout.write(`lab '${st.prefix}' is down (no namespaces)\n`);
    return;
  }
  process.stdout.write(`lab '${st.prefix}' is ${st.up ? 'up' : 'INCOMPLETE (run `bae lab down` then `bae lab up`)'}\n`);
  for (const n of st.nodes) {
    if (!n.exists) {
      process.stdout.write(`  ${n.ns}: missing\n`);
      continue;
    }
    process.stdout.write(`  ${n.ns}:\n`);
    for (const i of n.interfaces) {
      const xdp = i.xdp ? `  xdp ${i.xdp.mode} prog ${i.xdp.progId}` : '';
      const addrs = i.addresses.length ? `  ${i.addresses.join(' ')}` : '';
      process.stdout.write(`    ${i.name.padEnd(10)} ${i.up ? 'up  ' : 'down'} mtu ${i.mtu}${addrs}${xdp}\n`);
    }
  }
}

export function register(program: Command): void {
  const lab = program
    .command('lab')
    .description('a three-namespace test lab: client <-veth-> bae <-veth-> server')
    // Lets `lab exec` hand everything after NODE to the command untouched.
    .enablePositionalOptions()
    .addHelpText(
      'after',
      `
The client and server share one IPv4 /24 and one IPv6 /64; bae's two ports have no addresses, so
nothing passes until bae runs inline between them. The client has a second IPv4 address.

Examples:
  sudo bae lab up
  sudo bae lab exec bae -- bae load --iface to-client --peer to-server
  sudo bae lab exec client -- ping -c 3 10.199.0.2
  sudo bae lab status --json
  sudo bae lab down`,
    );

  lab
    .command('up')
    .description('create the lab (fine to run twice)')
    .addOption(prefixOption())
    .option('--json', 'print the topology as JSON')
    .action((opts: { prefix: string; json?: boolean }) => {
      const { lab: made, alreadyUp } = labUp(opts.prefix);
      if (opts.json) {
        process.stdout.write(toJson({ ...made, alreadyUp }, 2) + '\n');
        return;
      }
      process.stdout.write(
        `${alreadyUp ? `lab '${made.prefix}' is already up` : `lab '${made.prefix}' is up`}\n${describeLab(made)}\n`,
      );
    });

  lab
    .command('down')
    .description('remove the lab (also a partial one)')
    .addOption(prefixOption())
    .action((opts: { prefix: string }) => {
      const { removed } = labDown(opts.prefix);
      process.stdout.write(
        removed.length ? `removed ${removed.join(', ')}\n` : `lab '${opts.prefix}' was not there; nothing to remove\n`,
      );
    });

  lab
    .command('status')
    .description('show what of the lab exists: namespaces, interfaces, addresses, XDP programs')
    .addOption(prefixOption())
    .option('--json', 'print as JSON')
    .action((opts: { prefix: string; json?: boolean }) => {
      const st = labStatus(opts.prefix);
      if (opts.json) process.stdout.write(toJson(st, 2) + '\n');
      else printStatus(st);
    });

  lab
    .command('exec')
    .description(`run a command in a lab namespace (${LAB_NODES.join('|')}); its exit code is passed through`)
    .argument('<node>', `one of ${LAB_NODES.join(', ')}`)
    .argument('<command...>', 'the command and its arguments (after --)')
    .addOption(prefixOption())
    .passThroughOptions()
    .addHelpText(
      'after',
      `
Options go before NODE: everything after NODE belongs to the command. Put -- before a command
that has options of its own, so that bae's global options (--pin-dir, --version) stay the
command's. The command keeps the host's mount namespace, so /sys/fs/bpf and its pins look the
same from every node and from the host.

Examples:
  sudo bae lab exec client -- ping -c 3 fd00:bae::2
  sudo bae lab exec --prefix test- server -- iperf3 -s -1
  sudo bae lab exec bae -- bae status`,
    )
    .action(async (node: string, command: string[], opts: { prefix: string }) => {
      if (!isLabNode(node)) throw new UsageError(`unknown lab node '${node}': use one of ${LAB_NODES.join(', ')}`);
      // With options before NODE, commander hands the `--` separator through as an argument.
      const cmd = command[0] === '--' ? command.slice(1) : command;
      if (cmd.length === 0) throw new UsageError('lab exec needs a command after NODE, e.g. `bae lab exec client -- ping 10.199.0.2`');
      const argv = labExecArgv(labTopology(opts.prefix), node, cmd);
      process.exitCode = await runInherited(argv);
    });
}

/** Runs argv with our stdio and resolves to its exit code (128 + signal number when killed). */
function runInherited(argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: 'inherit' });
    // Ctrl-C reaches the child through the terminal; forward a TERM sent to us alone.
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    const ignoreInt = () => undefined;
    process.on('SIGTERM', forward);
    process.on('SIGINT', ignoreInt);
    const done = () => {
      process.off('SIGTERM', forward);
      process.off('SIGINT', ignoreInt);
    };
    child.on('error', (err) => {
      done();
      reject(err);
    });
    child.on('exit', (code, signal) => {
      done();
      if (code !== null) resolve(code);
      else resolve(128 + (signal ? osConstants.signals[signal] : 0));
    });
  });
}
