// Fidelity of the emulation actions in the kernel (BPF_PROG_TEST_RUN, test clock, fixed seeds).
// Statistical bounds come from the distributions, not from tuning: two-sided alpha 0.001
// (z = 3.2905) for every estimate.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { XDP } from '../../src/datapath/layout';
import { parseFrame } from '../../src/policy/actions-model';
import { parsePolicyFiles } from '../../src/policy/parse';
import { policiesFromStored } from '../../src/policy/store';
import { buildPacket, internetChecksum, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, TCP_URG, type PacketSpec } from '../lib/packets';
import { repoRoot } from '../lib/fixtures';
import { PolicyBae, policies, policyYaml } from './helpers';

const Z = 3.2905; // two-sided alpha 0.001

function tcpFrame(payload = 200, v6 = false, flags = TCP_ACK | TCP_PSH, src = v6 ? '2001:db8::1' : '10.0.0.1', dst = v6 ? '2001:db8::2' : '10.0.0.2'): Buffer {
  const spec: PacketSpec = {
    ip: v6 ? { version: 6, src, dst } : { version: 4, src, dst },
    l4: { proto: 'tcp', sport: 40000, dport: 80, seq: 1000, flags, payload: Buffer.alloc(payload, 0x5a) },
  };
  return buildPacket(spec).frame;
}

function udpFrame(payload = 101, v6 = false): Buffer {
  return buildPacket({ ip: v6 ? { version: 6, src: '2001:db8::1', dst: '2001:db8::2' } : { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, l4: { proto: 'udp', sport: 5000, dport: 53, payload: Buffer.from(Array.from({ length: payload }, (_, i) => (i * 37) & 0xff)) } }).frame;
}

/** IPv4 header checksum valid (true for IPv6) and L4 checksum valid, as a receiver checks them. */
function checksums(frame: Buffer, layout: Buffer = frame): { ip: boolean; l4: boolean } {
  const m = parseFrame(layout)!;
  assert.ok(m && m.parse !== 'other', 'the frame parses');
  const ip = m.family === 6 || internetChecksum(frame.subarray(m.l3Off, m.l4Off)) === 0;
  const ipEnd = layout === frame ? m.ipEnd : m.ipEnd - layout.length + frame.length;
  const seg = frame.subarray(m.l4Off, Math.min(ipEnd, frame.length));
  let l4: boolean;
  if (m.parse === 'icmp') l4 = internetChecksum(seg) === 0;
  else {
    const proto = m.parse === 'tcp' ? 6 : m.parse === 'udp' ? 17 : 58;
    const addrs = m.family === 4 ? frame.subarray(m.l3Off + 12, m.l3Off + 20) : frame.subarray(m.l3Off + 8, m.l3Off + 40);
    const pseudo = Buffer.alloc(m.family === 4 ? 4 : 8);
    if (m.family === 4) {
      pseudo[1] = proto;
      pseudo.writeUInt16BE(seg.length, 2);
    } else {
      pseudo.writeUInt32BE(seg.length, 0);
      pseudo[7] = proto;
    }
    l4 = internetChecksum(addrs, pseudo, seg) === 0;
  }
  return { ip, l4 };
}

/** A classic pcap file (Ethernet) of the frames. */
function writePcap(file: string, frames: Buffer[]): void {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(65535, 16);
  head.writeUInt32LE(1, 20);
  const parts: Buffer[] = [head];
  frames.forEach((f, i) => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(i, 0);
    h.writeUInt32LE(f.length, 8);
    h.writeUInt32LE(f.length, 12);
    parts.push(h, f);
  });
  fs.writeFileSync(file, Buffer.concat(parts));
}

