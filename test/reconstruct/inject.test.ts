// `bae inject` in a lab: bae inline between client and server, a live TCP connection, and
// forged frames sent out of bae's server-facing port. tshark on the server, with checksum
// validation on, confirms that each kind is what it claims; the server's sockets show that an
// in-window segment is accepted and an out-of-window one is not, and that a RST resets; dumpcap
// counts the frames of a rate- and count-bounded storm. Then the re-sender of dropped records.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run, type Lab } from '../../src/lab';
import { Store } from '../../src/store';
import { assertFails } from '../lib/bae-cli';
import { createBaeLab, type BaeLab } from '../lib/bae-lab';
import { runNodeChild } from '../lib/child';
import { repoRoot } from '../lib/fixtures';
import { buildPacket } from '../lib/packets';
import {
  TCP_PORT,
  UDP_PORT,
  macOf,
  makeTempDir,
  readFrames,
  readRawFrames,
  startCapture,
  startClient,
  startServer,
  stopAll,
  type Reporter,
} from './inject-lab';

interface InjectJson {
  kind: string;
  sent: number;
  elapsedNs: string;
  tcp: { seq: number; ack: number; window: number } | null;
  endpoints: { sport: number; dport: number; srcMac: string; dstMac: string };
  frames: { kind: string; action: string; reason: string; origLen: number; repeat: number; data: string; ifindex: number; tsNs: string }[];
}

