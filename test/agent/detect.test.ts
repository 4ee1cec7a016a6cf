// `bae agent --detect` in the inline lab: two client addresses ping the server steadily, then one
// of them floods; the detector reports the flooding source (in the status, the log and the
// metrics' counter) and nothing for the steady one. The pings are pinned to CPU 0 (taskset): the
// kernel measures inter-arrival gaps per CPU copy of a conversation (docs/profiles.md), and a
// pinger that migrated would show one long gap on the other CPU.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { assertFails, assertNothingLeft, bae } from '../lib/bae-cli';
import { until } from '../lib/wait';
import { createAgentLab, type AgentLab } from './agent-lab';

interface AnomalyJson {
  source: string;
  metric: string;
  value: number;
  mean: number;
  stddev: number;
  z: number;
  at: string;
}

interface DetectorJson {
  intervalMs: number;
  snapshots: number;
  sources: number;
  anomaliesTotal: number;
  recent: AnomalyJson[];
}

function detectorStatus(al: AgentLab): DetectorJson {
  const res = al.cli(['agent', 'status', '--json']);
  assert.equal(res.status, 0, res.stderr);
  const d = (JSON.parse(res.stdout) as { detector: DetectorJson | null }).detector;
  assert.ok(d, 'the agent runs the detector');
  return d;
}

/** A steady ping from `source` on the client, pinned to CPU 0, bounded in count and time. */
function steadyPing(al: AgentLab, source: string, count: number): ChildProcess {
  const argv = ['ip', 'netns', 'exec', al.lab.client.ns, 'taskset', '-c', '0', 'ping', '-n', '-q', '-i', '0.2', '-c', String(count), '-w', String(Math.ceil(count * 0.2) + 10), '-I', source, al.lab.server.ipv4];
  return spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
}

