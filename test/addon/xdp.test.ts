import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { attachXdp, loadCollection, xdpQuery, type Collection, type XdpStatus } from '../../src/datapath';
import { bpfFixture, testPinDir } from '../lib/fixtures';
import { createNetnsWithVeth, type NetnsWithVeth } from '../lib/netns';

// The addon works in the caller's network namespace, so everything that touches the veth runs
// in a child process inside the namespace the test made (test/lib/netns.ts).

interface ErrorSeen {
  code: string;
  message: string;
}

describe('attachXdp on a veth inside a test namespace', () => {
  let ns: NetnsWithVeth;
  before(() => {
    ns = createNetnsWithVeth('xdp');
  });
  after(() => ns?.remove());

  test('native and generic attach, refusal over an existing program, replace, detach on close and on exit', async () => {
    const [a, b] = ns.veth;
    const pinDir = testPinDir('xdp');
    const out = await ns.runNode<Record<string, unknown>>(`
      const fs = require('node:fs');
      const catchErr = (fn) => { try { fn(); return 'no error'; } catch (e) { return { code: e.code, message: e.message }; } };
      const coll = dp.loadCollection(${JSON.stringify(bpfFixture('addon_fixture'))});
      const pass = coll.program('xdp_pass'), other = coll.program('xdp_fixture');
      const a = ${JSON.stringify(a)}, b = ${JSON.stringify(b)}, pinDir = ${JSON.stringify(pinDir)};
      const out = { passId: pass.id, otherId: other.id };
      try {
        out.before = dp.xdpQuery(a);
        const link = dp.attachXdp({ program: pass, iface: a, mode: 'native' });
        out.link = { id: link.id, ifindex: link.ifindex, progId: link.progId, fd: link.fd };
        out.ifindexA = dp.resolveIfindex(a);
        out.native = dp.xdpQuery(a);
        out.again = catchErr(() => dp.attachXdp({ program: other, iface: a, mode: 'native' }));
        out.againGeneric = catchErr(() => dp.attachXdp({ program: other, iface: a, mode: 'generic' }));
        out.stillNative = dp.xdpQuery(a);
        const replaced = dp.attachXdp({ program: other, iface: a, mode: 'native', replace: true });
        out.replaced = dp.xdpQuery(a);
        link.close();
        link.close();
        out.afterOldClose = dp.xdpQuery(a);
        replaced.close();
        out.afterClose = dp.xdpQuery(a);

        const g = dp.attachXdp({ program: pass, iface: b, mode: 'generic' });
        out.generic = dp.xdpQuery(b);
        g.detach();
        out.afterDetach = dp.xdpQuery(b);

        dp.attachXdpLegacy(pass, b, 'generic');
        out.legacy = dp.xdpQuery(b);
        out.overLegacy = catchErr(() => dp.attachXdp({ program: other, iface: b, mode: 'native' }));
        const l3 = dp.attachXdp({ program: other, iface: b, mode: 'native', replace: true });
        out.replacedLegacy = dp.xdpQuery(b);

        l3.pin(pinDir + '/link');
        l3.close();
        out.pinnedAfterClose = dp.xdpQuery(b);
        const reopened = dp.openPinnedLink(pinDir + '/link');
        out.reopenedId = reopened.id;
        reopened.unpin();
        reopened.close();
        out.afterUnpin = dp.xdpQuery(b);
        out.pinDirLeft = fs.readdirSync(pinDir);

        // Left attached on purpose: the process exit must take it away.
        dp.attachXdp({ program: pass, iface: a, mode: 'generic' });
        out.leftAttached = dp.xdpQuery(a);
        out.nodev = catchErr(() => dp.attachXdp({ program: pass, iface: 'btnosuchif0', mode: 'native' }));
        out.badMode = catchErr(() => dp.attachXdp({ program: pass, iface: a, mode: 'turbo' }));
      } finally {
        try { fs.rmSync(pinDir, { recursive: true, force: true }); } catch {}
      }
      return out;
    `);

    const none = (ifindex: number): XdpStatus => ({ ifindex });
    const passId = out.passId as number;
    const otherId = out.otherId as number;
    const ifA = out.ifindexA as number;
    const ifB = (out.generic as XdpStatus).ifindex;
    assert.deepEqual(out.before, none(ifA));
    const link = out.link as { id: number; ifindex: number; progId: number; fd: number };
    assert.equal(link.ifindex, ifA);
    assert.equal(link.progId, passId);
    assert.ok(link.id > 0 && link.fd > 0);
    assert.deepEqual(out.native, { ifindex: ifA, mode: 'native', progId: passId, progName: 'xdp_pass', linkId: link.id });

    const again = out.again as ErrorSeen;
    assert.equal(again.code, 'EEXIST');
    assert.match(again.message, new RegExp(`^attachXdp\\(${a}\\): interface ${a} already has XDP program 'xdp_pass' \\(id ${passId}, native mode, link ${link.id}\\); pass replace`));
    assert.equal((out.againGeneric as ErrorSeen).code, 'EEXIST');
    assert.deepEqual(out.stillNative, out.native);

    assert.equal((out.replaced as XdpStatus).progId, otherId);
    assert.equal((out.replaced as XdpStatus).mode, 'native');
    assert.deepEqual(out.afterOldClose, out.replaced, 'closing the detached old link must not touch the new one');
    assert.deepEqual(out.afterClose, none(ifA), 'closing an unpinned link detaches');

    assert.equal((out.generic as XdpStatus).mode, 'generic');
    assert.equal((out.generic as XdpStatus).progId, passId);
    assert.deepEqual(out.afterDetach, none(ifB));

    assert.equal((out.legacy as XdpStatus).mode, 'generic');
    assert.equal((out.legacy as XdpStatus).linkId, undefined, 'a netlink attachment has no link');
    const overLegacy = out.overLegacy as ErrorSeen;
    assert.equal(overLegacy.code, 'EEXIST');
    assert.match(overLegacy.message, /'xdp_pass' \(id \d+, generic mode, netlink\)/);
    assert.equal((out.replacedLegacy as XdpStatus).mode, 'native');
    assert.equal((out.replacedLegacy as XdpStatus).progId, otherId);

    assert.equal((out.pinnedAfterClose as XdpStatus).progId, otherId, 'a pinned link outlives its handle');
    assert.ok((out.reopenedId as number) > 0);
    assert.deepEqual(out.afterUnpin, none(ifB));
    assert.deepEqual(out.pinDirLeft, []);

    assert.equal((out.leftAttached as XdpStatus).mode, 'generic');
    const nodev = out.nodev as ErrorSeen;
    assert.equal(nodev.code, 'ENODEV');
    assert.match(nodev.message, /btnosuchif0/);
    assert.equal((out.badMode as ErrorSeen).code, 'EINVAL');

    // A new process sees nothing attached: exiting released the last link.
    const later = await ns.runNode<XdpStatus[]>(`return [dp.xdpQuery(${JSON.stringify(a)}), dp.xdpQuery(${JSON.stringify(b)})];`);
    assert.deepEqual(later, [none(ifA), none(ifB)]);
  });
});

