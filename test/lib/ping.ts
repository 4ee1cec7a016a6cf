// Echo replies the client of a lab gets: pings bounded in count and time, from one source address.
import { spawnSync } from 'node:child_process';
import type { Lab } from '../../src/lab';

/** Replies to `count` pings from the client (source `from`) to `to`; each waits at most 1 s. */
export function pingReplies(lab: Lab, from: string, to: string, count = 3): number {
  const v6 = to.includes(':');
  const argv = ['ip', 'netns', 'exec', lab.client.ns, 'ping', ...(v6 ? ['-6'] : []), '-n', '-c', String(count), '-i', '0.2', '-W', '1', '-I', from, to];
  const res = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 5_000 + count * 1_500 });
  const m = /(\d+) received/.exec(res.stdout);
  if (!m) throw new Error(`ping gave no summary: ${res.stdout}${res.stderr}`);
  return Number(m[1]);
}