describe('bae agent --detect', () => {
  let al: AgentLab;
  before(() => {
    al = createAgentLab('dt');
  });
  after(() => al?.teardown());

  it('reports a flood from a source that pinged steadily, and nothing for a steady second source', async (t) => {
    const { client } = al.lab;
    const flooder = client.ipv4;
    const steady = client.ipv4Second;
    const agent = await al.startAgent(['--detect', '--detect-interval', '1s']);
    const pingers: ChildProcess[] = [];
    try {
      // 300 pings (60 s, killed at the end): they outlast the polls below also on a slow machine,
      // where a steady source that stopped early would itself look anomalous.
      pingers.push(steadyPing(al, flooder, 300), steadyPing(al, steady, 300));
      // Warm-up: 10 samples of 1 s after the first snapshot with the sources, and a margin. Counted
      // in snapshots, not slept: on a loaded machine the agent's 1 s timer runs late.
      let calm = detectorStatus(al);
      await until('13 snapshots of the detector', () => (calm = detectorStatus(al)).snapshots >= 13 && calm.sources >= 3, 40_000, 1000);
      assert.deepEqual(calm.recent.filter((a) => a.source === flooder || a.source === steady), [], 'no anomaly while both ping steadily');
      assert.ok(calm.snapshots >= 13 && calm.sources >= 3, `snapshots ${calm.snapshots}, sources ${calm.sources} (both clients and the server)`);

      const flood = spawnSync('ip', ['netns', 'exec', client.ns, 'taskset', '-c', '1', 'ping', '-n', '-q', '-f', '-c', '3000', '-w', '5', '-I', flooder, al.lab.server.ipv4], { encoding: 'utf8', timeout: 15_000 });
      assert.equal(flood.status, 0, `flood ping: ${flood.stdout}${flood.stderr}`);
      // The snapshots that cover the flood's end: two more (2.5 s on a calm machine).
      const atFloodEnd = detectorStatus(al).snapshots;
      let after = detectorStatus(al);
      await until('two snapshots after the flood', () => (after = detectorStatus(al)).snapshots >= atFloodEnd + 2, 20_000, 500);
      const mine = after.recent.filter((a) => a.source === flooder);
      t.diagnostic(`flood: ${flood.stdout.trim().split('\n').slice(-2).join(' / ')}`);
      for (const a of mine) t.diagnostic(`anomaly ${a.metric} ${a.value.toPrecision(4)} baseline ${a.mean.toPrecision(4)} ± ${a.stddev.toPrecision(3)} z ${a.z.toFixed(1)}`);
      const pps = mine.find((a) => a.metric === 'packets_per_second');
      assert.ok(pps, `an anomaly of the flooder's packets/s: ${JSON.stringify(after.recent)}`);
      assert.ok(pps.z > 4 && pps.value > 10 * pps.mean, `the flood is far above the baseline: ${JSON.stringify(pps)}`);
      assert.ok(Math.abs(pps.z - (pps.value - pps.mean) / pps.stddev) < 1e-6 * Math.abs(pps.z), 'z = (value - mean) / stddev');
      assert.deepEqual(after.recent.filter((a) => a.source === steady), [], 'nothing for the steady source');

      // The same anomaly in the log, as pino JSON at warn.
      const logged = agent
        .stderr()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; anomaly?: AnomalyJson })
        .filter((l) => l.anomaly?.source === flooder && l.anomaly.metric === 'packets_per_second');
      assert.ok(logged.length >= 1 && logged.every((l) => l.level === 40), 'logged at warn');
      const text = al.cli(['agent', 'status']).stdout;
      assert.match(text, /\n {2}detector: a snapshot every 1000 ms \(\d+ taken\), \d+ sources followed; alpha 0\.1, \|z\| > 4 after 10 samples, idle sources forgotten after 60 s; \d+ anomalies\n/);
      const shown = text.split('\n').filter((l) => /^ {4}\d{4}-\d\d-\d\dT/.test(l));
      const last = detectorStatus(al).recent.at(-1)!;
      assert.ok(shown.length >= 1 && shown.length <= 5, `the newest anomalies, at most 5: ${text}`);
      assert.match(shown.at(-1)!, new RegExp(`^ {4}${last.at} ${last.source} ${last.metric} \\S+ \\(baseline \\S+ ± \\S+, z -?\\d+\\.\\d\\)$`));
    } finally {
      for (const p of pingers) p.kill('SIGKILL');
      const code = await agent.stop('SIGTERM');
      assert.equal(code, 0, `agent exit code; stderr: ${agent.stderr().slice(-2000)}`);
    }
    // The agent leaves bae loaded and enforcing (docs/agent.md); `bae unload` ends it.
    assert.equal(al.cli(['unload']).status, 0);
    assertNothingLeft(al.lab, al.pinDir);
  });

  it('refuses detector options out of range, or without --detect, with exit 2 before loading anything', () => {
    const agentArgs = ['agent', '--iface', al.lab.bae.clientPort, '--peer', al.lab.bae.serverPort, '--pin-dir', al.pinDir];
    const cli = (args: readonly string[]) => bae(args, { lab: al.lab, node: 'bae', spawn: { env: { ...al.env, BAE_LOG_LEVEL: 'warn' }, timeout: 30_000 } });
    assertFails(cli([...agentArgs, '--detect', '--detect-alpha', '2']), 2, /--detect-alpha.*expected a number from 0\.001 to 1/);
    assertFails(cli([...agentArgs, '--detect', '--detect-interval', '5ms']), 2, /--detect-interval.*expected a duration from 10 ms to 3600 s/);
    assertFails(cli([...agentArgs, '--detect', '--detect-idle', 'soon']), 2, /--detect-idle.*'soon' is not a duration/);
    assertFails(cli([...agentArgs, '--detect-threshold', '3']), 2, /^bae: --detect-threshold needs --detect$/);
    assertNothingLeft(al.lab, al.pinDir);
  });
});
