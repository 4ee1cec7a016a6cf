// `bae unload`: detach bae everywhere `bae load` attached it and remove every pin it made.
import { Command } from 'commander';
import { unload } from '../datapath';
import { removeStoredSet } from '../policy';
import { pinDirOption } from './load';

export function register(program: Command): void {
  program
    .command('unload')
    .description('detach bae and remove its pins (nothing to do when it is not loaded)')
    .addOption(pinDirOption())
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
    .action((opts: { pinDir: string; json?: boolean }) => {
      const res = unload({ pinDir: opts.pinDir });
      // The applied policy set is kept beside the pins (src/policy/store.ts); it went with the maps.
      removeStoredSet(res.pinDir);
      if (opts.json) {
        process.stdout.write(JSON.stringify(res, null, 2) + '\n');
      } else if (!res.wasLoaded) {
        process.stdout.write(`bae was not loaded (nothing under ${opts.pinDir}); nothing to do\n`);
      } else {
        const from = res.detached.length ? `detached from ${res.detached.join(', ')}` : 'no attachment was left';
        process.stdout.write(`bae unloaded: ${from}; ${res.removedPins.length} pins removed\n`);
      }
    });
}
