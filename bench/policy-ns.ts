// ns per packet of the bae XDP program with 10k policies loaded against the same program with
// none, and with only the 2 rules the matching frame meets, in the same run, under
// BPF_PROG_TEST_RUN (real clock). Frames: TCP that two nested rules (of 10k) match, TCP to a
// port no rule names, TCP to a named port from a source no rule names (every lookup, no match),
// and UDP, which no rule names; and, for information, TCP that one rule with a trigger matches
// (its window state is a hash lookup per packet, whatever the size of the set). Ratios are the
// median over rounds of each round's own ratio: the rows of a round run back to back, so drift
// of the shared machine cancels out. Target: at most 1.3x for the plain rows.
// Prints one JSON object.
//
//   node dist/bench/policy-ns.js [--repeat N] [--rounds N]
import os from 'node:os';
import path from 'node:path';
import { loadCollection, type Collection } from '../src/datapath';
import { CONSTANTS, Clock, PROGRAM } from '../src/datapath/layout';
import { applyCompiled } from '../src/policy/apply';
import { policyMapsOf } from '../src/policy/maps';
import { compilePolicies } from '../src/policy/compile';
import { buildPacket, TCP_ACK } from '../test/lib/packets';
import { benchPolicies, RULES } from './lib/policy-set';
import { median, round2, wholeOption } from './lib/args';

const TARGET_RATIO = 1.3;
const root = path.resolve(__dirname, '../..');

const repeat = wholeOption('policy-ns', 'repeat', 300_000);
const rounds = wholeOption('policy-ns', 'rounds', 7);


async function nsPerRun(coll: Collection, frame: Buffer): Promise<number> {
  const prog = coll.program(PROGRAM);
  await prog.testAsync(frame, { repeat: 1000 });
  return (await prog.testAsync(frame, { repeat })).durationNs;
}

async function main(): Promise<void> {
  const object = path.join(root, 'build/bpf/bae.o');
  const constants = { [CONSTANTS.clock]: Clock.real };
  const none = loadCollection(object, { constants });
  const two = loadCollection(object, { constants });
  const full = loadCollection(object, { constants });
  try {
    const policies = benchPolicies();
    const noWait = { sleep: async () => undefined };
    await applyCompiled(policyMapsOf((n) => full.map(n)), compilePolicies(policies, { requireKernelActions: true }), noWait);
    // Only the rules the matching frames meet (rule-17, 10.17.0.0/16, and rule-4217, its /24;
    // rule-10 for the trigger row): what the same work costs without the other 9997, i.e. how the
    // cost scales with the set.
    const pair = policies.filter((p) => p.name === 'rule-17' || p.name === 'rule-4217' || p.name === 'rule-10');
    await applyCompiled(policyMapsOf((n) => two.map(n)), compilePolicies(pair, { requireKernelActions: true }), noWait);
    // rule-4217 (a count rule: the packet passes and the program does all the work each time):
    // src 10.17.42.0/24, dport 1017. A drop rule would be as cheap.
    const tcp = (src: string, dport: number) =>
      buildPacket({ ip: { version: 4, src, dst: '192.168.0.1' }, l4: { proto: 'tcp', sport: 40000, dport, flags: TCP_ACK, seq: 1 } }).frame;
    const frames: Record<string, Buffer> = {
      tcp_match: tcp('10.17.42.9', 1017),
      // A port no rule names: the port prefilter lets it go before any hash lookup.
      tcp_no_rule: tcp('10.17.42.9', 2000),
      // A port rules name, from a source none does: prefix lookups and the combination miss.
      tcp_port_no_src: tcp('172.16.0.1', 1017),
      // rule-10 alone (10.10.0.0/16, dport 1010, SYN trigger per source, drop when on): no /24
      // of that /16 holds 10.10.200.1. An ACK: the window counts, the rule stays off.
      tcp_match_trigger: tcp('10.10.200.1', 1010),
      udp_no_rule: buildPacket({ ip: { version: 4, src: '10.17.42.9', dst: '192.168.0.1' }, l4: { proto: 'udp', sport: 40000, dport: 1017, payload: Buffer.alloc(18) } }).frame,
    };
    const raw: Record<string, number[]> = {};
    const perRound: Record<string, number[]> = {};
    const scalePerRound: Record<string, number[]> = {};
    for (let r = 0; r < rounds; r++) {
      for (const [name, frame] of Object.entries(frames)) {
        const base = await nsPerRun(none, frame);
        const pair = await nsPerRun(two, frame);
        const all = await nsPerRun(full, frame);
        (raw[`${name}_none`] ??= []).push(base);
        (raw[`${name}_2`] ??= []).push(pair);
        (raw[`${name}_10k`] ??= []).push(all);
        (perRound[name] ??= []).push(all / base);
        (scalePerRound[name] ??= []).push(all / pair);
      }
    }
    const ns = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, round2(median(v))]));
    const ratio = Object.fromEntries(Object.keys(frames).map((f) => [f, round2(median(perRound[f]!))]));
    // 10k rules against the 2 that matter: the lookups do not grow with the set.
    const scaling = Object.fromEntries(Object.keys(frames).map((f) => [f, round2(median(scalePerRound[f]!))]));
    const result = {
      bench: 'policy-ns',
      rules: RULES,
      repeat,
      rounds,
      nsPerPacket: ns,
      ratio,
      ratio10kTo2Rules: scaling,
      target: TARGET_RATIO,
      withinTarget: Object.entries(ratio).every(([f, r]) => f === 'tcp_match_trigger' || r <= TARGET_RATIO),
      loadAverage: os.loadavg().map(round2),
      raw,
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    full.close();
    two.close();
    none.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`policy-ns: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
