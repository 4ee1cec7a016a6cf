// `bae agent --metrics`: a real HTTP scrape of the agent in the inline lab, the exposition parsed,
// the kernel's counters rising by what the pings sent; the refusals (a bad address, a port in
// use) with nothing left loaded.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { assertFails, assertNothingLeft, bae } from '../lib/bae-cli';
import { parseExposition, sampleValue, type PromFamily } from '../lib/prom-text';
import { createAgentLab, pingRtts, type AgentLab } from './agent-lab';

const countIcmp = `apiVersion: bae/v1
kind: Policy
metadata: { name: count-icmp }
spec:
  match: { proto: icmp }
  actions: [count]
`;

interface HttpReply {
  status: number;
  contentType: string;
  body: string;
}

/** GET `url` from the bae namespace (where the agent listens), with curl. */
function httpGet(al: AgentLab, url: string): HttpReply {
  const res = spawnSync('ip', ['netns', 'exec', al.lab.ns.bae, 'curl', '-sS', '--max-time', '10', '-o', '-', '-w', '\n%{http_code} %{content_type}', url], {
    encoding: 'utf8',
    timeout: 15_000,
  });
  assert.equal(res.status, 0, `curl ${url}: ${res.stderr}`);
  const cut = res.stdout.lastIndexOf('\n');
  const [status, ...ct] = res.stdout.slice(cut + 1).split(' ');
  return { status: Number(status), contentType: ct.join(' '), body: res.stdout.slice(0, cut) };
}

function scrape(al: AgentLab, url: string): Map<string, PromFamily> {
  const r = httpGet(al, url);
  assert.equal(r.status, 200, r.body);
  assert.match(r.contentType, /^text\/plain; version=0\.0\.4/);
  return parseExposition(r.body);
}