describe('bae inject in the lab', () => {
  let bl: BaeLab;
  let lab: Lab;
  let server: Reporter;
  let portMac: string;
  let serverMac: string;
  const tmp = makeTempDir();

  before(async () => {
    bl = createBaeLab('ij');
    lab = bl.lab;
    const load = bl.cli(['load', '--iface', lab.bae.clientPort, '--peer', lab.bae.serverPort]);
    assert.equal(load.status, 0, load.stderr);
    portMac = macOf(lab.ns.bae, lab.bae.serverPort);
    serverMac = macOf(lab.server.ns, lab.server.iface);
    server = startServer(lab);
    await server.waitFor((e) => e.ev === 'listening', 'server listening');
  });

  after(() => {
    stopAll();
    bl?.teardown();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** A new connection from the client; resolves once the server read its `hello`. */
  async function connect(to?: string): Promise<{ client: Reporter; sport: number }> {
    const client = startClient(lab, to);
    const { localPort } = await client.waitFor((e) => e.ev === 'connected', 'client connected');
    await server.waitFor((e) => e.ev === 'data' && e.peerPort === localPort, 'hello at the server');
    return { client, sport: localPort! };
  }

  /** `bae inject --json` for the client -> server conversation out of the server-facing port. */
  function inject(args: string[], dstMac: string[] = ['--dst-mac', serverMac], conversation = `${lab.client.ipv4},${lab.server.ipv4}`): InjectJson {
    const res = bl.cli(['inject', '--conversation', conversation, '--port', lab.bae.serverPort, ...dstMac, '--json', ...args]);
    assert.equal(res.status, 0, `bae inject ${args.join(' ')}: ${res.stderr}`);
    return JSON.parse(res.stdout) as InjectJson;
  }

  const received = (peerPort: number): string =>
    Buffer.concat(server.events.filter((e) => e.ev === 'data' && e.peerPort === peerPort).map((e) => Buffer.from(e.hex!, 'hex'))).toString('latin1');
  const payloadOf = (frameHex: string): string => Buffer.from(frameHex, 'hex').subarray(14 + 20 + 20).toString('latin1');

  test('each kind is what it claims: tshark on the server reads every frame byte-exact, with the flaw its name says', async () => {
    const { sport } = await connect();
    const cap = await startCapture(lab, path.join(tmp, 'kinds.pcapng'));
    const sent: { kind: string; frames: InjectJson['frames']; seq?: number }[] = [];
    let stopped = false;
    try {
      // The storm first: tshark calls an ACK a duplicate only when it follows the flow's last byte.
      const tcpFlow = ['--sport', String(sport), '--dport', String(TCP_PORT)];
      const udpFlow = ['--sport', '5000', '--dport', String(UDP_PORT)];
      const storm = inject(['--kind', 'tcp-dup-ack-storm', '--count', '3', '--rate', '1000', ...tcpFlow]);
      assert.equal(storm.sent, 3);
      sent.push({ kind: 'tcp-dup-ack-storm', frames: [storm.frames[0]!, storm.frames[0]!, storm.frames[0]!] });
      // None of these moves the server's next expected byte, so the RST lands on it exactly; the
      // valid data segment goes last (bae would not see the server's pure ACK of it).
      for (const kind of [
        'udp-datagram', 'ip-bad-checksum', 'tcp-bad-checksum', 'udp-bad-checksum', 'eth-truncated', 'ip-truncated',
        'tcp-truncated', 'udp-truncated', 'tcp-syn-fin', 'tcp-null', 'tcp-xmas', 'ip-bad-ihl', 'ip-bad-total-length', 'ip-tiny-fragment',
        'ip-overlapping-fragments', 'tcp-bad-options', 'tcp-out-of-window', 'tcp-rst', 'tcp-in-window',
      ]) {
        const udp = kind.startsWith('udp-');
        const out = inject(['--kind', kind, '--seed', '11', ...(udp ? udpFlow : tcpFlow)]);
        assert.ok(out.frames.every((f) => f.kind === 'injected' && f.action === 'inject' && f.reason === kind), JSON.stringify(out.frames));
        sent.push({ kind, frames: out.frames, seq: out.tcp?.seq });
        if (kind === 'tcp-rst') {
          // The RST resets the server's socket of that connection.
          await server.waitFor((e) => e.peerPort === sport && e.ev === 'error' && e.code === 'ECONNRESET', 'ECONNRESET at the server');
        }
      }
      await new Promise((r) => setTimeout(r, 200));
      await cap.stop();
      stopped = true;
    } finally {
      if (!stopped) await cap.stop().catch(() => undefined);
    }

    const flat = sent.flatMap((s) => s.frames.map((f) => ({ kind: s.kind, data: f.data })));
    const raw = readRawFrames(cap.file, portMac);
    assert.deepEqual(raw, flat.map((f) => f.data), 'every frame arrives, in order, byte for byte');

    const fields = [
      'frame.len', 'ip.checksum.status', 'tcp.checksum.status', 'udp.checksum.status', 'tcp.flags', 'ip.hdr_len', 'ip.len', 'ip.flags.mf',
      'ip.frag_offset', '_ws.malformed', '_ws.expert.message', 'ip.fragment.overlap.conflict', 'tcp.analysis.duplicate_ack', 'tcp.seq_raw',
    ];
    const rows = readFrames(cap.file, portMac, fields);
    assert.equal(rows.length, flat.length);
    const byKind = (kind: string) => rows.filter((_, i) => flat[i]!.kind === kind);
    const one = (kind: string) => {
      const r = byKind(kind);
      assert.equal(r.length, 1, kind);
      return r[0]!;
    };
    const clean = (r: Record<string, string>, what: string) => assert.equal(r['_ws.malformed'], '', `${what} is not malformed: ${r['_ws.expert.message']}`);

    const storm = byKind('tcp-dup-ack-storm');
    // (Fields come with every occurrence, '|'-joined: tshark repeats some in its analysis tree.)
    const first = (v: string | undefined) => (v ?? '').split('|')[0];
    assert.deepEqual(storm.map((r) => first(r['tcp.analysis.duplicate_ack'])), ['', '1', '1'], 'the 2nd and 3rd ACK are duplicates');
    assert.ok(storm.every((r) => r['tcp.flags'] === '0x0010'));
    for (const kind of ['tcp-in-window', 'udp-datagram']) {
      const r = one(kind);
      clean(r, kind);
      assert.equal(r['ip.checksum.status'], '1', `${kind}: IP checksum good`);
      assert.equal(r[kind === 'udp-datagram' ? 'udp.checksum.status' : 'tcp.checksum.status'], '1', `${kind}: L4 checksum good`);
    }
    assert.equal(one('ip-bad-checksum')['ip.checksum.status'], '0', 'IP checksum flagged bad');
    assert.deepEqual([one('tcp-bad-checksum')['ip.checksum.status'], one('tcp-bad-checksum')['tcp.checksum.status']], ['1', '0']);
    assert.deepEqual([one('udp-bad-checksum')['ip.checksum.status'], one('udp-bad-checksum')['udp.checksum.status']], ['1', '0']);
    assert.equal(one('eth-truncated')['frame.len'], '14');
    assert.match(one('eth-truncated')['_ws.malformed']!, /IPv4/);
    assert.match(one('ip-truncated')['_ws.malformed']!, /IPv4/);
    assert.match(one('tcp-truncated')['_ws.malformed']!, /TCP/);
    assert.match(one('udp-truncated')['_ws.malformed']!, /UDP/);
    assert.equal(one('tcp-syn-fin')['tcp.flags'], '0x0003');
    assert.equal(one('tcp-null')['tcp.flags'], '0x0000');
    assert.equal(one('tcp-xmas')['tcp.flags'], '0x0029');
    assert.match(one('ip-bad-ihl')['_ws.expert.message']!, /Bogus IP header length \(\d+, must be at least 20\)/);
    assert.match(one('ip-bad-total-length')['_ws.expert.message']!, /IPv4 total length exceeds packet length/);
    const tiny = one('ip-tiny-fragment');
    assert.deepEqual([tiny['ip.flags.mf'], tiny['ip.frag_offset'], tiny['ip.len']], ['1', '0', '28'], 'a first fragment of 8 bytes');
    const frags = byKind('ip-overlapping-fragments');
    assert.equal(frags.length, 2);
    assert.equal(frags[1]!['ip.fragment.overlap.conflict'], '1', 'tshark finds the overlap with different data');
    assert.match(one('tcp-bad-options')['_ws.expert.message']!, /too-short option length = 1 byte/);
    // The flow state's next expected byte, as the JSON gave it, against what tshark reads.
    const expected = sent.find((s) => s.kind === 'tcp-out-of-window')!.seq!;
    const ahead = (Number(one('tcp-out-of-window')['tcp.seq_raw']) - expected) >>> 0;
    assert.ok(ahead >= 2 ** 30, `out of window by ${ahead}`);
    assert.equal(Number(one('tcp-rst')['tcp.seq_raw']), sent.find((s) => s.kind === 'tcp-rst')!.seq);
    assert.equal(one('tcp-rst')['tcp.flags'], '0x0014');
    // No data of a flawed segment reached the server's socket: only the client's own hello.
    assert.equal(received(sport), 'hello');
  });

  test('a forged in-window segment is accepted by the receiving socket, an out-of-window one is not', async () => {
    const { sport } = await connect();
    const flow = ['--sport', String(sport), '--dport', String(TCP_PORT)];
    const oow = inject(['--kind', 'tcp-out-of-window', '--seed', '3', ...flow]);
    const first = inject(['--kind', 'tcp-in-window', '--seed', '4', ...flow]);
    const firstData = payloadOf(first.frames[0]!.data);
    assert.ok(firstData.length > 0);
    await server.waitFor(() => received(sport) === 'hello' + firstData, 'the forged segment at the server');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(received(sport), 'hello' + firstData, 'nothing else arrived: not the out-of-window data');
    assert.ok(!received(sport).includes(payloadOf(oow.frames[0]!.data)));
  });

  test('over IPv6 too: the receiving socket takes an in-window segment and not one with a bad checksum', async () => {
    const { sport } = await connect(lab.server.ipv6);
    const flow = ['--sport', String(sport), '--dport', String(TCP_PORT)];
    const conv = `${lab.client.ipv6},${lab.server.ipv6}`;
    const bad = inject(['--kind', 'tcp-bad-checksum', '--seed', '6', ...flow], undefined, conv);
    const good = inject(['--kind', 'tcp-in-window', '--seed', '7', ...flow], undefined, conv);
    const data = Buffer.from(good.frames[0]!.data, 'hex').subarray(14 + 40 + 20).toString('latin1');
    assert.equal(Buffer.from(good.frames[0]!.data, 'hex').readUInt16BE(12), 0x86dd);
    await server.waitFor(() => received(sport) === 'hello' + data, 'the IPv6 segment at the server');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(received(sport), 'hello' + data);
    assert.ok(!received(sport).includes(Buffer.from(bad.frames[0]!.data, 'hex').subarray(74).toString('latin1')));
  });

  test('segments of one call follow each other: three in-window segments join the stream in order', async () => {
    const { sport } = await connect();
    // No --dst-mac: the neighbour table of bae's namespace has the server's (put there by hand:
    // bae's ports have no addresses, so nothing resolves it there by itself).
    run(['ip', '-n', lab.ns.bae, 'neigh', 'replace', lab.server.ipv4, 'lladdr', serverMac, 'dev', lab.bae.serverPort, 'nud', 'permanent']);
    const out = inject(['--kind', 'tcp-in-window', '--count', '3', '--rate', '100', '--seed', '9', '--sport', String(sport), '--dport', String(TCP_PORT)], []);
    run(['ip', '-n', lab.ns.bae, 'neigh', 'del', lab.server.ipv4, 'dev', lab.bae.serverPort]);
    assert.equal(out.endpoints.dstMac, serverMac);
    assert.equal(out.endpoints.srcMac, portMac, 'the port\'s own MAC without --src-mac');
    assert.equal(out.sent, 3);
    const data = out.frames.map((f) => payloadOf(f.data));
    let seq = out.tcp!.seq;
    for (const f of out.frames) {
      assert.equal(Buffer.from(f.data, 'hex').readUInt32BE(14 + 20 + 4), seq);
      seq = (seq + payloadOf(f.data).length) >>> 0;
    }
    await server.waitFor(() => received(sport) === 'hello' + data.join(''), 'the three segments at the server');
  });

  test('count and rate bound a storm: 200 frames at 1000/s arrive, no more, over at least 190 ms, and all 200 are stored', async () => {
    const { sport } = await connect();
    const cap = await startCapture(lab, path.join(tmp, 'rate.pcapng'));
    const storedStorm = (): number => {
      const store = Store.open(bl.env.BAE_DB!, { readonly: true });
      try {
        return [...store.packets({ kind: 'injected' })].filter((p) => p.reason === 'tcp-dup-ack-storm' && p.action === 'inject').length;
      } finally {
        store.close();
      }
    };
    const storedBefore = storedStorm();
    let out: InjectJson;
    try {
      out = inject(['--kind', 'tcp-dup-ack-storm', '--count', '200', '--rate', '1000', '--sport', String(sport), '--dport', String(TCP_PORT)]);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await cap.stop();
    }
    assert.equal(out.sent, 200);
    const rows = readFrames(cap.file, portMac, ['frame.time_epoch']);
    assert.equal(rows.length, 200, 'exactly the count arrived');
    const t = rows.map((r) => Number(r['frame.time_epoch']));
    // Batches of rate x 10 ms = 10 frames, every 10 ms: the 200th leaves 190 ms after the 1st.
    // Frame i may not leave before floor(i / 10) x 10 ms after the first (less 1 ms of capture noise).
    for (let i = 0; i < t.length; i++) {
      const earliest = Math.floor(i / 10) * 0.01 - 0.001;
      assert.ok(t[i]! - t[0]! >= earliest, `frame ${i} at ${((t[i]! - t[0]!) * 1000).toFixed(2)} ms, not before ${(earliest * 1000).toFixed(1)} ms`);
    }
    assert.ok(Number(out.elapsedNs) >= 188e6, `elapsed ${out.elapsedNs} ns`);
    assert.equal(storedStorm() - storedBefore, 200, 'every frame sent is stored, kind injected, with its reason');
  });

  test('bad requests change nothing and say what is wrong', async () => {
    const conv = ['--conversation', `${lab.client.ipv4},${lab.server.ipv4}`];
    assertFails(bl.cli(['inject', ...conv, '--kind', 'tcp-teapot', '--port', lab.bae.serverPort]), 2, /unknown kind 'tcp-teapot'/);
    // More than one flow between the two by now.
    assertFails(bl.cli(['inject', ...conv, '--kind', 'tcp-rst', '--port', lab.bae.serverPort, '--dst-mac', serverMac]), 2, /TCP flows between 10\.199\.0\.1 and 10\.199\.0\.2 .*choose one with --sport and --dport/);
    assertFails(bl.cli(['inject', ...conv, '--kind', 'tcp-rst', '--count', '0']), 2, /--count/);
    assertFails(bl.cli(['inject', ...conv, '--kind', 'tcp-rst', '--rate', '20000000']), 2, /--rate/);
    assertFails(bl.cli(['inject', ...conv, '--kind', 'tcp-dup-ack-storm', '--count', '10000000', '--rate', '1', '--port', lab.bae.serverPort, '--dst-mac', serverMac]), 2, /more than the 3600 s/);
    assertFails(bl.cli(['inject', '--conversation', `${lab.client.ipv4},10.199.0.77`, '--kind', 'tcp-rst', '--port', lab.bae.serverPort, '--dst-mac', serverMac]), 1, /seen no conversation between 10\.199\.0\.1 and 10\.199\.0\.77/);
    assertFails(bl.cli(['inject', ...conv, '--kind', 'udp-datagram', '--port', lab.bae.serverPort, '--dst-mac', serverMac]), 2, /needs the conversation's UDP ports/);
    assertFails(bl.cli(['inject', ...conv, '--kind', 'tcp-rst', '--dst-mac', serverMac, '--sport', '1', '--dport', '2']), 1, /no TCP flow from 10\.199\.0\.1:1 to 10\.199\.0\.2:2/);
    assertFails(bl.cli(['inject', ...conv, '--kind', 'udp-datagram', '--sport', '1', '--dport', '2', '--dst-mac', serverMac]), 2, /inline on to-client and to-server: say which port/);
    assertFails(bl.cli(['inject', ...conv, '--kind', 'udp-datagram', '--sport', '1', '--dport', '2', '--port', lab.bae.serverPort]), 2, /no MAC address known for 10\.199\.0\.2/);
    assertFails(bl.cli(['inject', ...conv, '--kind', 'udp-datagram', '--sport', '1', '--dport', '2', '--port', 'nosuchport', '--dst-mac', serverMac]), 1, /no network interface named 'nosuchport'/);
    assertFails(bl.cli(['inject', '--conversation', 'fd00:bae::1,fd00:bae::2', '--kind', 'ip-bad-ihl']), 2, /ip-bad-ihl is a flaw of the IPv4 header/);
    assertFails(bl.cli(['inject', '--conversation', '10.199.0.1,fd00:bae::2', '--kind', 'tcp-rst']), 2, /not of one address family/);
    assertFails(bl.cli(['inject', '--conversation', '10.199.0.1,example', '--kind', 'tcp-rst']), 2, /'example' is not an IPv4 or IPv6 address/);
  });

  test('dropped records go out again byte-exact after --after, rate-bounded; others are skipped with the reason', async () => {
    const frames = [0, 1, 2, 3, 4].map((i) =>
      buildPacket({
        eth: { src: portMac, dst: serverMac },
        ip: { version: 4, src: lab.client.ipv4, dst: lab.server.ipv4, id: 100 + i },
        l4: { proto: 'udp', sport: 6000 + i, dport: UDP_PORT, payload: Buffer.from(`lost datagram ${i}`) },
      }).frame,
    );
    const rec = (data: Buffer, kind: string, origLen = data.length) =>
      ({ tsNs: '1', ifindex: 0, kind, policy: 'lossy', action: 'loss', reason: 'seeded loss', origLen, data: data.toString('hex') });
    const records = [rec(frames[0]!, 'dropped'), rec(frames[1]!, 'captured'), rec(frames[1]!, 'dropped'), rec(frames[2]!.subarray(0, 40), 'dropped', frames[2]!.length),
      rec(frames[2]!, 'dropped'), rec(frames[3]!, 'dropped'), rec(frames[4]!, 'dropped')];
    const cap = await startCapture(lab, path.join(tmp, 'resend.pcapng'));
    let result: { sent: { kind: string; action: string; policy: string; reason: string; data: string }[]; skipped: { index: number; why: string }[]; startMs: number };
    try {
      result = await runNodeChild(
        `const r = require(${JSON.stringify(path.join(repoRoot, 'dist/src/reconstruct/index.js'))});
         const records = ${JSON.stringify(records)}.map((x) => ({ ...x, tsNs: BigInt(x.tsNs), data: Buffer.from(x.data, 'hex') }));
         const ifindex = dp.resolveIfindex(${JSON.stringify(lab.bae.serverPort)});
         const startMs = Date.now();
         const out = await r.resendDropped(records, { egress: () => ifindex, afterMs: 500, rate: 20 });
         return { startMs, skipped: out.skipped, sent: out.sent.map((s) => ({ kind: s.kind, action: s.action, policy: s.policy, reason: s.reason, data: s.data.toString('hex') })) };`,
        { prefix: ['nsenter', `--net=/run/netns/${lab.ns.bae}`], timeoutMs: 20_000, label: 'resendDropped in the bae namespace' },
      );
      await server.waitFor((e) => e.ev === 'udp' && e.peerPort === 6004, 'the last datagram at the server');
    } finally {
      await cap.stop();
    }
    const want = frames.map((f) => f.toString('hex'));
    assert.deepEqual(result.sent.map((s) => s.data), want);
    assert.ok(result.sent.every((s) => s.kind === 'reconstructed' && s.action === 'reconstruct' && s.policy === 'lossy' && s.reason === 'seeded loss'));
    assert.deepEqual(result.skipped.map((s) => s.index), [1, 3]);
    assert.match(result.skipped[0]!.why, /kind 'captured', not 'dropped'/);
    assert.match(result.skipped[1]!.why, /only 40 of its \d+ bytes/);
    assert.deepEqual(readRawFrames(cap.file, portMac), want, 'byte-exact on the server\'s wire');
    const arrivals = server.events.filter((e) => e.ev === 'udp' && e.peerPort! >= 6000 && e.peerPort! <= 6004);
    assert.deepEqual(arrivals.map((e) => Buffer.from(e.hex!, 'hex').toString()), [0, 1, 2, 3, 4].map((i) => `lost datagram ${i}`));
    // --after 500 ms: none before; 20/s: 50 ms between frames, so the 5th at least 200 ms after the
    // 1st (less 1 ms of capture noise). Times as the capture stamped the frames on the server.
    const t = readFrames(cap.file, portMac, ['frame.time_epoch']).map((r) => Number(r['frame.time_epoch']) * 1000);
    assert.ok(t[0]! - result.startMs >= 500, `first after ${t[0]! - result.startMs} ms`);
    assert.ok(t[4]! - t[0]! >= 199, `spread ${t[4]! - t[0]!} ms`);
  });
});
