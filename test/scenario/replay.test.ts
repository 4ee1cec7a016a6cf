// The offline replay (src/scenario/replay.ts): the same frames, policies and seed give the same
// decision log twice, a log that holds every kind of decision; another seed gives another log,
// and compareDecisions names exactly the frames that differ. The verdicts agree with the
// reference model of the kernel's policy stage.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReferenceModel } from '../../src/policy';
import { compareDecisions, replayFrames, type ReplayFrame } from '../../src/scenario';
import { buildPacket, TCP_ACK, TCP_PSH, TCP_SYN } from '../lib/packets';
import { rng } from '../lib/rng';
import { policies, policyYaml, refPacket } from '../policy/helpers';

const SET = [
  policyYaml('lossy', `priority: 50
match: { dst: 10.20.0.0/16, proto: udp }
seed: 7
actions: [{ loss: { probability: 30 } }]`),
  policyYaml('damage', `priority: 40
match: { proto: tcp, dport: 80 }
actions: [{ corrupt: { probability: 50, bits: 1, region: payload, checksums: fix } }]`),
  policyYaml('synflood', `priority: 10
match: { proto: tcp, tcpFlags: "SYN,!ACK" }
trigger: { when: packets > 20, within: 1s, scope: source }
actions: [{ block: { ttl: 200ms } }, event]`),
].join('---\n');

/** A seeded mix: UDP to the lossy prefix, HTTP-port TCP with payload, and a SYN burst. */
function traffic(seed: number, n: number): { frames: ReplayFrame[]; specs: Parameters<typeof buildPacket>[0][] } {
  const r = rng(seed);
  const frames: ReplayFrame[] = [];
  const specs: Parameters<typeof buildPacket>[0][] = [];
  let t = 1_000_000_000_000n;
  for (let i = 0; i < n; i++) {
    t += BigInt(r.int(10_000, 3_000_000));
    const kind = r.int(0, 2);
    const spec: Parameters<typeof buildPacket>[0] =
      kind === 0
        ? { ip: { version: 4, src: '10.1.0.2', dst: `10.20.0.${r.int(1, 9)}` }, l4: { proto: 'udp', sport: 4000, dport: 5000, payload: Buffer.alloc(r.int(1, 200), i & 0xff) } }
        : kind === 1
          ? { ip: { version: 4, src: '10.1.0.3', dst: '10.9.0.1' }, l4: { proto: 'tcp', sport: 40000, dport: 80, flags: TCP_ACK | TCP_PSH, seq: 1000 + i * 100, payload: Buffer.alloc(100, 0x41) } }
          : { ip: { version: 4, src: `10.66.0.${r.int(1, 2)}`, dst: '10.9.0.1' }, l4: { proto: 'tcp', sport: r.int(1024, 65535), dport: 443, flags: TCP_SYN } };
    specs.push(spec);
    frames.push({ timeNs: t, ifindex: 1, data: buildPacket(spec).frame });
  }
  return { frames, specs };
}

describe('offline replay of frames through policies', () => {
  const { frames, specs } = traffic(20261207, 3000);
  const set = policies(SET);

  it('gives the same decision log twice, with drops, modifications, fires, blocks and events in it', async () => {
    const a = await replayFrames(frames, set, { seed: 11n });
    const b = await replayFrames(frames, set, { seed: 11n });
    assert.equal(a.decisions.length, frames.length);
    assert.deepEqual(compareDecisions(a.decisions, b.decisions), []);
    assert.deepEqual(a.totals, b.totals);
    // Every kind of decision is in the log, so "no difference" says something.
    for (const k of ['drop', 'pass', 'modified', 'fired', 'blocked', 'events']) assert.ok((a.totals[k] ?? 0) > 0, `no ${k} in ${JSON.stringify(a.totals)}`);
    // The lossy policy drops about 30% of its UDP frames (seeded: a fixed count, within bounds).
    const udp = a.decisions.filter((d) => d.applied.includes('lossy'));
    const dropped = udp.filter((d) => d.verdict === 'drop').length;
    assert.ok(dropped > udp.length * 0.2 && dropped < udp.length * 0.4, `${dropped} of ${udp.length} UDP frames dropped`);
  });

  it('agrees with the reference model of the policy stage on every verdict', async () => {
    const { decisions } = await replayFrames(frames, set, { seed: 11n });
    const model = new ReferenceModel({ seed: 11n });
    model.setPolicies(set);
    frames.forEach((f, i) => {
      const ref = model.process(refPacket(specs[i]!, f.data, f.timeNs));
      const expected = ref.verdict === 'drop' ? 'drop' : 'pass';
      assert.equal(decisions[i]!.verdict, expected, `frame ${i}: kernel ${decisions[i]!.verdict}, model ${ref.verdict}`);
    });
  });

  it('names exactly the frames whose decisions another seed changes', async () => {
    const a = await replayFrames(frames, set, { seed: 11n });
    const c = await replayFrames(frames, policies(SET.replace('seed: 7', 'seed: 8')), { seed: 12n });
    const diff = compareDecisions(a.decisions, c.decisions);
    assert.ok(diff.length > 0, 'another seed changed nothing');
    const changed = new Set(diff.map((d) => d.index));
    a.decisions.forEach((d, i) => {
      const e = c.decisions[i]!;
      const same = d.verdict === e.verdict && JSON.stringify(d.modified) === JSON.stringify(e.modified) && d.applied.join() === e.applied.join() && d.events.join() === e.events.join();
      assert.equal(changed.has(i), !same, `frame ${i}`);
    });
    // The SYN burst's trigger does not depend on the seeds: its fires and blocks stay.
    assert.equal(a.totals.fired, c.totals.fired);
  });

  it('marks the frames a delay-class action chose as delayed, and only those', async () => {
    const set2 = policies(policyYaml('slow', `match: { proto: udp }
actions: [{ delay: { time: 10ms } }]`));
    const { decisions, totals } = await replayFrames(frames, set2);
    decisions.forEach((d, i) => assert.equal(d.delayed, specs[i]!.l4.proto === 'udp', `frame ${i}`));
    assert.ok((totals.delayed ?? 0) > 0);
  });
});
