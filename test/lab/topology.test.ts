// The lab itself: what `bae lab up` builds, that it is idempotent, that `down` removes also a
// partial lab, and that `lab exec` keeps the host's bpffs visible between calls.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, test } from 'node:test';
import { LAB_NODES, labDown, labLinuxBridge, labStatus, labTopology, netnsExists, ping, run } from '../../src/lab';
import { BAE_BIN, bae } from '../lib/bae-cli';

const prefix = `bt${process.pid}-`;
const lab = labTopology(prefix);
const pinProbe = `/sys/fs/bpf/bae-test-${process.pid}-exec`;

function labCli(args: string[]) {
  return bae(['lab', args[0]!, '--prefix', prefix, ...args.slice(1)]);
}

function onNode(node: string, cmd: string[]) {
  return bae(['lab', 'exec', '--prefix', prefix, node, '--', ...cmd]);
}

describe('the lab', () => {
  after(() => {
    fs.rmSync(pinProbe, { recursive: true, force: true });
    labDown(prefix);
  });

  test('lab up builds client, bae and server with their addresses and no default routes, and says so when run twice', () => {
    const first = labCli(['up']);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`lab '${prefix}' is up`));
    const again = labCli(['up']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /is already up/);

    const st = JSON.parse(labCli(['status', '--json']).stdout);
    assert.equal(st.up, true);
    const ifs = Object.fromEntries(
      st.nodes.map((n: { node: string; interfaces: { name: string; up: boolean; addresses: string[] }[] }) => [
        n.node,
        Object.fromEntries(n.interfaces.map((i) => [i.name, i.addresses])),
      ]),
    );
    assert.deepEqual(ifs, {
      client: { eth0: ['10.199.0.1/24', '10.199.0.3/24', 'fd00:bae::1/64'] },
      bae: { 'to-client': [], 'to-server': [] },
      server: { eth0: ['10.199.0.2/24', 'fd00:bae::2/64'] },
    });
    for (const node of LAB_NODES) {
      for (const family of ['-4', '-6']) {
        assert.equal(run(['ip', '-n', lab.ns[node], family, 'route', 'show', 'default']).trim(), '', `${node} has a default route`);
      }
    }
    // bae's ports do not even speak IPv6 for themselves.
    assert.equal(run(['ip', '-n', lab.bae.ns, '-6', 'addr', 'show']).trim(), '');
  });

  test('end hosts compute their own checksums and keep GRO on', () => {
    for (const node of ['client', 'server'] as const) {
      const k = onNode(node, ['ethtool', '-k', lab[node].iface]).stdout;
      assert.match(k, /^tx-checksumming: off/m, `${node} tx checksum offload`);
      assert.match(k, /^generic-receive-offload: on/m, `${node} GRO`);
    }
  });

  test('nothing passes between the hosts until something forwards between bae\'s ports', async () => {
    assert.deepEqual(await ping(lab, 'client', lab.server.ipv4, { count: 1, waitS: 1 }), { transmitted: 1, received: 0 });
    labLinuxBridge(lab, true);
    try {
      assert.deepEqual(await ping(lab, 'client', lab.server.ipv4, { count: 2 }), { transmitted: 2, received: 2 });
      assert.deepEqual(await ping(lab, 'client', lab.server.ipv6, { count: 2 }), { transmitted: 2, received: 2 });
      assert.deepEqual(await ping(lab, 'client', lab.server.ipv4, { count: 2, source: lab.client.ipv4Second }), {
        transmitted: 2,
        received: 2,
      });
    } finally {
      labLinuxBridge(lab, false);
    }
  });

  test('lab exec keeps the host\'s bpffs, so what one call pins the next one sees', () => {
    assert.equal(onNode('bae', ['mkdir', pinProbe]).status, 0);
    assert.equal(onNode('client', ['test', '-d', pinProbe]).status, 0, 'visible from another node');
    assert.equal(fs.existsSync(pinProbe), true, 'visible from the host');
    assert.equal(onNode('bae', ['rmdir', pinProbe]).status, 0);
  });

  test('lab down removes everything, also a partial lab, and up repairs a partial one', () => {
    const down = labCli(['down']);
    assert.equal(down.status, 0, down.stderr);
    assert.match(down.stdout, new RegExp(`removed ${prefix}client, ${prefix}bae, ${prefix}server`));
    for (const node of LAB_NODES) assert.equal(netnsExists(lab.ns[node]), false);

    // What an `up` interrupted after its first veth would leave.
    run(['ip', 'netns', 'add', lab.ns.client]);
    run(['ip', 'netns', 'add', lab.ns.bae]);
    run(['ip', '-n', lab.ns.bae, 'link', 'add', 'to-client', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', lab.ns.client]);
    assert.equal(labStatus(prefix).up, false);
    const up = labCli(['up']);
    assert.equal(up.status, 0, up.stderr);
    assert.equal(labStatus(prefix).up, true);

    run(['ip', 'netns', 'del', lab.ns.server]);
    assert.match(labCli(['status']).stdout, /INCOMPLETE/);
    assert.equal(labCli(['down']).status, 0);
    for (const node of LAB_NODES) assert.equal(netnsExists(lab.ns[node]), false);
    assert.match(labCli(['down']).stdout, /was not there; nothing to remove/);
  });

  test('after the lab goes down under a loaded bae, status says so and unload still removes every pin', () => {
    const pinDir = `/sys/fs/bpf/bae-test-${process.pid}-gone`;
    try {
      assert.equal(labCli(['up']).status, 0);
      const load = onNode('bae', [process.execPath, BAE_BIN, 'load', '--iface', lab.bae.clientPort, '--pin-dir', pinDir]);
      assert.equal(load.status, 0, load.stderr);
      assert.equal(labCli(['down']).status, 0);
      const st = bae(['status', '--json', '--pin-dir', pinDir]);
      assert.equal(st.status, 0, st.stderr);
      const s = JSON.parse(st.stdout);
      assert.equal(s.loaded, true);
      assert.deepEqual(s.ports.map((p: { iface: string; attached: boolean }) => [p.iface, p.attached]), [['to-client', false]]);
      const un = bae(['unload', '--pin-dir', pinDir]);
      assert.equal(un.status, 0, un.stderr);
      assert.equal(fs.existsSync(pinDir), false);
    } finally {
      fs.rmSync(pinDir, { recursive: true, force: true });
    }
  });
});
