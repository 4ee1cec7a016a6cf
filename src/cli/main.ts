// The `bae` command: one file per subcommand under src/cli/, registered here, and the one error
// handler: every error that reaches this file becomes one line on stderr and the exit code its
// class carries (src/errors.ts: 2 for input to fix, 1 otherwise, 3 from `bae agent status` when
// no agent runs). Commands set no exit code of their own, but `lab exec`, which passes its
// command's through, and `doctor`, whose report is its answer either way.
import { Command, CommanderError } from 'commander';
import { BaeError, EXIT, exitCodeFor, type ExitCode } from '../errors';
import { moduleLogger } from '../log';
import * as agentCommand from './agent';
import * as blocksCommand from './blocks';
import * as captureCommand from './capture';
import * as doctorCommand from './doctor';
import * as injectCommand from './inject';
import * as labCommand from './lab';
import * as eventsCommand from './events';
import * as exportCommand from './export';
import * as importCommand from './import';
import * as loadCommand from './load';
import * as nodesCommand from './nodes';
import { pinDirOption } from './options';
import * as policyCommand from './policy';
import * as profilesCommand from './profiles';
import * as protectCommand from './protect';
import * as statusCommand from './status';
import * as topCommand from './top';
import * as storeCommand from './store';
import * as reconstructCommand from './reconstruct';
import * as recordCommand from './record';
import * as replayCommand from './replay';
import * as scenariosCommand from './scenarios';
import * as unloadCommand from './unload';

const log = moduleLogger('cli');

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
  protectCommand.register,
  blocksCommand.register,
  agentCommand.register,
  doctorCommand.register,
  captureCommand.register,
  injectCommand.register,
  topCommand.register,
  exportCommand.register,
  importCommand.register,
  storeCommand.register,
  nodesCommand.register,
  reconstructCommand.register,
  recordCommand.register,
  replayCommand.register,
  scenariosCommand.register,
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
    // Global options (src/cli/options.ts): recognised before and after the subcommand.
    .addOption(pinDirOption())
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

/**
 * The one error handler: writes what went wrong (one line; commander has already printed its
 * own) and returns the exit code. The stack and cause go to the log at debug level
 * (BAE_LOG_LEVEL=debug, or BAE_DEBUG=1).
 */
export function handleError(err: unknown, write: (text: string) => void = (text) => process.stderr.write(text)): ExitCode | 0 {
  if (err instanceof CommanderError) {
    // Help and version exit 0; anything commander refuses is input to fix.
    return err.exitCode === 0 ? 0 : EXIT.input;
  }
  const message = err instanceof Error ? err.message : String(err);
  write(err instanceof BaeError ? `bae: ${message}\n` : `bae: unexpected error: ${message}\n`);
  log.debug({ err }, 'command failed');
  return exitCodeFor(err);
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = handleError(err);
  }
}
