// The `bae` command: one file per subcommand under src/cli/, registered here. Every error that
// reaches this file becomes one line on stderr and an exit code from exitCodeFor().
import { Command, CommanderError } from 'commander';
import { BaeError, exitCodeFor } from '../errors';
import * as agentCommand from './agent';
import * as doctorCommand from './doctor';
import * as labCommand from './lab';
import * as eventsCommand from './events';
import * as loadCommand from './load';
import * as policyCommand from './policy';
import * as profilesCommand from './profiles';
import * as statusCommand from './status';
import * as unloadCommand from './unload';

type Register = (program: Command) => void;

// Each command module exports `register(program)`. Add new commands to this list.
const commands: Register[] = [
  loadCommand.register,
  unloadCommand.register,
  statusCommand.register,
  profilesCommand.register,
  labCommand.register,
  policyCommand.register,
  eventsCommand.register,
  agentCommand.register,
  doctorCommand.register,
];

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('bae')
    .description(
      'Behavioral Analysis Engine: watches traffic on an interface in XDP, keeps a profile of ' +
        'every conversation, and applies policies that emulate network conditions and attacks.',
    )
    // By its path from dist/src/cli/: package.json is outside the compiled tree.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    .version(require('../../../package.json').version as string)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its message (or help/version, which exit 0).
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    const prefix = err instanceof BaeError ? `bae: ${message}` : `bae: unexpected error: ${message}`;
    process.stderr.write(prefix + '\n');
    if (process.env.BAE_DEBUG && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    process.exitCode = exitCodeFor(err);
  }
}
