// `bae agent` in the inline lab: start, a delay policy applied from another process, RTT + X,
// SIGTERM leaving nothing; the refusals without an agent and in ingress mode with every map
// unchanged; frames of a delay class forwarded undelayed (and counted) when no socket holds their
// slot; and what happens to frames held when the agent stops.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openPinnedMap } from '../../src/datapath';
import { DELAY_MAPS, sumPolicyDelayStatsPerCpu } from '../../src/datapath/delay-layout';
import { openPolicyMaps } from '../../src/policy/service';
import { assertFails, assertNothingLeft } from '../lib/bae-cli';
import { digestMaps } from '../policy/helpers';
import { createAgentLab, median, pingRtts, serverInEchos, type AgentLab, type AgentProcess } from './agent-lab';

function delayPolicy(name: string, source: string, time: string, proto = 'icmp'): string {
  return `apiVersion: bae/v1
kind: Policy
metadata: { name: ${name} }
spec:
  priority: 10
  match: { src: ${source}/32, proto: ${proto} }
  actions:
    - delay: { time: ${time} }
`;
}

const countPolicy = `apiVersion: bae/v1
kind: Policy
metadata: { name: count-udp }
spec:
  match: { proto: udp }
  actions: [count]
`;


function delayStats(pinDir: string): { redirected: bigint; noSocket: bigint } {
  const m = openPinnedMap(path.join(pinDir, DELAY_MAPS.stats));
  try {
    return sumPolicyDelayStatsPerCpu(m.lookupPerCpu(Buffer.alloc(4))!);
  } finally {
    m.close();
  }
}

