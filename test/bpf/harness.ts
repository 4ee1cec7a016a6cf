// The bae XDP program under BPF_PROG_TEST_RUN: load build/bpf/bae.o with the test clock, feed
// frames, read the global counters and conversation profiles back through layout.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { DEFAULT_HTTP_PORTS, encodeHttpPorts, fillHttpPorts, loadCollection, type BpfMap, type Collection, type Program } from '../../src/datapath';
import {
  CONSTANTS,
  Clock,
  MAPS,
  Mode,
  PROGRAM,
  VERDICT_NAMES,
  XDP,
  convKeyFor,
  decodeTcpFlow,
  emptyConvDir,
  encodeConvKey,
  encodeFlowKey,
  flowKeyFor,
  iatBucket,
  mergeConvPerCpu,
  parseOutcomeHasL3,
  sizeBucket,
  sumStatsPerCpu,
  type Conv,
  type ConvDir,
  type ParseOutcome,
  type Stats,
  type TcpHalf,
} from '../../src/datapath/layout';
import { repoRoot } from '../lib/fixtures';

export const BAE_OBJECT = path.join(repoRoot, 'build/bpf/bae.o');

export interface BaeOptions {
  mode?: keyof typeof Mode;
  /** Default 'test': time is what setClock() says. */
  clock?: keyof typeof Clock;
  maxEntries?: Record<string, number>;
  object?: string;
  /** TCP ports read for HTTP/1.x lines, as `bae load` sets them (default DEFAULT_HTTP_PORTS). */
  httpPorts?: readonly number[];
}

export class Bae {
  readonly collection: Collection;
  readonly program: Program;
  readonly convs: BpfMap;
  readonly flows: BpfMap;
  readonly statsMap: BpfMap;
  readonly ports: BpfMap;
  readonly clockMap: BpfMap;

  constructor(opts: BaeOptions = {}) {
    pinToOneCpu();
    this.collection = loadCollection(opts.object ?? BAE_OBJECT, {
      constants: {
        [CONSTANTS.mode]: Mode[opts.mode ?? 'ingress'],
        [CONSTANTS.clock]: Clock[opts.clock ?? 'test'],
      },
      ...(opts.maxEntries ? { maxEntries: opts.maxEntries } : {}),
    });
    this.program = this.collection.program(PROGRAM);
    this.convs = this.collection.map(MAPS.convs);
    this.flows = this.collection.map(MAPS.tcpFlows);
    this.statsMap = this.collection.map(MAPS.stats);
    this.ports = this.collection.map(MAPS.ports);
    this.clockMap = this.collection.map(MAPS.testClock);
    if (this.collection.maps.has(MAPS.httpPorts)) {
      fillHttpPorts(this.collection.map(MAPS.httpPorts), encodeHttpPorts(opts.httpPorts ?? DEFAULT_HTTP_PORTS));
    }
  }

  setClock(ns: bigint): void {
    const v = Buffer.alloc(8);
    v.writeBigUInt64LE(ns);
    this.clockMap.update(u32(0), v);
  }

  /** Runs one frame through the program once; returns the verdict. */
  run(frame: Buffer, ingressIfindex?: number): number {
    const opts = ingressIfindex === undefined ? {} : { ctxIn: { ingressIfindex } };
    return this.program.test(frame, opts).verdict;
  }

  stats(): Stats {
    const values = this.statsMap.lookupPerCpu(u32(0));
    if (!values) throw new Error('bae_stats has no slot 0');
    return sumStatsPerCpu(values);
  }

  /** The merged profile of the conversation between two addresses, as seen from `src`. */
  conv(src: string, dst: string): { conv: Conv | undefined; dir: 0 | 1 } {
    const { key, dir } = convKeyFor(src, dst);
    const values = this.convs.lookupPerCpu(encodeConvKey(key));
    return { conv: values ? mergeConvPerCpu(values) : undefined, dir };
  }

  tcpHalf(src: string, sport: number, dst: string, dport: number): TcpHalf | undefined {
    const { key, dir } = flowKeyFor(src, sport, dst, dport);
    const value = this.flows.lookup(encodeFlowKey(key));
    return value ? decodeTcpFlow(value)[dir] : undefined;
  }

  close(): void {
    this.collection.close();
  }
}

/**
 * Profiles are per-CPU copies: a test that predicts inter-arrival sums and first/last seen of
 * every copy keeps all its test runs on one CPU (BPF_PROG_TEST_RUN runs on the caller's CPU).
 */
export function pinToOneCpu(): void {
  execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** Counter deltas between two snapshots, only the ones that moved, as numbers. */
export function statsDelta(before: Stats, after: Stats): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.verdicts)) {
    const d = v - before.verdicts[k as keyof Stats['verdicts']];
    if (d) out[`verdict.${k}`] = Number(d);
  }
  for (const [k, v] of Object.entries(after.parse)) {
    const d = v - before.parse[k as keyof Stats['parse']];
    if (d) out[`parse.${k}`] = Number(d);
  }
  for (const k of ['inlineNoPort', 'convFull', 'flowFull'] as const) {
    const d = after[k] - before[k];
    if (d) out[k] = Number(d);
  }
  return out;
}

// ---- golden-packet runner: feeds frames, predicts every counter, compares after each -------

