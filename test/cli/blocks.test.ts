// `bae block`, `bae unblock`, `bae blocks` on the local bae in the lab (client <-> bae inline <->
// server): a blocked client's pings stop and another address of the same client still passes;
// an unblock lets them through; a block that expired lets them through with no bae process
// running (the expiry is in the kernel entry); IPv6 alike; `bae blocks --json` lists address,
// expiry and time left; bad input is refused and changes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertFails, bae } from '../lib/bae-cli';
import { createBaeLab, type BaeLab } from '../lib/bae-lab';
import { pingReplies } from '../lib/ping';

interface BlockJson {
  address: string;
  version: number;
  expiryNs: string;
  expires: string;
  remainingMs: number;
}

describe('bae block, unblock and blocks in the lab', () => {
  let bl: BaeLab;
  before(() => {
    bl = createBaeLab('blk');
    const loaded = bl.cli(['load', '--iface', bl.lab.bae.clientPort, '--peer', bl.lab.bae.serverPort]);
    assert.equal(loaded.status, 0, `bae load: ${loaded.stderr}`);
  });
  after(() => bl?.teardown());

  const blocks = (): BlockJson[] => {
    const res = bl.cli(['blocks', '--json']);
    assert.equal(res.status, 0, res.stderr);
    return JSON.parse(res.stdout) as BlockJson[];
  };

  it('a blocked client gets no answer, its other address does, and unblock lets it through again', () => {
    const { client, server } = bl.lab;
    assert.equal(pingReplies(bl.lab, client.ipv4, server.ipv4), 3, 'pings pass before any block');
    assert.deepEqual(blocks(), []);

    const res = bl.cli(['block', client.ipv4, '--ttl', '60s', '--reason', 'test']);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`blocked ${client.ipv4.replace(/\./g, '\\.')} for 1m`));
    assert.equal(pingReplies(bl.lab, client.ipv4, server.ipv4), 0, 'the blocked address gets no reply');
    assert.equal(pingReplies(bl.lab, client.ipv4Second, server.ipv4), 3, 'the client\'s other address is not blocked');

    const list = blocks();
    assert.equal(list.length, 1);
    assert.equal(list[0]!.address, client.ipv4);
    assert.equal(list[0]!.version, 4);
    assert.match(list[0]!.expiryNs, /^\d+$/, 'a 64-bit value as a decimal string');
    assert.ok(list[0]!.remainingMs > 50_000 && list[0]!.remainingMs <= 60_000, `remaining ${list[0]!.remainingMs} ms`);
    const wall = Date.parse(list[0]!.expires) - Date.now();
    assert.ok(Math.abs(wall - list[0]!.remainingMs) < 5_000, 'expires is now + remaining');

    const un = bl.cli(['unblock', client.ipv4]);
    assert.equal(un.status, 0, un.stderr);
    assert.match(un.stdout, /unblocked/);
    assert.equal(pingReplies(bl.lab, client.ipv4, server.ipv4), 3, 'pings pass after unblock');
    assert.deepEqual(blocks(), []);
    const again = bl.cli(['unblock', client.ipv4]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /was not blocked/);
  });

  it('an expired block lets the client through with no bae process running', async () => {
    const { client, server } = bl.lab;
    const res = bl.cli(['block', client.ipv4, '--ttl', '3s', '--json']);
    assert.equal(res.status, 0, res.stderr);
    const t0 = Date.now();
    // No bae process runs from here on: only the kernel entry and its expiry.
    assert.equal(pingReplies(bl.lab, client.ipv4, server.ipv4, 2), 0, 'blocked while the TTL runs');
    const left = 3_000 - (Date.now() - t0);
    await new Promise((r) => setTimeout(r, Math.max(0, left) + 500));
    assert.equal(pingReplies(bl.lab, client.ipv4, server.ipv4), 3, 'the block ended on its own');
    assert.deepEqual(blocks(), [], 'an expired entry is not listed');
  });

  it('blocks an IPv6 address', () => {
    const { client, server } = bl.lab;
    assert.equal(pingReplies(bl.lab, client.ipv6, server.ipv6), 3, 'IPv6 pings pass before the block');
    const res = bl.cli(['block', client.ipv6, '--ttl', '1m']);
    assert.equal(res.status, 0, res.stderr);
    assert.equal(pingReplies(bl.lab, client.ipv6, server.ipv6), 0, 'the blocked IPv6 address gets no reply');
    assert.equal(pingReplies(bl.lab, client.ipv4, server.ipv4), 3, 'IPv4 of the same client passes');
    assert.deepEqual(blocks().map((b) => [b.address, b.version]), [[client.ipv6, 6]]);
    assert.equal(bl.cli(['unblock', client.ipv6]).status, 0);
    assert.equal(pingReplies(bl.lab, client.ipv6, server.ipv6), 3);
  });

  it('blocks a prefix: every address in it, and none outside', () => {
    const { client, server } = bl.lab;
    // 10.199.0.0/31 holds the client's first address (.1), not its second (.3) nor the server (.2).
    const res = bl.cli(['block', '10.199.0.0/31', '--ttl', '1m']);
    assert.equal(res.status, 0, res.stderr);
    assert.equal(pingReplies(bl.lab, client.ipv4, server.ipv4), 0, 'an address inside the prefix gets no reply');
    assert.equal(pingReplies(bl.lab, client.ipv4Second, server.ipv4), 3, 'an address outside it does');
    assert.deepEqual(blocks().map((b) => [b.address, b.version]), [['10.199.0.0/31', 4]]);
    assert.equal(bl.cli(['unblock', '10.199.0.0/31']).status, 0);
    assert.equal(pingReplies(bl.lab, client.ipv4, server.ipv4), 3, 'unblocked');
    assert.deepEqual(blocks(), []);
  });

  it('refuses to block what a protected prefix covers, naming it, and changes nothing', () => {
    const { client, server } = bl.lab;
    assert.equal(bl.cli(['protect', 'add', `${client.ipv4Second}`]).status, 0);
    try {
      assertFails(bl.cli(['block', client.ipv4Second, '--ttl', '1m']), 2, new RegExp(`^bae: ${client.ipv4Second.replace(/\./g, '\\.')} is protected \\(${client.ipv4Second.replace(/\./g, '\\.')}/32`));
      assertFails(bl.cli(['block', '10.199.0.0/24', '--ttl', '1m']), 2, /^bae: 10\.199\.0\.0\/24 is protected/);
      assert.deepEqual(blocks(), []);
      assert.equal(pingReplies(bl.lab, client.ipv4Second, server.ipv4), 3);
    } finally {
      bl.cli(['protect', 'remove', `${client.ipv4Second}`]);
    }
  });

  it('refuses a prefix with host bits, a bad address and a bad TTL, and changes nothing', () => {
    const { client } = bl.lab;
    assertFails(bl.cli(['block', '10.199.0.1/24', '--ttl', '1m']), 2, /^bae: '10\.199\.0\.1\/24' has host bits set below \/24 \(did you mean 10\.199\.0\.0\/24\?\)/);
    assertFails(bl.cli(['block', 'nowhere', '--ttl', '1m']), 2, /^bae: 'nowhere' is not an IPv4 or IPv6 address/);
    assertFails(bl.cli(['block', client.ipv4, '--ttl', '5 minutes']), 2, /--ttl.*'5 minutes' is not a duration/);
    assertFails(bl.cli(['block', client.ipv4]), 2, /--ttl/);
    assertFails(bl.cli(['unblock', '::g']), 2, /'::g' is not an IPv4 or IPv6 address/);
    assert.deepEqual(blocks(), []);
  });

  it('escalates a repeat offender\'s block with --escalate, and bae blocks --json counts its offences', () => {
    const { client, server } = bl.lab;
    const blockJson = (args: string[]) => {
      const res = bl.cli(['block', client.ipv4, '--json', ...args]);
      assert.equal(res.status, 0, res.stderr);
      return JSON.parse(res.stdout) as BlockJson & { offences: number };
    };
    try {
      const first = blockJson(['--ttl', '30s', '--escalate', '3', '--max-ttl', '200s']);
      assert.deepEqual([first.offences, Math.round(first.remainingMs)], [1, 30_000]);
      assert.equal(pingReplies(bl.lab, client.ipv4, server.ipv4), 0, 'blocked');
      const second = blockJson(['--ttl', '30s', '--escalate', '3', '--max-ttl', '200s']);
      assert.deepEqual([second.offences, Math.round(second.remainingMs)], [2, 90_000], 'x3');
      const third = blockJson(['--ttl', '30s', '--escalate', '3', '--max-ttl', '200s']);
      assert.deepEqual([third.offences, Math.round(third.remainingMs)], [3, 200_000], 'x9, at most --max-ttl');
      const listed = blocks().find((b) => b.address === client.ipv4) as (BlockJson & { offences: number }) | undefined;
      assert.equal(listed?.offences, 3);
      const plain = blockJson(['--ttl', '30s']);
      assert.deepEqual([plain.offences, Math.round(plain.remainingMs)], [3, 30_000], 'without --escalate: the ttl, the history unchanged');
      assertFails(bl.cli(['block', client.ipv4, '--ttl', '1m', '--forget', '1h']), 2, /^bae: --max-ttl and --forget need --escalate FACTOR/);
      assertFails(bl.cli(['block', client.ipv4, '--ttl', '2d', '--escalate', '2']), 2, /^bae: --max-ttl 1d \(the default\) is shorter than --ttl 2d/);
      assertFails(bl.cli(['block', client.ipv4, '--ttl', '1m', '--escalate', '1']), 2, /--escalate.*'1' is not a whole number from 2 to 16/);
    } finally {
      bl.cli(['unblock', client.ipv4]);
    }
  });

  it('says bae is not loaded where it is not', () => {
    assertFails(bae(['blocks', '--pin-dir', `${bl.pinDir}-none`], { lab: bl.lab, node: 'bae' }), 1, /^bae: bae is not loaded/);
  });
});
