// systemd/bae-agent.service: systemd-analyze accepts it, and its ExecStart, expanded the way
// systemd expands it with the example EnvironmentFile filled in for the lab, runs the agent
// between the lab's ports until SIGTERM, which leaves nothing behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertNothingLeft, BAE_BIN, REPO } from '../lib/bae-cli';
import { createAgentLab, type AgentLab } from './agent-lab';

const UNIT = path.join(REPO, 'systemd/bae-agent.service');
const ENV_EXAMPLE = path.join(REPO, 'systemd/agent.env.example');

/** KEY=VALUE lines of an EnvironmentFile (comments and blank lines skipped). */
function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.trim();
  }
  return env;
}

/** systemd's expansion: ${VAR} is one word, $VAR alone splits on whitespace (nothing if empty). */
function expandExecStart(line: string, env: Record<string, string>): string[] {
  const words: string[] = [];
  for (const word of line.trim().split(/\s+/)) {
    const alone = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (alone) {
      words.push(...(env[alone[1]!] ?? '').split(/\s+/).filter(Boolean));
      continue;
    }
    words.push(word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => env[name] ?? ''));
  }
  return words;
}

function unitValue(unit: string, key: string): string {
  const m = new RegExp(`^${key}=(.*)$`, 'm').exec(unit);
  assert.ok(m, `the unit sets ${key}`);
  return m[1]!;
}

describe('the systemd unit of the agent', () => {
  let al: AgentLab;
  before(() => {
    al = createAgentLab('sy');
  });
  after(() => al?.teardown());

  it('is a simple service that systemd-analyze accepts, with the ports from its EnvironmentFile', () => {
    const unit = fs.readFileSync(UNIT, 'utf8');
    assert.equal(unitValue(unit, 'Type'), 'simple');
    assert.equal(unitValue(unit, 'EnvironmentFile'), '/etc/bae/agent.env');
    assert.match(unitValue(unit, 'ExecStart'), /^\/usr\/local\/bin\/bae agent --iface \$\{BAE_IFACE\} --peer \$\{BAE_PEER\} /);
    // A copy that points at this checkout's bin/bae and at the example environment file.
    const bin = path.join(al.runDir, 'bae');
    fs.symlinkSync(BAE_BIN, bin);
    const envFile = path.join(al.runDir, 'agent.env');
    fs.copyFileSync(ENV_EXAMPLE, envFile);
    const copy = path.join(al.runDir, 'bae-agent.service');
    fs.writeFileSync(copy, unit.replace('/etc/bae/agent.env', envFile).replace('/usr/local/bin/bae', bin));
    const res = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.stderr.trim(), '', 'no warning');
  });

  it('runs the agent between the ports its environment file names, until SIGTERM, which leaves bae enforcing', async () => {
    const unit = fs.readFileSync(UNIT, 'utf8');
    const env = parseEnvFile(
      fs
        .readFileSync(ENV_EXAMPLE, 'utf8')
        .replace(/^BAE_IFACE=.*$/m, `BAE_IFACE=${al.lab.bae.clientPort}`)
        .replace(/^BAE_PEER=.*$/m, `BAE_PEER=${al.lab.bae.serverPort}`)
        .replace(/^#BAE_PIN_DIR=.*$/m, `BAE_PIN_DIR=${al.pinDir}`),
    );
    const argv = expandExecStart(unitValue(unit, 'ExecStart'), env);
    assert.deepEqual(argv.slice(1), ['agent', '--iface', al.lab.bae.clientPort, '--peer', al.lab.bae.serverPort, '--mode', 'native', '--overflow', 'drop']);
    const agent = await al.startCommand([process.execPath, BAE_BIN, ...argv.slice(1)], env);
    let code: number | null;
    try {
      const st = al.cli(['agent', 'status', '--json']);
      assert.equal(st.status, 0, st.stderr);
      assert.equal((JSON.parse(st.stdout) as { pinDir: string }).pinDir, al.pinDir);
    } finally {
      code = await agent.stop('SIGTERM');
    }
    assert.equal(code, 0, agent.stderr());
    // bae stays loaded and enforcing after the service stops (docs/agent.md); `bae unload` ends it.
    assert.match(al.cli(['status']).stdout, /bae is loaded, inline mode/);
    assert.equal(al.cli(['unload']).status, 0);
    assertNothingLeft(al.lab, al.pinDir);
  });
});
