// `bae unload`: detach bae everywhere `bae load` attached it and remove every pin it made.
import { Command } from 'commander';
import { unload } from '../datapath';
import { toJson } from '../json';
import { removeStoredSet } from '../policy';
import { pinDirOf } from './options';

export function register(program: Command): void {
  program
    .command('unload')
    .description('detach bae and remove its pins (nothing to do when it is not loaded)')
    .option('--json', 'print what was removed as JSON')
    .addHelpText(
      'after',
      `
Afterwards no bae program is attached, nothing is left under --pin-dir, and the record of
the applied policies is gone. Safe to run twice.

Examples:
  sudo bae unload
  sudo bae lab exec bae -- bae unload`,
    )
    .action((opts: { json?: boolean }, command: Command) => {
      const pinDir = pinDirOf(command);
      const res = unload({ pinDir });
      // The applied policy set is kept beside the pins (src/policy/store.ts); it went with the maps.
      removeStoredSet(res.pinDir);
      if (opts.json) {
        process.stdout.write(toJson(res, 2) + '\n');
      } else if (!res.wasLoaded) {
        process.stdout.write(`bae was not loaded (nothing under ${pinDir}); nothing to do\n`);
      } else {
        const from = res.detached.length ? `detached from ${res.detached.join(', ')}` : 'no attachment was left';
        process.stdout.write(`bae unloaded: ${from}; ${res.removedPins.length} pins removed\n`);
      }
    });
}