/** One frame a conversation direction saw, as the test predicts the program counts it. */
export interface Sent {
  len: number;
  ttl: number;
  now: bigint;
  /** Flag byte of a frame that parsed as TCP. */
  tcpFlags?: number;
  retransmit?: boolean;
  outOfOrder?: boolean;
  zeroWindow?: boolean;
}

/** What the program must have made of these frames: the rules of docs/profiles.md, spelled out. */
export function modelDir(sent: readonly Sent[]): ConvDir {
  const d = emptyConvDir();
  sent.forEach((s, i) => {
    const len = BigInt(s.len);
    if (i === 0) {
      d.firstSeenNs = s.now;
      d.sizeMin = s.len;
      d.ttlMin = s.ttl;
    } else {
      const prev = sent[i - 1]!.now;
      const gap = s.now > prev ? s.now - prev : 0n;
      const units = gap >> 10n > 0xffffffffn ? 0xffffffffn : gap >> 10n;
      d.iatSumNs += gap;
      d.iatSumSq1024ns += units * units;
      d.sizeMin = Math.min(d.sizeMin, s.len);
      d.ttlMin = Math.min(d.ttlMin, s.ttl);
      d.iatCount += 1n;
      d.iatHist[iatBucket(gap)]! += 1n;
    }
    d.sizeMax = Math.max(d.sizeMax, s.len);
    d.ttlMax = Math.max(d.ttlMax, s.ttl);
    d.ttlLast = s.ttl;
    d.lastSeenNs = s.now;
    d.packets += 1n;
    d.bytes += len;
    d.sizeSumSq += len * len;
    d.sizeHist[sizeBucket(s.len)]! += 1n;
    for (let bit = 0; bit < 8; bit++) if ((s.tcpFlags ?? 0) & (1 << bit)) d.tcpFlags[bit]! += 1n;
    if (s.retransmit) d.retransmits += 1n;
    if (s.outOfOrder) d.outOfOrder += 1n;
    if (s.zeroWindow) d.zeroWindow += 1n;
  });
  return d;
}

export interface Expect {
  outcome: ParseOutcome;
  /** Default XDP_PASS. */
  verdict?: number;
  /** Counter deltas beyond the verdict and the parse outcome, e.g. { inlineNoPort: 1 }. */
  extra?: Record<string, number>;
  /** The IP header, for frames whose IP header parses. */
  ip?: { src: string; dst: string; ttl: number };
  tcp?: { flags: number; retransmit?: boolean; outOfOrder?: boolean; zeroWindow?: boolean };
  ingressIfindex?: number;
  /** Clock step before this frame; default 1500 ns. */
  advanceNs?: bigint;
}

/**
 * Sends frames one at a time with a stepping test clock and checks, after each, the verdict,
 * the exact change of every global counter and the whole merged profile of the frame's
 * conversation against modelDir().
 */
export class Golden {
  now = 1_000_000n;
  readonly #sent = new Map<string, [Sent[], Sent[]]>();

  constructor(readonly bae: Bae) {}

  send(frame: Buffer, expect: Expect, what: string): void {
    this.now += expect.advanceNs ?? 1500n;
    this.bae.setClock(this.now);
    const convsBefore = expect.ip ? -1 : this.bae.convs.lookupBatch().keys.length;
    const before = this.bae.stats();
    const verdict = this.bae.run(frame, expect.ingressIfindex);
    const after = this.bae.stats();
    const verdictNo = expect.verdict ?? XDP.pass;
    assert.equal(verdict, verdictNo, `${what}: verdict`);
    assert.deepEqual(
      statsDelta(before, after),
      { [`verdict.${VERDICT_NAMES[verdictNo]}`]: 1, [`parse.${expect.outcome}`]: 1, ...expect.extra },
      `${what}: counters`,
    );
    if (!parseOutcomeHasL3(expect.outcome)) {
      assert.equal(expect.ip, undefined, `${what}: a test error, ${expect.outcome} frames have no conversation`);
      assert.equal(this.bae.convs.lookupBatch().keys.length, convsBefore, `${what}: no conversation is touched`);
      return;
    }
    assert.ok(expect.ip, `${what}: a test error, give the IP header of a ${expect.outcome} frame`);
    const { src, dst, ttl } = expect.ip;
    const { key, dir } = convKeyFor(src, dst);
    const id = `${key.family} ${key.a} ${key.b}`;
    const sent = this.#sent.get(id) ?? [[], []];
    this.#sent.set(id, sent);
    // A host talking to itself counts in a->b (bae.h).
    sent[src === dst ? 0 : dir].push({
      len: frame.length,
      ttl,
      now: this.now,
      ...(expect.outcome === 'tcp' && expect.tcp ? { tcpFlags: expect.tcp.flags } : {}),
      retransmit: expect.tcp?.retransmit ?? false,
      outOfOrder: expect.tcp?.outOfOrder ?? false,
      zeroWindow: expect.tcp?.zeroWindow ?? false,
    });
    const got = this.bae.conv(src, dst).conv;
    assert.ok(got, `${what}: the conversation ${src} - ${dst} exists`);
    assert.deepEqual(got.dir, [modelDir(sent[0]), modelDir(sent[1])], `${what}: profile of ${src} - ${dst}`);
  }
}