describe('attachXdp in the current namespace', () => {
  let coll: Collection;
  before(() => {
    coll = loadCollection(bpfFixture('addon_fixture'));
  });
  after(() => coll?.close());

  test('a missing interface is ENODEV naming it, and nothing is attached', () => {
    assert.throws(() => attachXdp({ program: coll.program('xdp_pass'), iface: 'btnosuch0', mode: 'generic' }), {
      code: 'ENODEV',
      message: "attachXdp(btnosuch0): no network interface named 'btnosuch0'",
    });
    assert.throws(() => attachXdp({ program: coll.program('xdp_pass'), iface: 0x7ffffff0, mode: 'generic' }), { code: 'ENODEV', message: /index 2147483632/ });
    assert.throws(() => xdpQuery('btnosuch0'), { code: 'ENODEV', message: /btnosuch0/ });
  });
});

describe('Program.test with live frames', () => {
  let ns: NetnsWithVeth;
  before(() => {
    ns = createNetnsWithVeth('live');
  });
  after(() => ns?.remove());

  test('frames the program bounces with XDP_TX really leave the ingress device and reach its veth peer', async () => {
    const [a, b] = ns.veth;
    const out = await ns.runNode<{ verdict: number; dataLength: number; counted: string; delivered: number }>(`
      const { execFileSync } = require('node:child_process');
      const rxPackets = () => JSON.parse(execFileSync('ip', ['-j', '-s', 'link', 'show', 'dev', ${JSON.stringify(b)}], { encoding: 'utf8' }))[0].stats64.rx.packets;
      const coll = dp.loadCollection(${JSON.stringify(bpfFixture('addon_fixture'))});
      // A veth peer only takes XDP-transmitted frames when it has NAPI: any XDP program gives it that.
      const peer = dp.attachXdp({ program: coll.program('xdp_pass'), iface: ${JSON.stringify(b)}, mode: 'native' });
      try {
        const before = rxPackets();
        const frame = Buffer.alloc(60);
        Buffer.from([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5, 0x10]).copy(frame);
        const res = coll.program('xdp_fixture').test(frame, { repeat: 1000, liveFrames: true, ctxIn: { ingressIfindex: dp.resolveIfindex(${JSON.stringify(a)}) } });
        let delivered = 0;
        for (let i = 0; i < 100 && delivered < 1000; i++) {
          delivered = rxPackets() - before;
          if (delivered < 1000) await new Promise((r) => setTimeout(r, 10));
        }
        const counted = dp.sumPerCpu(coll.map('counters').lookupPerCpu(Buffer.alloc(4))).toString();
        return { verdict: res.verdict, dataLength: res.data.length, counted, delivered };
      } finally {
        peer.close();
        coll.close();
      }
    `);
    assert.equal(out.verdict, 0, 'the kernel reports no verdict for live frames');
    assert.equal(out.dataLength, 0, 'live frames return no output packet');
    assert.equal(out.counted, '1000', 'the program ran once per frame');
    // The veth's own IPv6 housekeeping (router solicitation, DAD) may add a few frames.
    assert.ok(out.delivered >= 1000 && out.delivered < 1050, `every bounced frame arrived at the peer (rx ${out.delivered})`);
  });
});