describe('bae agent', () => {
  let al: AgentLab;
  before(() => {
    al = createAgentLab('ag');
  });
  after(() => al?.teardown());

  it('delays pings by a policy applied from another process, and leaves no program, pin or socket after SIGTERM', async (t) => {
    const agent = await al.startAgent();
    try {
      assert.ok(fs.existsSync(al.socket), 'the control socket exists');
      assert.equal(fs.statSync(al.socket).mode & 0o777, 0o600, 'the control socket is root-only');
      const baseline = median(pingRtts(al.lab, 20));
      const file = al.write('slow-ping.yaml', delayPolicy('slow-ping', al.lab.client.ipv4, '30ms'));
      const applied = al.cli(['policy', 'apply', file]);
      assert.equal(applied.status, 0, applied.stderr);
      const delayed = median(pingRtts(al.lab, 20));
      t.diagnostic(`median ping RTT ${baseline.toFixed(3)} -> ${delayed.toFixed(3)} ms with a 30 ms delay policy`);
      assert.ok(Math.abs(delayed - baseline - 30) <= 2, `ping RTT ${delayed} ms, baseline ${baseline} ms: expected + 30 ms (± 2)`);

      // Frames that need no delay never leave the kernel: the other address, the replies.
      const other = median(pingRtts(al.lab, 10, al.lab.client.ipv4Second));
      assert.ok(other < baseline + 2, `the other address is not delayed: ${other} ms`);
      const st = al.cli(['agent', 'status', '--json']);
      assert.equal(st.status, 0, st.stderr);
      const status = JSON.parse(st.stdout) as {
        classes: { cls: number; params: { delayMs: number } }[];
        kernel: { redirected: string };
        line: { received: number; live: boolean };
        loadedByAgent: boolean;
      };
      assert.equal(status.line.live, true, "busy steps can leave as XDP frames through bae's own program");
      assert.deepEqual(status.classes.map((c) => [c.cls, c.params.delayMs]), [[1, 30]]);
      assert.equal(status.kernel.redirected, '20', 'exactly the 20 delayed echo requests went through the delay line');
      assert.equal(status.line.received, 20);
      assert.equal(status.loadedByAgent, true);
      assert.match(al.cli(['agent', 'status']).stdout, /^bae agent running .*\n(.*\n)* {2}class 1: delay 30 ms/);
      assert.match(al.cli(['status']).stdout, /\n {2}agent: +running \(pid \d+\), delay line holding 0 frames, 1 delay classes in use\n/);
    } finally {
      const code = await agent.stop('SIGTERM');
      assert.equal(code, 0, `agent exit code; stderr: ${agent.stderr()}`);
    }
    // bae stays loaded and enforcing after the agent (blocks, policies); `bae unload` ends it.
    assert.match(agent.stdout(), /bae agent stopped \(SIGTERM\): \d+ held frames sent, 0 dropped; bae left loaded/);
    assert.match(al.cli(['status']).stdout, /bae is loaded, inline mode/);
    assert.equal(al.cli(['unload']).status, 0);
    assertNothingLeft(al.lab, al.pinDir);
    assert.equal(fs.existsSync(al.socket), false, 'the control socket is gone');
    assertFails(al.cli(['agent', 'status']), 3, /^bae: no bae agent is running/);
  });

  it('refuses a delay policy while no agent runs, with exit 1 naming `bae agent`, and changes no map', () => {
    try {
      const loaded = al.cli(['load', '--iface', al.lab.bae.clientPort, '--peer', al.lab.bae.serverPort]);
      assert.equal(loaded.status, 0, loaded.stderr);
      assert.equal(al.cli(['policy', 'apply', al.write('count.yaml', countPolicy)]).status, 0);
      const maps = openPolicyMaps(al.pinDir);
      try {
        const before = digestMaps(maps.maps);
        const res = al.cli(['policy', 'apply', al.write('slow.yaml', delayPolicy('slow-ping', al.lab.client.ipv4, '30ms'))]);
        assertFails(res, 1, /^bae: policy 'slow-ping' with 'delay' needs the delay line, and no agent holds it .*start `bae agent --iface IF --peer IF2 --pin-dir \S+`.* nothing was applied$/);
        assert.deepEqual(digestMaps(maps.maps), before, 'every policy map is unchanged');
      } finally {
        maps.close();
      }
      const list = JSON.parse(al.cli(['policy', 'list', '--json']).stdout) as { name: string }[];
      assert.deepEqual(list.map((p) => p.name), ['count-udp']);
    } finally {
      al.cli(['unload']);
    }
  });

  it('refuses a delay policy on a bae in ingress mode with exit 2 naming the action, and the agent refuses to start there', async () => {
    try {
      const loaded = al.cli(['load', '--iface', al.lab.bae.clientPort]);
      assert.equal(loaded.status, 0, loaded.stderr);
      const maps = openPolicyMaps(al.pinDir);
      try {
        const before = digestMaps(maps.maps);
        const file = al.write('slow.yaml', delayPolicy('slow-ping', al.lab.client.ipv4, '30ms'));
        const res = al.cli(['policy', 'apply', file]);
        assertFails(res, 2, /^bae: .*slow\.yaml:8:7: policy 'slow-ping': action 'delay' needs bae inline .*this bae runs in ingress mode/);
        assert.deepEqual(digestMaps(maps.maps), before, 'every policy map is unchanged');
      } finally {
        maps.close();
      }
      await assert.rejects(al.startAgent(), /exited \(1\) before it was ready: bae: bae is already loaded at .*ingress mode.*run `bae unload` first/);
      assert.equal(al.cli(['status', '--json']).status, 0);
      assert.match(al.cli(['status']).stdout, /bae is loaded, ingress mode(.*\n)* {2}agent: +none \(delay, duplicate and reorder policies need `bae agent`\)/);
    } finally {
      al.cli(['unload']);
    }
  });

  it('forwards frames of a delay class undelayed, and counts them, when no socket holds their slot; a new agent takes over with the classes of the applied set', async () => {
    const agent = await al.startAgent();
    let second: AgentProcess | undefined;
    try {
      const baseline = median(pingRtts(al.lab, 10));
      assert.equal(al.cli(['policy', 'apply', al.write('slow.yaml', delayPolicy('slow-ping', al.lab.client.ipv4, '30ms'))]).status, 0);
      assert.ok(median(pingRtts(al.lab, 5)) > baseline + 25, 'delayed while the agent runs');
      // SIGKILL: the sockets go with the process; the pinned program and the rules stay.
      await agent.stop('SIGKILL');
      const before = delayStats(al.pinDir);
      const after = median(pingRtts(al.lab, 10));
      assert.ok(after < baseline + 2, `undelayed without the agent: ${after} ms, baseline ${baseline} ms`);
      const stats = delayStats(al.pinDir);
      assert.equal(stats.noSocket - before.noSocket, 10n, 'every echo request of the class was counted as having no socket');
      assert.equal(stats.redirected, before.redirected);

      // A new agent takes the loaded bae over and gives class 1 its parameters from the stored set.
      second = await al.startAgent();
      assert.match(second.stderr(), /taking over the loaded bae/);
      assert.match(second.stderr(), /delay classes of the applied policy set restored/);
      const again = median(pingRtts(al.lab, 10));
      assert.ok(Math.abs(again - baseline - 30) <= 2, `delayed again without a new apply: ${again} ms`);
      assert.equal(await second.stop('SIGTERM'), 0);
      assert.match(second.stdout(), /bae left loaded/);
    } finally {
      await agent.stop('SIGKILL');
      if (second) await second.stop('SIGKILL');
      al.cli(['unload']);
    }
  });

  it('sends the frames it holds at once when it stops (SIGINT), and leaves a bae it took over loaded', async () => {
    try {
      assert.equal(al.cli(['load', '--iface', al.lab.bae.clientPort, '--peer', al.lab.bae.serverPort]).status, 0);
      const agent = await al.startAgent();
      let code: number | null = null;
      try {
        assert.match(agent.stderr(), /taking over the loaded bae/);
        assert.equal(al.cli(['policy', 'apply', al.write('hold.yaml', delayPolicy('hold-ping', al.lab.client.ipv4, '10s'))]).status, 0);
        const echosBefore = serverInEchos(al);
        const started = Date.now();
        const ping = new Promise<string>((resolve) => {
          const p = spawn('ip', ['netns', 'exec', al.lab.client.ns, 'ping', '-n', '-c', '5', '-i', '0.1', '-W', '12', al.lab.server.ipv4], { stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          p.stdout.on('data', (d: Buffer) => (out += d.toString()));
          p.on('close', () => resolve(out));
        });
        await new Promise((r) => setTimeout(r, 1000));
        assert.equal(serverInEchos(al) - echosBefore, 0, 'the 5 echo requests are held, none reached the server yet');
        code = await agent.stop('SIGINT');
        const stoppedAfter = Date.now() - started;
        const out = await ping;
        const rtts = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
        assert.equal(rtts.length, 5, `every request was sent on and answered: ${out}`);
        // A 10 s delay (it was 3 s, with a 2.5 s bound: a stop that a loaded machine slows by a
        // second or so came close), so that frames sent on at the stop stay far from frames that
        // waited out their delay: 5 s tells the two apart with room on both sides.
        assert.ok(Math.max(...rtts) < 5000, `held frames left at the stop (${stoppedAfter} ms after the first), not after the 10 s delay: ${rtts.join(', ')} ms`);
        assert.equal(serverInEchos(al) - echosBefore, 5);
      } finally {
        code ??= await agent.stop('SIGTERM');
      }
      assert.equal(code, 0, agent.stderr());
      assert.match(agent.stdout(), /bae agent stopped \(SIGINT\): 5 held frames sent, 0 dropped; bae left loaded/);
      assert.match(al.cli(['status']).stdout, /bae is loaded, inline mode/);
    } finally {
      al.cli(['unload']);
    }
    assertNothingLeft(al.lab, al.pinDir);
  });

  it('holds at most --max-in-flight frames and passes the rest undelayed with --overflow pass (and takes --cpu, --max-late-ms)', async () => {
    const agent = await al.startAgent(['--max-in-flight', '1', '--overflow', 'pass', '--cpu', '0', '--max-late-ms', '50']);
    try {
      assert.equal(al.cli(['policy', 'apply', al.write('hold.yaml', delayPolicy('hold-ping', al.lab.client.ipv4, '300ms'))]).status, 0);
      // Four pings at once, each waiting for its own reply: the first one in is held.
      const outs = await Promise.all(
        [0, 1, 2, 3].map(
          () =>
            new Promise<string>((resolve) => {
              const p = spawn('ip', ['netns', 'exec', al.lab.client.ns, 'ping', '-n', '-c', '1', '-W', '3', al.lab.server.ipv4], { stdio: ['ignore', 'pipe', 'ignore'] });
              let out = '';
              p.stdout.on('data', (d: Buffer) => (out += d.toString()));
              p.on('close', () => resolve(out));
            }),
        ),
      );
      const rtts = outs.map((o) => Number(/time=([\d.]+) ms/.exec(o)?.[1] ?? NaN)).sort((a, b) => a - b);
      assert.ok(rtts.every((r) => !Number.isNaN(r)), `every ping was answered: ${outs.join('')}`);
      assert.ok(rtts[2]! < 5 && rtts[3]! >= 300, `one request held 300 ms, three passed at once: ${rtts.join(', ')} ms`);
      const st = JSON.parse(al.cli(['agent', 'status', '--json']).stdout) as { maxInFlight: number; overflow: string; line: { overflow: number; cpu: number } };
      assert.deepEqual([st.maxInFlight, st.overflow, st.line.overflow, st.line.cpu], [1, 'pass', 3, 0]);
    } finally {
      assert.equal(await agent.stop('SIGTERM'), 0);
    }
  });
});
