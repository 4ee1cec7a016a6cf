// A second Node process for tests that must see kernel state from outside the test process
// (pinned maps, programs, links). `body` is JavaScript with `dp` bound to the datapath module;
// its return value comes back through JSON. Bounded in time; killed when it overruns.
import { execFile } from 'node:child_process';
import { datapathModule } from './fixtures';

export function childScript(body: string): string {
  return `
    const dp = require(${JSON.stringify(datapathModule)});
    (async () => { ${body} })().then(
      (value) => { process.stdout.write('\\n@@result ' + JSON.stringify(value === undefined ? null : value) + '\\n'); },
      (err) => { process.stderr.write(String(err && err.stack || err) + '\\n'); process.exitCode = 1; });`;
}

/** Runs `cmd args... <node> -e <script>`; with cmd '' the node binary runs directly. */
export function runNodeChild<T = unknown>(body: string, opts: { prefix?: string[]; timeoutMs?: number; label?: string } = {}): Promise<T> {
  const prefix = opts.prefix ?? [];
  const argv = [...prefix, process.execPath, '-e', childScript(body)];
  const label = opts.label ?? 'child process';
  return new Promise<T>((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: opts.timeoutMs ?? 20_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${label} failed: ${err.message}\n${stderr}`));
      const line = stdout.split('\n').filter((l) => l.startsWith('@@result ')).pop(); // the last one wins
      if (line === undefined) return reject(new Error(`${label} returned nothing\n${stdout}\n${stderr}`));
      resolve(JSON.parse(line.slice('@@result '.length)) as T);
    });
  });
}
