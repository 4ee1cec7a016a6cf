// test-unit: needs no root and no kernel (make test-unit).
//
// The sender's schedule and bounds with a stand-in for the kernel (it records each call and its
// time): counts, batch sizes, never ahead of the rate, the hard maxima, and what resendDropped
// sends and skips. The kernel side is test/reconstruct/inject.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  FORGE_KINDS,
  INJECT_MAX_COUNT,
  INJECT_MAX_RATE,
  requireLiveFrames,
  resendDropped,
  sendFrames,
  spacingFromProfile,
  forgeRng,
  type FrameSender,
  type OutFrame,
  type PacketRecord,
} from '../../src/reconstruct';
import { repoRoot } from '../lib/fixtures';
import type { DirectionProfile } from '../../src/profiles';

interface Call {
  frame: Buffer;
  ifindex: number;
  repeat: number;
  atNs: bigint;
}

function recorder(): FrameSender & { calls: Call[] } {
  const calls: Call[] = [];
  const record = (frame: Buffer, ifindex: number, repeat = 1) => void calls.push({ frame, ifindex, repeat, atNs: process.hrtime.bigint() });
  return { calls, sendNow: record, sendAsync: async (f, i, r) => record(f, i, r) };
}

const frame = (n: number): OutFrame => ({ data: Buffer.alloc(60, n), kind: 'injected', policy: null, action: 'inject', reason: 'test' });

describe('the sender', () => {
  it('sends a repeated frame in batches of rate x 10 ms, never ahead of the rate', async () => {
    const r = recorder();
    const report = await sendFrames(r, [{ ...frame(1), repeat: 95 }], { ifindex: 7, rate: 2000 });
    assert.equal(report.frames, 95);
    // 2000/s x 10 ms = 20 a batch: 20, 20, 20, 20, 15.
    assert.deepEqual(r.calls.map((c) => c.repeat), [20, 20, 20, 20, 15]);
    assert.ok(r.calls.every((c) => c.ifindex === 7));
    // Batch k starts no earlier than k x 10 ms after the first (the schedule starts at the first).
    r.calls.forEach((c, k) => assert.ok(c.atNs - r.calls[0]!.atNs >= BigInt(k) * 10_000_000n, `batch ${k} at ${c.atNs - r.calls[0]!.atNs} ns`));
  });

  it('sends distinct frames one call each, in order, 1/rate apart at the least', async () => {
    const r = recorder();
    const records: PacketRecord[] = [];
    await sendFrames(r, [1, 2, 3, 4, 5].map(frame), { ifindex: 3, rate: 200, onSent: (rec) => records.push(rec) });
    assert.deepEqual(r.calls.map((c) => c.frame[0]), [1, 2, 3, 4, 5]);
    r.calls.forEach((c, k) => assert.ok(c.atNs - r.calls[0]!.atNs >= BigInt(k) * 5_000_000n, `frame ${k}`));
    assert.deepEqual(records.map((x) => [x.kind, x.action, x.reason, x.ifindex, x.origLen]), Array(5).fill(['injected', 'inject', 'test', 3, 60]));
    assert.ok(records.every((x) => typeof x.tsNs === 'bigint' && x.tsNs > 1_600_000_000_000_000_000n), 'wall-clock ns');
  });

  it('refuses counts, rates and durations beyond its bounds before sending anything', async () => {
    const r = recorder();
    await assert.rejects(sendFrames(r, [{ ...frame(1), repeat: INJECT_MAX_COUNT + 1 }], { ifindex: 1, rate: INJECT_MAX_RATE }), { code: 'BAE_USAGE', message: /count must be/ });
    await assert.rejects(sendFrames(r, [frame(1)], { ifindex: 1, rate: INJECT_MAX_RATE + 1 }), { code: 'BAE_USAGE', message: /rate must be/ });
    await assert.rejects(sendFrames(r, [frame(1)], { ifindex: 1, rate: 0 }), { code: 'BAE_USAGE' });
    await assert.rejects(sendFrames(r, [{ ...frame(1), repeat: 7200 }], { ifindex: 1, rate: 1 }), { code: 'BAE_USAGE', message: /more than the 3600 s/ });
    assert.equal(r.calls.length, 0);
  });

  it('stops when aborted, reporting what went out', async () => {
    const r = recorder();
    const ac = new AbortController();
    // Aborted while the third frame goes out (not by a timer: under load a timer fires late and
    // more frames would be out by then): the sender waits 50 ms for the fourth and stops instead.
    const send = r.sendAsync;
    r.sendAsync = async (f, i, n) => {
      await send(f, i, n);
      if (r.calls.length === 3) ac.abort();
    };
    r.sendNow = (f, i, n) => void r.sendAsync(f, i, n);
    const report = await sendFrames(r, [1, 2, 3, 4, 5, 6].map(frame), { ifindex: 1, rate: 20, signal: ac.signal });
    assert.equal(report.frames, 3);
    assert.equal(r.calls.length, 3);
  });
});