describe('bae agent --metrics', () => {
  let al: AgentLab;
  before(() => {
    al = createAgentLab('mt');
  });
  after(() => al?.teardown());

  it("serves bae_* counters read from the kernel at scrape time: 20 pings add 40 frames to the verdict, parse and policy counters", async (t) => {
    const agent = await al.startAgent(['--metrics', '127.0.0.1:0']);
    try {
      const url = /metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(agent.stdout())?.[1];
      assert.ok(url, `the agent prints where it serves metrics: ${agent.stdout()}`);
      const applied = al.cli(['policy', 'apply', al.write('count-icmp.yaml', countIcmp)]);
      assert.equal(applied.status, 0, applied.stderr);

      const first = scrape(al, url);
      for (const f of first.values()) {
        if (!f.name.startsWith('bae_')) continue;
        assert.ok(f.help && f.help.length >= 30, `${f.name} has HELP that explains it: ${f.help}`);
        assert.ok(f.type === 'counter' || f.type === 'gauge', `${f.name} is a counter or a gauge: ${f.type}`);
        if (f.type === 'counter') assert.match(f.name, /_total$/, `${f.name}: a counter ends in _total`);
      }
      assert.equal(sampleValue(first, 'bae_up'), 1);
      assert.equal(sampleValue(first, 'bae_bus_connected'), 1, 'on the in-process bus (fed by the agent, src/agent/bus-metrics.ts)');
      assert.equal(sampleValue(first, 'bae_bus_lag_seconds'), 0);
      assert.equal(sampleValue(first, 'bae_delay_line_frames_held'), 0);
      assert.equal(sampleValue(first, 'bae_blocks_active'), 0);
      assert.equal(sampleValue(first, 'bae_ringbuf_events_lost_total'), 0);
      assert.ok(first.has('process_cpu_seconds_total'), "Node's process metrics are there too");
      const verdicts = first.get('bae_packets_total')!.samples.map((s) => s.labels.verdict).sort();
      assert.deepEqual(verdicts, ['aborted', 'drop', 'pass', 'redirect', 'tx'], 'every verdict has a series, also at 0');

      pingRtts(al.lab, 20);
      const second = scrape(al, url);
      const rise = (name: string, labels: Record<string, string>) => sampleValue(second, name, labels) - sampleValue(first, name, labels);
      t.diagnostic(
        `after 20 pings: redirect +${rise('bae_packets_total', { verdict: 'redirect' })}, icmp +${rise('bae_parse_outcomes_total', { outcome: 'icmp' })}, ` +
          `count-icmp matched +${rise('bae_policy_matched_packets_total', { policy: 'count-icmp' })}`,
      );
      // 20 echo requests and 20 replies, each forwarded by the inline bae (ARP may add frames
      // to the verdicts, never to icmp).
      assert.equal(rise('bae_parse_outcomes_total', { outcome: 'icmp' }), 40);
      assert.ok(rise('bae_packets_total', { verdict: 'redirect' }) >= 40, 'every ping frame was forwarded');
      assert.equal(rise('bae_packets_total', { verdict: 'drop' }), 0);
      assert.equal(rise('bae_policy_matched_packets_total', { policy: 'count-icmp' }), 40);
      assert.equal(rise('bae_policy_applied_packets_total', { policy: 'count-icmp' }), 40);
      assert.equal(sampleValue(second, 'bae_policy_trigger_fires_total', { policy: 'count-icmp' }), 0);

      // The agent's own gauges and status say the same.
      const st = JSON.parse(al.cli(['agent', 'status', '--json']).stdout) as { metricsUrl: string | null };
      assert.equal(st.metricsUrl, url);
      assert.equal(httpGet(al, url.replace(/\/metrics$/, '/')).status, 404);
      assert.equal(httpGet(al, url + '/x').status, 404);
    } finally {
      const code = await agent.stop('SIGTERM');
      assert.equal(code, 0, `agent exit code; stderr: ${agent.stderr()}`);
    }
    // The agent leaves bae loaded and enforcing (docs/agent.md); `bae unload` ends it.
    assert.equal(al.cli(['unload']).status, 0);
    assertNothingLeft(al.lab, al.pinDir);
  });

  it('counts a blocking policy: one trigger fire, one block issued and active, the blocked pings as blocklist drops', async () => {
    const agent = await al.startAgent(['--metrics', '127.0.0.1:0']);
    try {
      const url = /metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(agent.stdout())![1]!;
      const source = al.lab.client.ipv4Second;
      const policy = `apiVersion: bae/v1
kind: Policy
metadata: { name: ping-limit }
spec:
  match: { src: ${source}/32, proto: icmp }
  trigger: { when: packets > 3, within: 10s, scope: source }
  actions:
    - block: { ttl: 60s }
`;
      const applied = al.cli(['policy', 'apply', al.write('ping-limit.yaml', policy)]);
      assert.equal(applied.status, 0, applied.stderr);
      const first = scrape(al, url);
      // 10 echo requests: 3 answered, the 4th crosses the threshold (dropped by the block
      // action), the other 6 meet the blocklist.
      spawnSync('ip', ['netns', 'exec', al.lab.client.ns, 'ping', '-n', '-q', '-c', '10', '-i', '0.05', '-W', '1', '-I', source, al.lab.server.ipv4], { timeout: 15_000 });
      const second = scrape(al, url);
      const rise = (name: string, labels: Record<string, string> = {}) => sampleValue(second, name, labels) - sampleValue(first, name, labels);
      assert.equal(rise('bae_policy_trigger_fires_total', { policy: 'ping-limit' }), 1);
      assert.equal(rise('bae_policy_blocks_total', { policy: 'ping-limit' }), 1);
      assert.equal(rise('bae_blocks_issued_total'), 1);
      assert.equal(sampleValue(second, 'bae_blocks_active'), 1);
      assert.equal(sampleValue(second, 'bae_blocklist_entries'), 1);
      assert.equal(rise('bae_blocklist_dropped_packets_total'), 6);
      assert.equal(rise('bae_packets_total', { verdict: 'drop' }), 7);
      assert.equal(sampleValue(second, 'bae_ringbuf_events_lost_total'), 0);
    } finally {
      const code = await agent.stop('SIGTERM');
      assert.equal(code, 0, `agent exit code; stderr: ${agent.stderr()}`);
    }
    // The agent leaves bae loaded and enforcing (docs/agent.md); `bae unload` ends it.
    assert.equal(al.cli(['unload']).status, 0);
    assertNothingLeft(al.lab, al.pinDir);
  });

  it('refuses a malformed --metrics with exit 2 and a port in use with exit 1 naming the address, leaving nothing loaded', async () => {
    // At the default log level: the error is the one line on stderr.
    const agentArgs = ['agent', '--iface', al.lab.bae.clientPort, '--peer', al.lab.bae.serverPort, '--pin-dir', al.pinDir];
    const cli = (args: readonly string[]) => bae(args, { lab: al.lab, node: 'bae', spawn: { env: { ...al.env, BAE_LOG_LEVEL: 'warn' }, timeout: 30_000 } });
    assertFails(cli([...agentArgs, '--metrics', 'localhost']), 2, /^bae: --metrics 'localhost': expected HOST:PORT/);
    assertFails(cli([...agentArgs, '--metrics', '127.0.0.1:70000']), 2, /^bae: --metrics '127\.0\.0\.1:70000': expected HOST:PORT/);
    assertNothingLeft(al.lab, al.pinDir);

    // Something else holds the port (in the bae namespace, where the agent binds).
    const holder = spawn('ip', ['netns', 'exec', al.lab.ns.bae, 'timeout', '60', 'python3', '-c',
      'import socket,sys,time\ns=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(1); print(s.getsockname()[1], flush=True); time.sleep(60)'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the port holder did not start within 10 s')), 10_000);
        holder.stdout!.once('data', (d: Buffer) => {
          clearTimeout(timer);
          resolve(Number(d.toString().trim()));
        });
      });
      assertFails(cli([...agentArgs, '--metrics', `127.0.0.1:${port}`]), 1, new RegExp(`^bae: cannot serve metrics on 127\\.0\\.0\\.1:${port}: the address is already in use \\(EADDRINUSE\\)$`));
      assertNothingLeft(al.lab, al.pinDir);
    } finally {
      holder.kill('SIGKILL');
    }
  });
});
