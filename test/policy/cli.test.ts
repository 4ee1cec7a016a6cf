// `bae policy check|apply|list|show|delete` and `bae events`, each a process of its own against a
// bae.o pinned by the test: the applied set survives between processes, counters and events come
// from the kernel.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Collection } from '../../src/datapath';
import { PROGRAM, XDP } from '../../src/datapath/layout';
import { BAE_BIN as BAE } from '../lib/bae-cli';
import { repoRoot } from '../lib/fixtures';
import { TCP_SYN } from '../lib/packets';
import { frame } from './helpers';
import { pinnedBae, type PinnedBae } from './pinned-bae';
import { stateFile } from '../../src/policy/store';

const POLICIES = path.join(repoRoot, 'policies');

describe('the policy CLI', () => {
  let pb: PinnedBae;
  let pinDir: string;
  let runDir: string;
  let collection: Collection | undefined;

  before(() => {
    pb = pinnedBae('cli');
    ({ pinDir, runDir, collection } = pb);
  });
  after(() => pb?.close());

  const bae = (...args: string[]) => pb.cli(...args);
  const write = (name: string, text: string) => pb.write(name, text);

  it('checks the example policies, the seed example with delay and the emulation examples included, and prints them in decision order', () => {
    const res = bae('policy', 'check', POLICIES);
    assert.equal(res.status, 0, res.stderr);
    const lines = res.stdout.trim().split('\n');
    assert.match(lines[0]!, /^syn-flood \(priority 200\)/);
    assert.match(lines[1]!, /^port-scan \(priority 150\): every packet; when new_conversations > 50 within 10s per source/);
    assert.match(lines[2]!, /^slow-down-retransmitters .*delay\(time=100ms\)$/);
    assert.match(lines[3]!, /^secbeat-http-errors \(priority 90\): proto=tcp; when http.errors >= 50 within 1m per source for 5m -> block\(ttl=5m\)$/);
    assert.match(lines[4]!, /^secbeat-http-requests \(priority 90\): proto=tcp; when http.requests >= 1000 within 1m per source for 5m -> block\(ttl=5m\)$/);
    assert.match(lines[5]!, /^lossy-link \(priority 50\): .*-> rate\(.*\) loss\(.*\)$/);
    assert.match(lines[6]!, /^flaky-web \(priority 40\): .*-> truncate\(.*\) corrupt\(.*\) tcp-flags\(clear=PSH\)$/);
    assert.match(lines[7]!, /^ok: 7 policies/);
    const json = JSON.parse(bae('policy', 'check', '--json', POLICIES).stdout) as { policies: { name: string; pendingActions: string[] }[] };
    assert.deepEqual(json.policies.map((p) => [p.name, p.pendingActions]), [['syn-flood', []], ['port-scan', []], ['slow-down-retransmitters', []], ['secbeat-http-errors', []], ['secbeat-http-requests', []], ['lossy-link', []], ['flaky-web', []]]);
  });

  it('serializes applies that run at the same time: neither one loses the other', async () => {
    const run = (file: string) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [BAE, 'policy', 'apply', '--pin-dir', pinDir, file], { env: { ...process.env, BAE_RUN_DIR: runDir }, stdio: 'ignore' });
        child.on('close', resolve);
      });
    const files = ['x', 'y', 'z'].map((n) =>
      write(`${n}.yaml`, `apiVersion: bae/v1\nkind: Policy\nmetadata: { name: par-${n} }\nspec:\n  match: { proto: udp, dport: ${n.charCodeAt(0)} }\n  actions: [count]\n`),
    );
    assert.deepEqual(await Promise.all(files.map(run)), [0, 0, 0]);
    const list = JSON.parse(bae('policy', 'list', '--pin-dir', pinDir, '--json').stdout) as { name: string }[];
    assert.deepEqual(list.map((p) => p.name).sort(), ['par-x', 'par-y', 'par-z']);
    const cleared = bae('policy', 'delete', '--pin-dir', pinDir, 'par-x', 'par-y', 'par-z');
    assert.equal(cleared.status, 0, cleared.stderr);
  });

  it('refuses to apply the delay example to a bae in ingress mode with exit 2 and a line naming the action', () => {
    const res = bae('policy', 'apply', '--pin-dir', pinDir, path.join(POLICIES, 'slow-retransmitters.yaml'));
    assert.equal(res.status, 2);
    assert.match(res.stderr, /slow-retransmitters\.yaml:\d+:\d+: policy 'slow-down-retransmitters': action 'delay' needs bae inline .* ingress mode/);
  });

  it('applies, lists, shows and deletes from separate processes, with the kernel counting', async () => {
    const a = write(
      'a.yaml',
      `apiVersion: bae/v1
kind: Policy
metadata: { name: no-telnet }
spec:
  priority: 10
  match: { proto: tcp, dport: 23 }
  actions: [drop]
---
apiVersion: bae/v1
kind: Policy
metadata: { name: count-syn }
spec:
  match: { proto: tcp, tcpFlags: "SYN,!ACK" }
  trigger: { when: tcp.syn > 1, within: 1s, scope: source }
  actions: [count, event]
`,
    );
    let res = bae('policy', 'apply', '--pin-dir', pinDir, a);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /^2 policies active \(generation 1\): added no-telnet, count-syn/);
    res = bae('policy', 'apply', '--pin-dir', pinDir, POLICIES + '/syn-flood.yaml');
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /^3 policies active \(generation 0\): added syn-flood; unchanged no-telnet, count-syn/);

    const program = collection!.program(PROGRAM);
    const clock = collection!.map('bae_test_clock');
    const now = Buffer.alloc(8);
    now.writeBigUInt64LE(7_000_000_000n);
    clock.update(Buffer.alloc(4), now);
    const syn = (dport: number) => frame({ ip: { version: 4, src: '198.51.100.9', dst: '192.0.2.1' }, l4: { proto: 'tcp', sport: 1111, dport, flags: TCP_SYN } });
    assert.equal(program.test(syn(23)).verdict, XDP.drop);
    assert.equal(program.test(syn(80)).verdict, XDP.pass);
    assert.equal(program.test(syn(81)).verdict, XDP.pass);

    res = bae('policy', 'list', '--pin-dir', pinDir, '--json');
    assert.equal(res.status, 0, res.stderr);
    const list = JSON.parse(res.stdout) as { name: string; counters: Record<string, string> }[];
    assert.deepEqual(
      list.map((p) => [p.name, p.counters.matched, p.counters.applied, p.counters.fired]).sort(),
      [
        ['count-syn', '3', '2', '1'],
        ['no-telnet', '1', '1', '0'],
        ['syn-flood', '3', '0', '0'],
      ],
    );
    res = bae('policy', 'list', '--pin-dir', pinDir);
    assert.match(res.stdout, /^NAME\s+PRIORITY\s+MATCHED\s+APPLIED\s+FIRED\s+BLOCKS\s+SOURCE\n/);

    res = bae('policy', 'show', '--pin-dir', pinDir, 'count-syn');
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /matched 3, applied 2, trigger fired 1, blocks 0/);
    assert.match(res.stdout, /trigger windows 1 \(on now: /);

    res = bae('events', '--pin-dir', pinDir, '--json');
    assert.equal(res.status, 0, res.stderr);
    const events = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; policy: string; value: string; src: string });
    assert.deepEqual(
      events.map((e) => [e.kind, e.policy, e.src]),
      [
        ['fire', 'count-syn', '198.51.100.9'],
        ['match', 'count-syn', '198.51.100.9'],
        ['match', 'count-syn', '198.51.100.9'],
      ],
    );

    // --follow: events arrive while the command runs; SIGINT ends it cleanly.
    const follower = spawn(process.execPath, [BAE, 'events', '--follow', '--json', '--pin-dir', pinDir], {
      env: { ...process.env, BAE_RUN_DIR: runDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      follower.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      const exited = new Promise<number | null>((resolve) => follower.on('close', (code) => resolve(code)));
      await new Promise((r) => setTimeout(r, 1000)); // the command is up and polling
      assert.equal(program.test(syn(82)).verdict, XDP.pass);
      // A bound on the wait, not on the command: a loaded machine starts node slowly (the event
      // waits in the ring buffer until the command reads it).
      const deadline = Date.now() + 20_000;
      while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const first = JSON.parse(out.split('\n')[0]!) as { kind: string; policy: string };
      assert.deepEqual([first.kind, first.policy], ['match', 'count-syn']);
      follower.kill('SIGINT');
      assert.equal(await exited, 0, 'events --follow exits 0 on SIGINT');
    } finally {
      if (follower.exitCode === null) follower.kill('SIGKILL');
    }

    res = bae('policy', 'delete', '--pin-dir', pinDir, 'no-telnet');
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /^2 policies active \(generation 1\): unchanged .*; removed no-telnet/);
    assert.equal(program.test(syn(23)).verdict, XDP.pass, 'telnet passes once the policy is deleted');
    res = bae('policy', 'delete', '--pin-dir', pinDir, 'no-such');
    assert.equal(res.status, 2);
    assert.match(res.stderr, /^bae: no applied policy named 'no-such'/);
    res = bae('policy', 'show', '--pin-dir', pinDir, 'no-telnet');
    assert.equal(res.status, 2);
    res = bae('policy', 'apply', '--pin-dir', pinDir, '--replace', POLICIES + '/port-scan.yaml');
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /^1 policy active \(generation 0\): added port-scan; removed (count-syn, syn-flood|syn-flood, count-syn)/);
  });

  it('bae unload removes the pins and the record of the applied policies with them', () => {
    assert.equal(bae('policy', 'apply', '--pin-dir', pinDir, path.join(POLICIES, 'syn-flood.yaml')).status, 0);
    const record = stateFile(pinDir);
    assert.ok(fs.existsSync(path.join(runDir, path.basename(record))), 'apply keeps a record of the set');
    const res = bae('unload', '--pin-dir', pinDir);
    assert.equal(res.status, 0, res.stderr);
    assert.equal(fs.existsSync(pinDir), false, 'no pins left');
    assert.equal(fs.existsSync(path.join(runDir, path.basename(record))), false, 'no record left');
  });
});