describe('without live frames', () => {
  it('the sender refuses with the missing flag and the kernel named', () => {
    assert.throws(() => requireLiveFrames(() => 22), { code: 'BAE_KERNEL', message: /does not take BPF_F_TEST_XDP_LIVE_FRAMES \(errno 22; Linux 5\.18 or newer has it\)/ });
    assert.doesNotThrow(() => requireLiveFrames(() => 0));
  });
});

describe('spacing drawn from a profile', () => {
  it('has the direction\'s mean inter-arrival time, no gap over 1 s, and none without one', () => {
    const r = forgeRng(5);
    const draw = spacingFromProfile({ iatMeanNs: 2_000_000 } as unknown as DirectionProfile, r)!;
    const N = 5000;
    const gaps = Array.from({ length: N }, () => draw());
    const mean = gaps.reduce((a, b) => a + b, 0) / N;
    // Exponential: the mean of N has a relative standard deviation of 1/sqrt(N) = 1.4%; 6% is over 4 of them.
    assert.ok(Math.abs(mean / 2_000_000 - 1) < 0.06, `mean ${mean}`);
    const capped = spacingFromProfile({ iatMeanNs: 10e9 } as unknown as DirectionProfile, r)!;
    assert.ok(Array.from({ length: 100 }, () => capped()).every((g) => g <= 1e9));
    assert.equal(spacingFromProfile({ iatMeanNs: 0 } as unknown as DirectionProfile, r), undefined);
  });
});

describe('resendDropped', () => {
  const rec = (kind: PacketRecord['kind'], data: Buffer, origLen = data.length, ifindex = 2): PacketRecord => ({
    tsNs: 1n, ifindex, kind, policy: 'lossy', action: 'loss', reason: 'seeded loss', origLen, data,
  });

  it('sends the dropped records byte-exact to their egress, after the delay; skips the rest with why', async () => {
    const r = recorder();
    const a = Buffer.alloc(60, 0xa);
    const b = Buffer.alloc(70, 0xb);
    const t0 = process.hrtime.bigint();
    const out = await resendDropped(
      [rec('dropped', a), rec('captured', a), rec('dropped', b.subarray(0, 30), 70), rec('dropped', b, 70, 5), rec('dropped', Buffer.alloc(10), 10), rec('dropped', Buffer.alloc(9000), 9000)],
      { egress: (x) => x.ifindex + 100, afterMs: 50, rate: 1000, injector: r },
    );
    assert.deepEqual(r.calls.map((c) => [c.frame, c.ifindex]), [[a, 102], [b, 105]]);
    assert.ok(r.calls[0]!.atNs - t0 >= 50_000_000n, 'not before --after');
    assert.deepEqual(out.sent.map((s) => [s.kind, s.action, s.policy, s.reason]), Array(2).fill(['reconstructed', 'reconstruct', 'lossy', 'seeded loss']));
    assert.deepEqual(out.skipped.map((s) => s.index), [1, 2, 4, 5]);
    assert.match(out.skipped[0]!.why, /kind 'captured'/);
    assert.match(out.skipped[1]!.why, /only 30 of its 70 bytes/);
    assert.match(out.skipped[2]!.why, /shorter than an Ethernet header/);
    assert.match(out.skipped[3]!.why, /9000 bytes: more than the 3500 a live frame can carry/);
  });

  it('refuses a delay beyond a day', async () => {
    await assert.rejects(resendDropped([], { egress: () => 1, afterMs: 2 * 86_400_000, injector: recorder() }), { code: 'BAE_USAGE', message: /after must be/ });
  });
});

describe('bae inject --list', () => {
  it('lists every kind of the catalogue, as text and as JSON', () => {
    const run = (args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'bin/bae'), 'inject', '--list', ...args], { encoding: 'utf8', timeout: 30_000 });
    const json = run(['--json']);
    assert.equal(json.status, 0, json.stderr);
    const kinds = (JSON.parse(json.stdout) as { kinds: { name: string; summary: string }[] }).kinds;
    assert.deepEqual(kinds.map((k) => [k.name, k.summary]), FORGE_KINDS.map((k) => [k.name, k.summary]));
    const text = run([]);
    assert.equal(text.status, 0, text.stderr);
    for (const k of FORGE_KINDS) assert.match(text.stdout, new RegExp(`^  ${k.name} +(valid|malformed) `, 'm'));
  });
});