/** tshark's verdict on each frame's IPv4, TCP and UDP checksums: 'good', 'bad' or '' (none). */
function tsharkChecksums(frames: Buffer[]): string[][] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-test-pcap-'));
  try {
    const file = path.join(dir, 'frames.pcap');
    writePcap(file, frames);
    const r = spawnSync('tshark', ['-r', file, '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-T', 'fields', '-e', 'ip.checksum.status', '-e', 'tcp.checksum.status', '-e', 'udp.checksum.status'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `tshark: ${r.stderr}`);
    const name: Record<string, string> = { '0': 'bad', '1': 'good', '': '' };
    return r.stdout.trimEnd().split('\n').map((l) => l.split('\t').map((v) => name[v] ?? v));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function popcount(x: number): number {
  let n = 0;
  for (; x; x &= x - 1) n++;
  return n;
}

describe('emulation actions in the kernel', () => {
  let bae: PolicyBae;
  let now = 1_000_000_000n;
  before(() => {
    bae = new PolicyBae();
  });
  after(() => bae?.close());

  const apply = (spec: string) => bae.apply(policies(policyYaml('act', spec)));
  const send = (frame: Buffer, stepNs = 1000n) => {
    now += stepNs;
    bae.setClock(now);
    return bae.program.test(frame);
  };

  for (const pct of [1, 10, 50]) {
    it(`loses ${pct}% of packets, within the binomial 99.9% interval`, async () => {
      await apply(`seed: ${pct}\nactions: [{ loss: { probability: ${pct} } }]`);
      const n = 20000;
      const frame = udpFrame(20);
      let lost = 0;
      for (let i = 0; i < n; i++) if (send(frame).verdict === XDP.drop) lost++;
      const p = pct / 100;
      const half = Z * Math.sqrt(n * p * (1 - p));
      assert.ok(Math.abs(lost - n * p) <= half, `${lost} lost of ${n}, expected ${n * p} ± ${half.toFixed(1)}`);
    });
  }

  it('correlated loss keeps the loss rate and has lag-1 correlation equal to the correlation', async () => {
    const p = 0.2;
    const c = 0.6;
    await apply(`seed: 99\nactions: [{ loss: { probability: 20, correlation: 60 } }]`);
    const n = 50000;
    const frame = udpFrame(20);
    const x: number[] = [];
    for (let i = 0; i < n; i++) x.push(send(frame).verdict === XDP.drop ? 1 : 0);
    const mean = x.reduce((a, b) => a + b, 0) / n;
    // The decisions form a Markov chain: var of the mean is p(1-p)/n * (1+c)/(1-c).
    const halfMean = Z * Math.sqrt(((p * (1 - p)) / n) * ((1 + c) / (1 - c)));
    assert.ok(Math.abs(mean - p) <= halfMean, `loss rate ${mean}, expected ${p} ± ${halfMean.toFixed(4)}`);
    let num = 0;
    let den = 0;
    for (let i = 0; i < n; i++) {
      den += (x[i]! - mean) ** 2;
      if (i > 0) num += (x[i]! - mean) * (x[i - 1]! - mean);
    }
    const r1 = num / den;
    // Bartlett: the lag-1 sample autocorrelation of an AR(1)-like chain has variance (1 - c^2)/n.
    const halfR = Z * Math.sqrt((1 - c * c) / n);
    assert.ok(Math.abs(r1 - c) <= halfR, `lag-1 correlation ${r1.toFixed(4)}, expected ${c} ± ${halfR.toFixed(4)}`);
  });

  it('Gilbert-Elliott loss has geometric bursts of mean 1/r and gaps of mean 1/p', async () => {
    const p = 0.02;
    const r = 0.25;
    await apply(`seed: 7\nactions: [{ loss: { model: gilbert-elliott, p: 2, r: 25 } }]`);
    const n = 60000;
    const frame = udpFrame(20);
    const bursts: number[] = [];
    const gaps: number[] = [];
    let run = 0;
    let last = -1;
    for (let i = 0; i < n; i++) {
      const lost = send(frame).verdict === XDP.drop ? 1 : 0;
      if (lost === last || last === -1) run++;
      else {
        (last ? bursts : gaps).push(run);
        run = 1;
      }
      last = lost;
    }
    // Drop the first gap (it started with the chain): the others are complete runs.
    gaps.shift();
    const check = (runs: number[], q: number, what: string) => {
      const mean = runs.reduce((a, b) => a + b, 0) / runs.length;
      // Geometric(q): mean 1/q, variance (1-q)/q^2.
      const half = Z * Math.sqrt((1 - q) / (q * q) / runs.length);
      assert.ok(Math.abs(mean - 1 / q) <= half, `${what}: mean ${mean.toFixed(3)} over ${runs.length}, expected ${(1 / q).toFixed(3)} ± ${half.toFixed(3)}`);
    };
    check(bursts, r, 'burst length');
    check(gaps, p, 'gap length');
    // And the shape: chi-square of burst lengths 1, 2, 3, 4, >=5 against the geometric law.
    const counts = [0, 0, 0, 0, 0];
    for (const b of bursts) counts[Math.min(b, 5) - 1]!++;
    const probs = [1, 2, 3, 4].map((k) => (1 - r) ** (k - 1) * r);
    probs.push(1 - probs.reduce((a, b) => a + b, 0));
    const chi = counts.reduce((s, o, k) => s + (o - bursts.length * probs[k]!) ** 2 / (bursts.length * probs[k]!), 0);
    // 4 degrees of freedom, alpha 0.001: 18.467.
    assert.ok(chi < 18.467, `chi-square of burst lengths ${chi.toFixed(2)} (counts ${counts})`);
  });

  for (const region of ['any', 'ip', 'transport', 'payload'] as const) {
    for (const bits of [1, 3, 8]) {
      it(`corrupt flips exactly ${bits} bit(s) inside the ${region} region, checksums fixed and valid`, async () => {
        await apply(`seed: ${bits * 13}\nactions: [{ corrupt: { probability: 100, bits: ${bits}, region: ${region}, checksums: fix } }]`);
        for (const frame of [tcpFrame(61), udpFrame(33), tcpFrame(40, true), udpFrame(7, true)]) {
          const m = parseFrame(frame)!;
          const l4Hdr = m.parse === 'tcp' ? 20 : 8;
          const [lo, hi] = { any: [m.l3Off, m.ipEnd], ip: [m.l3Off, m.l4Off], transport: [m.l4Off, m.l4Off + l4Hdr], payload: [m.l4Off + l4Hdr, m.ipEnd] }[region];
          const csumBytes = new Set([m.l4Off + (m.parse === 'tcp' ? 16 : 6), m.l4Off + (m.parse === 'tcp' ? 17 : 7), ...(m.family === 4 ? [m.l3Off + 10, m.l3Off + 11] : [])]);
          for (let k = 0; k < 50; k++) {
            const out = send(frame).data;
            assert.equal(out.length, frame.length);
            let flipped = 0;
            for (let i = 0; i < frame.length; i++) {
              if (csumBytes.has(i) || out[i] === frame[i]) continue;
              assert.ok(i >= lo! && i < hi!, `byte ${i} changed outside the ${region} region [${lo}, ${hi})`);
              flipped += popcount(out[i]! ^ frame[i]!);
            }
            assert.equal(flipped, bits, `bits flipped in ${m.parse}/IPv${m.family} frame`);
            assert.deepEqual(checksums(out), { ip: true, l4: true }, `checksums of the corrupted ${m.parse}/IPv${m.family} frame`);
          }
        }
      });
    }
  }

  it('tshark finds the checksums of frames corrupted with checksums fixed good, and left wrong bad', async () => {
    const frames = [tcpFrame(80), udpFrame(60)];
    await apply(`seed: 11\nactions: [{ corrupt: { probability: 100, bits: 4, region: any, checksums: fix } }]`);
    const fixed = Array.from({ length: 40 }, (_, k) => send(frames[k % 2]!).data);
    for (const row of tsharkChecksums(fixed)) assert.ok(row.includes('good') && row.every((v) => v === 'good' || v === ''), `tshark on a fixed frame: ${row}`);
    await apply(`seed: 12\nactions: [{ corrupt: { probability: 100, bits: 1, region: payload } }]`);
    const wrong = Array.from({ length: 40 }, (_, k) => send(frames[k % 2]!).data);
    for (const row of tsharkChecksums(wrong)) assert.ok(row.includes('bad'), `tshark on a corrupted frame: ${row}`);
  });

  it('corrupt with checksums left makes one of the checksums wrong', async () => {
    await apply(`seed: 5\nactions: [{ corrupt: { probability: 100, bits: 1, region: any } }]`);
    for (const frame of [tcpFrame(50), udpFrame(50)]) {
      for (let k = 0; k < 200; k++) {
        const out = send(frame).data;
        let flipped = 0;
        for (let i = 0; i < frame.length; i++) flipped += popcount(out[i]! ^ frame[i]!);
        assert.equal(flipped, 1);
        const c = checksums(out, frame); // at the original's offsets: a flip may garble them
        assert.ok(!c.ip || !c.l4, `a one-bit flip is caught by a checksum (${out.toString('hex')})`);
      }
    }
  });

  for (const lengths of ['fix', 'leave'] as const) {
    for (const [what, expectLen] of [
      ['to: 60', (n: number) => Math.min(n, 60)],
      ['to: 101', (n: number) => Math.min(n, 101)],
      ['by: 33', (n: number) => Math.max(14, n - 33)],
      ['by: 1', (n: number) => n - 1],
    ] as const) {
      it(`truncate ${what} cuts exactly, lengths ${lengths === 'fix' ? 'fixed with valid checksums' : 'left stale'}`, async () => {
        await apply(`actions: [{ truncate: { ${what}, lengths: ${lengths} } }]`);
        for (const frame of [tcpFrame(200), udpFrame(151), tcpFrame(99, true), udpFrame(120, true)]) {
          const m = parseFrame(frame)!;
          const out = send(frame).data;
          const len = expectLen(frame.length);
          assert.equal(out.length, len, `length of the ${m.parse}/IPv${m.family} frame`);
          // Lengths are fixed only when the L4 header survives the cut.
          if (lengths === 'leave' || len < m.l4Off + (m.parse === 'tcp' ? 20 : 8)) {
            assert.ok(out.equals(frame.subarray(0, len)), 'the bytes that stay are unchanged');
            continue;
          }
          const ipLen = len - m.l3Off;
          if (m.family === 4) assert.equal(out.readUInt16BE(m.l3Off + 2), ipLen, 'IPv4 total length');
          else assert.equal(out.readUInt16BE(m.l3Off + 4), ipLen - 40, 'IPv6 payload length');
          if (m.parse === 'udp') assert.equal(out.readUInt16BE(m.l4Off + 4), len - m.l4Off, 'UDP length');
          assert.deepEqual(checksums(out), { ip: true, l4: true }, 'checksums after the cut');
        }
      });
    }
  }

  it('tcp-flags sets and clears flags with a valid checksum, and leaves other protocols alone', async () => {
    await apply(`actions: [{ tcp-flags: { set: "FIN,URG", clear: "PSH,SYN" } }]`);
    for (const [flags, want] of [
      [TCP_ACK | TCP_PSH, TCP_ACK | TCP_FIN | TCP_URG],
      [TCP_SYN, TCP_FIN | TCP_URG],
      [TCP_FIN | TCP_URG, TCP_FIN | TCP_URG],
    ] as const) {
      for (const v6 of [false, true]) {
        const frame = tcpFrame(31, v6, flags);
        const out = send(frame).data;
        const m = parseFrame(out)!;
        assert.equal(out[m.l4Off + 13], want, `flags of ${flags.toString(16)} (IPv${v6 ? 6 : 4})`);
        assert.deepEqual(checksums(out), { ip: true, l4: true });
      }
    }
    const udp = udpFrame(10);
    assert.ok(send(udp).data.equals(udp), 'a UDP frame is unchanged');
  });

  const rateRun = async (per: 'policy' | 'conversation') => {
    await apply(`actions: [{ rate: { rate: 10mbit, burst: 15kb, per: ${per} } }]`);
    // Two conversations, each offering 7.5 Mbit/s of 1000-byte frames for 10 s of test clock.
    const frames = [tcpFrame(946, false, TCP_ACK, '10.0.0.1', '10.0.0.2'), tcpFrame(946, false, TCP_ACK, '10.0.0.3', '10.0.0.4')];
    assert.equal(frames[0]!.length, 1000);
    const passed = [0, 0];
    const step = 1_066_667n / 2n; // 937.5 frames/s each
    const start = now;
    for (let i = 0; now - start < 10_000_000_000n; i++) if (send(frames[i % 2]!, step).verdict === XDP.pass) passed[i % 2]! += 8000;
    return passed.map((b) => b / 10);
  };

  it('rate per policy holds the policy to 10 Mbit/s within 2% over 10 s', async () => {
    const [a, b] = await rateRun('policy');
    const total = a! + b!;
    assert.ok(Math.abs(total - 10e6) <= 0.02 * 10e6, `${total} bit/s for both conversations together`);
  });

  it('rate per conversation holds each conversation to 10 Mbit/s within 2% over 10 s', async () => {
    await apply(`actions: [{ rate: { rate: 10mbit, burst: 15kb, per: conversation } }]`);
    // Two conversations, each offering 15 Mbit/s of 1000-byte frames (one every 533.3 us).
    const frames = [tcpFrame(946, false, TCP_ACK, '10.0.0.1', '10.0.0.2'), tcpFrame(946, false, TCP_ACK, '10.0.0.3', '10.0.0.4')];
    const passed = [0, 0];
    const start = now;
    for (let i = 0; now - start < 10_000_000_000n; i++) if (send(frames[i % 2]!, 266_667n).verdict === XDP.pass) passed[i % 2]! += 8000;
    for (const bits of passed) assert.ok(Math.abs(bits / 10 - 10e6) <= 0.02 * 10e6, `${bits / 10} bit/s for one conversation, expected 10 Mbit/s`);
  });

  it('actions apply only while a trigger has fired', async () => {
    await apply(`trigger: { when: "packets > 10", within: 1s, scope: policy }\nfor: 100ms\nactions: [{ loss: { probability: 100 } }]`);
    const frame = udpFrame(10);
    const verdicts = Array.from({ length: 20 }, () => send(frame, 1_000_000n).verdict);
    assert.deepEqual(verdicts.slice(0, 10), new Array(10).fill(XDP.pass), 'before the trigger fires');
    assert.deepEqual(verdicts.slice(10), new Array(10).fill(XDP.drop), 'the 11th packet fires it and is lost');
  });
});

describe('bae policy check', () => {
  it('prints the emulation actions of the example policies with their parameters', () => {
    const files = ['policies/lossy-link.yaml', 'policies/flaky-web.yaml'].map((f) => path.join(repoRoot, f));
    const r = spawnSync(path.join(repoRoot, 'bin/bae'), ['policy', 'check', ...files], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /lossy-link .*-> rate\(burst=64000 per=conversation rate=20000000\) loss\(lossBad=80 lossGood=0\.1 model=gilbert-elliott p=1 r=30\)/);
    assert.match(r.stdout, /flaky-web .*-> truncate\(lengths=fix to=300\) corrupt\(bits=1 checksums=fix probability=1 region=payload\) tcp-flags\(clear=PSH\)/);
  });
});

describe('the applied set on disk', () => {
  it('reads the emulation actions and the seed back to the same policies (same stable ids and parameters)', () => {
    const files = ['policies/lossy-link.yaml', 'policies/flaky-web.yaml'].map((f) => path.join(repoRoot, f));
    const parsed = parsePolicyFiles(files);
    const back = policiesFromStored(parsed.map((p) => ({ spec: p.spec, source: p.source }) as Parameters<typeof policiesFromStored>[0][number]), '/nonexistent');
    assert.deepEqual(back.map((p) => [p.id, p.seed, p.actions.map((a) => [a.kind, a.params])]), parsed.map((p) => [p.id, p.seed, p.actions.map((a) => [a.kind, a.params])]));
  });
});
