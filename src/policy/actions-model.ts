// The emulation actions (loss, rate, truncate, corrupt, tcp-flags): policy parameters -> the
// kernel's struct policy_emul, and the arithmetic of bpf/actions.h in TypeScript, step for step
// (the same random draws in the same order, the same integer and ones' complement arithmetic),
// so that the reference model predicts every decision and every output byte.
import * as crypto from 'node:crypto';
import { CAPTURE, ENUMS, POLICY, TCP_FLAG_NAMES, emptyPolicyEmul, type PolicyEmul } from '../datapath';
import type { Policy } from './model';

const U64_MAX = (1n << 64n) - 1n;
const U64 = (x: bigint) => x & U64_MAX;

/** Probabilities are fractions of 2^32 (bae.h POLICY_PROB_ONE). */
export const PROB_ONE = POLICY.probOne;
export const CORRUPT_BITS_MAX = POLICY.corruptBitsMax;
/** Draws for one bit before corrupt gives it up (actions.h ACTIONS_CORRUPT_DRAWS). */
const CORRUPT_DRAWS = 64;
const FRAME_MIN = 14;
const SUM_MAX = 512 * 8;
const NS_PER_S = 1_000_000_000n;

/** Bits of policy_rule.action_mask (enum policy_action). */
export const EMUL_BITS = { loss: 6, corrupt: 7, truncate: 8, 'tcp-flags': 9, rate: 10 } as const;
const BIT = (k: keyof typeof EMUL_BITS) => 1 << EMUL_BITS[k];
export const EMUL_DECIDE = BIT('loss') | BIT('rate');
export const EMUL_MODIFY = BIT('corrupt') | BIT('truncate') | BIT('tcp-flags');
export const EMUL_ACTIONS = EMUL_DECIDE | EMUL_MODIFY;
export const EMUL_STATEFUL = BIT('loss') | BIT('corrupt') | BIT('rate');
/** The capture action's bit: it reads policy_emul (capture_*) but is no emulation action. */
export const CAPTURE_BIT = 1 << ENUMS.policy_action.POLICY_ACT_CAPTURE;
/** Actions whose rules carry a struct policy_emul and a seed. */
export const EMUL_SEEDED = EMUL_ACTIONS | CAPTURE_BIT;

/** The start of a rule's capture sampling sequence: its own, apart from the one loss and
 * corrupt draw from, so that sampling changes none of their decisions (bpf/capture.h). */
export function captureSeed(seed: bigint): bigint {
  return U64(seed ^ 0x6361707475726521n); // "capture!"
}

export const LOSS_MODELS = ['random', 'gilbert-elliott'] as const;
export const REGIONS = ['any', 'ip', 'transport', 'payload'] as const;
export const TCP_FLAG_BITS: Readonly<Record<string, number>> = Object.fromEntries(TCP_FLAG_NAMES.map((name, i) => [name.toUpperCase(), 1 << i]));

/** A percentage (0..100) as a fraction of 2^32, rounded to nearest. */
export function percentToProb(pct: number): bigint {
  const p = BigInt(Math.round((pct * 2 ** 32) / 100));
  return p > PROB_ONE ? PROB_ONE : p < 0n ? 0n : p;
}

/** A fraction (0..1) as a fraction of 2^32, rounded to nearest. */
export function fractionToProb(f: number): bigint {
  const p = BigInt(Math.round(f * 2 ** 32));
  return p > PROB_ONE ? PROB_ONE : p < 0n ? 0n : p;
}

/** "SYN,PSH" -> the flag bits; a reason when a name is unknown. */
export function parseTcpFlagList(text: string): number | string {
  let mask = 0;
  for (const t of text.split(/[,\s|]+/).filter((x) => x !== '')) {
    const bit = TCP_FLAG_BITS[t.toUpperCase()];
    if (bit === undefined) return `unknown flag '${t}' (flags: ${Object.keys(TCP_FLAG_BITS).join(' ')})`;
    mask |= bit;
  }
  return mask;
}

/** Default burst of a rate: 10 ms at the rate, at least 1600 bytes (one full frame and some). */
export function defaultBurst(rateBps: number): number {
  return Math.max(1600, Math.ceil(rateBps / 800));
}

/** The seed of a policy's random sequence: its own, else one derived from the set's, else random. */
export function ruleSeed(p: Policy, setSeed?: bigint): bigint {
  if (p.seed !== undefined) return U64(p.seed);
  if (setSeed !== undefined) return U64(U64(setSeed) * 0x9e3779b97f4a7c15n + BigInt(p.id));
  return crypto.randomBytes(8).readBigUInt64LE(0);
}

/** The policy's emulation actions as struct policy_emul. */
export function compileEmul(p: Policy, seed: bigint): PolicyEmul {
  const e = emptyPolicyEmul();
  e.seed = seed;
  for (const a of p.actions) {
    const q = a.params;
    switch (a.kind) {
      case 'loss':
        if (q.model === 'gilbert-elliott') {
          e.lossModel = 1;
          e.lossP = percentToProb(q.p as number);
          e.lossCorr = percentToProb(q.r as number);
          e.lossBad = percentToProb((q.lossBad as number | undefined) ?? 100);
          e.lossGood = percentToProb((q.lossGood as number | undefined) ?? 0);
        } else {
          e.lossP = percentToProb(q.probability as number);
          e.lossCorr = percentToProb((q.correlation as number | undefined) ?? 0);
        }
        break;
      case 'corrupt':
        e.corruptP = percentToProb(q.probability as number);
        e.corruptBits = (q.bits as number | undefined) ?? 1;
        e.corruptRegion = REGIONS.indexOf(((q.region as string | undefined) ?? 'any') as (typeof REGIONS)[number]);
        e.corruptFix = q.checksums === 'fix' ? 1 : 0;
        break;
      case 'truncate':
        e.truncateMode = q.to !== undefined ? 0 : 1;
        e.truncateLen = (q.to ?? q.by) as number;
        e.truncateFix = q.lengths === 'leave' ? 0 : 1;
        break;
      case 'tcp-flags':
        e.tcpSet = q.set === undefined ? 0 : (parseTcpFlagList(q.set as string) as number);
        e.tcpClear = q.clear === undefined ? 0 : (parseTcpFlagList(q.clear as string) as number);
        break;
      case 'capture':
        e.captureP = q.sample === undefined ? PROB_ONE : fractionToProb(q.sample as number);
        e.captureSeed = captureSeed(seed);
        e.captureSnaplen = (q.snaplen as number | undefined) ?? CAPTURE.snaplenDefault;
        e.captureFlags = q.drops === true ? CAPTURE.flagDrops : 0;
        break;
      case 'rate': {
        const bps = BigInt(q.rate as number);
        const burst = BigInt((q.burst as number | undefined) ?? defaultBurst(q.rate as number));
        e.rateBps = bps;
        e.rateCap = burst * 8n * NS_PER_S;
        e.rateFullNs = (e.rateCap + bps - 1n) / bps;
        e.rateScope = q.per === 'conversation' ? 3 : 0;
        break;
      }
    }
  }
  return e;
}

// ---- state and randomness -------------------------------------------------------------------

/** struct policy_act_state. */
export interface EmulState {
  prng: bigint;
  credit: bigint;
  lastNs: bigint;
  lossLast: number;
  geBad: number;
}

export function freshState(e: PolicyEmul, nowNs: bigint): EmulState {
  return { prng: e.seed, credit: e.rateCap, lastNs: nowNs, lossLast: 0, geBad: 0 };
}

/** One step of splitmix64: the top 32 bits. */
export function nextRandom(st: EmulState): bigint {
  st.prng = U64(st.prng + 0x9e3779b97f4a7c15n);
  let z = st.prng;
  z = U64((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
  z = U64((z ^ (z >> 27n)) * 0x94d049bb133111ebn);
  return (z ^ (z >> 31n)) >> 32n;
}

const chance = (st: EmulState, p: bigint) => nextRandom(st) < p;

/** actions_rate_take: true when the bucket covers the frame. */
export function rateTake(e: PolicyEmul, b: EmulState, frameLen: number, nowNs: bigint): boolean {
  const cost = BigInt(frameLen) * 8n * NS_PER_S;
  if (nowNs > b.lastNs) {
    const gap = nowNs - b.lastNs;
    if (gap >= e.rateFullNs) b.credit = e.rateCap;
    else {
      b.credit = U64(b.credit + gap * e.rateBps);
      if (b.credit > e.rateCap) b.credit = e.rateCap;
    }
    b.lastNs = nowNs;
  }
  if (b.credit < cost) return false;
  b.credit -= cost;
  return true;
}

/** actions_loss: true when the packet is lost. */
export function lossDecide(e: PolicyEmul, st: EmulState): boolean {
  let lost: boolean;
  if (e.lossModel === 1) {
    lost = chance(st, st.geBad ? e.lossBad : e.lossGood);
    if (st.geBad) st.geBad = chance(st, e.lossCorr) ? 0 : 1;
    else st.geBad = chance(st, e.lossP) ? 1 : 0;
    return lost;
  }
  if (e.lossCorr && chance(st, e.lossCorr)) lost = st.lossLast === 1;
  else lost = chance(st, e.lossP);
  st.lossLast = lost ? 1 : 0;
  return lost;
}

// ---- the frame ------------------------------------------------------------------------------

export type L4Parse = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'other';

/** What bpf/parsing.h records of a frame that the modifying actions need. */
export interface FrameInfo {
  parse: L4Parse;
  family: 4 | 6;
  l3Off: number;
  l4Off: number;
  ipEnd: number;
  frameLen: number;
}

const isExt = (n: number) => n === 0 || n === 43 || n === 44 || n === 51 || n === 60;

/** parsing.h packet_parse(), as far as the actions need it; null without an IP header. */
export function parseFrame(f: Uint8Array): FrameInfo | null {
  const len = f.length;
  if (len < 14) return null;
  let off = 12;
  let proto = (f[off]! << 8) | f[off + 1]!;
  off = 14;
  for (let i = 0; i < 2 && (proto === 0x8100 || proto === 0x88a8); i++) {
    if (off + 4 > len) return null;
    proto = (f[off + 2]! << 8) | f[off + 3]!;
    off += 4;
  }
  if (proto === 0x8100 || proto === 0x88a8) return null;
  const l3Off = off;
  let next: number;
  let family: 4 | 6;
  let ipEnd: number;
  if (proto === 0x0800) {
    if (off + 20 > len || f[off]! >> 4 !== 4) return null;
    const hlen = (f[off]! & 15) * 4;
    if (hlen < 20 || off + hlen > len) return null;
    family = 4;
    ipEnd = l3Off + ((f[off + 2]! << 8) | f[off + 3]!);
    const frag = (f[off + 6]! << 8) | f[off + 7]!;
    next = f[off + 9]!;
    off += hlen;
    if (frag & 0x1fff) return { parse: 'other', family, l3Off, l4Off: 0, ipEnd, frameLen: len };
  } else if (proto === 0x86dd) {
    if (off + 40 > len || f[off]! >> 4 !== 6) return null;
    family = 6;
    ipEnd = l3Off + 40 + ((f[off + 4]! << 8) | f[off + 5]!);
    next = f[off + 6]!;
    off += 40;
    for (let i = 0; i < 6 && isExt(next); i++) {
      if (next === 44) {
        if (off + 8 > len) return { parse: 'other', family, l3Off, l4Off: 0, ipEnd, frameLen: len };
        const fo = (f[off + 2]! << 8) | f[off + 3]!;
        next = f[off]!;
        off += 8;
        if (fo & 0xfff8) return { parse: 'other', family, l3Off, l4Off: 0, ipEnd, frameLen: len };
        continue;
      }
      if (off + 2 > len) return { parse: 'other', family, l3Off, l4Off: 0, ipEnd, frameLen: len };
      const extLen = next === 51 ? (f[off + 1]! + 2) * 4 : (f[off + 1]! + 1) * 8;
      if (off + extLen > len) return { parse: 'other', family, l3Off, l4Off: 0, ipEnd, frameLen: len };
      next = f[off]!;
      off += extLen;
    }
    if (isExt(next)) return { parse: 'other', family, l3Off, l4Off: 0, ipEnd, frameLen: len };
  } else return null;
  const base = { family, l3Off, l4Off: off, ipEnd, frameLen: len };
  if (next === 6) {
    if (off + 20 > len) return { ...base, parse: 'other' };
    const doff = (f[off + 12]! >> 4) * 4;
    if (doff < 20 || off + doff > len) return { ...base, parse: 'other' };
    return { ...base, parse: 'tcp' };
  }
  if (next === 17) return { ...base, parse: off + 8 > len ? 'other' : 'udp' };
  if ((next === 1 && family === 4) || (next === 58 && family === 6)) {
    if (off + 4 > len) return { ...base, parse: 'other' };
    return { ...base, parse: next === 1 ? 'icmp' : 'icmpv6' };
  }
  return { ...base, parse: 'other' };
}

// ---- bytes and checksums (actions.h, same order of operations) -----------------------------

const fold = (s: number) => {
  s = (s & 0xffff) + (s >>> 16);
  return (s & 0xffff) + (s >>> 16);
};
const csumReplace = (csum: number, from: number, to: number) => ~fold((~csum & 0xffff) + (~from & 0xffff) + to) & 0xffff;
const byteWord = (v: number, odd: number) => (odd ? v : v << 8);

/** The frame being changed: a buffer whose length is the frame's (bpf_xdp_adjust_tail). */
class Frame {
  constructor(
    public b: Uint8Array,
    public m: FrameInfo,
  ) {}
  load16(off: number): number | undefined {
    return off >= 0 && off + 2 <= this.m.frameLen ? (this.b[off]! << 8) | this.b[off + 1]! : undefined;
  }
  store16(off: number, v: number): void {
    if (off < 0 || off + 2 > this.m.frameLen) return;
    this.b[off] = (v >> 8) & 0xff;
    this.b[off + 1] = v & 0xff;
  }
  csumFix(off: number, from: number, to: number, udp: boolean): void {
    const c = this.load16(off);
    if (c === undefined) return;
    let n = csumReplace(c, from & 0xffff, to & 0xffff);
    if (udp && n === 0) n = 0xffff;
    this.store16(off, n);
  }
  get l4CsumOff(): number {
    const m = this.m;
    return m.parse === 'tcp' ? m.l4Off + 16 : m.parse === 'udp' ? m.l4Off + 6 : m.l4Off + 2;
  }
  get hasPseudo(): boolean {
    return this.m.parse !== 'icmp';
  }
  l4CsumOn(): boolean {
    const c = this.load16(this.l4CsumOff);
    if (c === undefined) return false;
    return !(this.m.parse === 'udp' && this.m.family === 4 && c === 0);
  }
  l4HdrLen(): number {
    if (this.m.parse === 'tcp') return this.m.l4Off + 12 < this.m.frameLen ? (this.b[this.m.l4Off + 12]! >> 4) * 4 : 20;
    return this.m.parse === 'udp' ? 8 : 4;
  }
  /** actions_sum_bytes: big-endian ones' complement sum of [off, end), -1 past SUM_MAX. */
  sumBytes(off: number, end: number): number {
    if (end <= off) return 0;
    if (end - off > SUM_MAX) return -1;
    let s = 0;
    for (let i = off; i < end; i += 2) s = fold(s + ((this.b[i]! << 8) | (i + 1 < end ? this.b[i + 1]! : 0)));
    return fold(s);
  }
}

function truncate(fr: Frame, e: PolicyEmul, l4Hdr: number): void {
  const m = fr.m;
  const len = m.frameLen;
  const udp = m.parse === 'udp';
  let cut = e.truncateMode === 0 ? e.truncateLen : len >= FRAME_MIN + e.truncateLen ? len - e.truncateLen : FRAME_MIN;
  if (cut < FRAME_MIN) cut = FRAME_MIN;
  if (cut >= len) return;
  const ipEnd = m.ipEnd > 0 ? m.ipEnd : 0;
  const oldEnd = Math.min(ipEnd, len);
  const newEnd = Math.min(ipEnd, cut);
  if (e.truncateFix && cut >= m.l4Off + l4Hdr && newEnd < ipEnd) {
    if (m.family === 4) {
      const from = (ipEnd - m.l3Off) & 0xffff;
      const to = (newEnd - m.l3Off) & 0xffff;
      fr.store16(m.l3Off + 2, to);
      fr.csumFix(m.l3Off + 10, from, to, false);
    } else {
      fr.store16(m.l3Off + 4, (newEnd - m.l3Off - 40) & 0xffff);
    }
    const csumOff = fr.l4CsumOff;
    if (fr.l4CsumOn()) {
      let cutSum = fr.sumBytes(newEnd, oldEnd);
      if (cutSum >= 0 && (newEnd - m.l4Off) & 1) cutSum = ((cutSum & 0xff) << 8) | ((cutSum >> 8) & 0xff);
      const from = (ipEnd - m.l4Off) & 0xffff;
      const to = (newEnd - m.l4Off) & 0xffff;
      const csum = fr.load16(csumOff);
      if (cutSum >= 0 && csum !== undefined) {
        let s = (~csum & 0xffff) + (~cutSum & 0xffff);
        if (fr.hasPseudo) s += (~from & 0xffff) + to;
        if (udp) s += (~from & 0xffff) + to;
        let n = ~fold(s) & 0xffff;
        if (udp && n === 0) n = 0xffff;
        fr.store16(csumOff, n);
      }
    }
    if (udp) fr.store16(m.l4Off + 4, (newEnd - m.l4Off) & 0xffff);
    m.ipEnd = newEnd;
  }
  m.frameLen = cut;
  fr.b = fr.b.subarray(0, cut);
}

const SPARE_IPV4 = [0, 2, 3, 6, 7, 9, 10, 11];
const SPARE_IPV6 = [0, 4, 5, 6];
const SPARE_TCP = [12, 16, 17];
const SPARE_UDP = [4, 5, 6, 7];
const SPARE_ICMP = [2, 3];

/** actions_spared: bytes corrupt leaves alone when it fixes checksums. */
export function spared(m: FrameInfo, b: number): boolean {
  if (b < m.l4Off) {
    const rel = b - m.l3Off;
    if (m.family !== 4 && rel >= 40) return true;
    return (m.family === 4 ? SPARE_IPV4 : SPARE_IPV6).includes(rel);
  }
  const rel = b - m.l4Off;
  return (m.parse === 'tcp' ? SPARE_TCP : m.parse === 'udp' ? SPARE_UDP : SPARE_ICMP).includes(rel);
}

/** The [lo, hi) byte range corrupt works in (frame offsets), for a frame as it is now. */
export function corruptRegion(m: FrameInfo, region: number, l4Hdr: number): [number, number] {
  let end = m.frameLen;
  if (m.ipEnd >= 0 && m.ipEnd < end) end = m.ipEnd;
  let lo = m.l3Off;
  let hi = end;
  if (region === 1) hi = m.l4Off;
  else if (region === 2) {
    lo = m.l4Off;
    hi = m.l4Off + l4Hdr;
  } else if (region === 3) lo = m.l4Off + l4Hdr;
  if (hi > end) hi = end;
  return [lo, hi];
}

function corrupt(fr: Frame, e: PolicyEmul, st: EmulState, l4Hdr: number): void {
  const m = fr.m;
  const [lo, hi] = corruptRegion(m, e.corruptRegion, l4Hdr);
  if (lo >= hi) return;
  const nbits = BigInt((hi - lo) * 8);
  const fix = e.corruptFix === 1;
  const l4Csum = fix && fr.l4CsumOn();
  const chosen: number[] = [];
  let i = 0;
  let draws = 0;
  for (let n = 0; n < CORRUPT_BITS_MAX * CORRUPT_DRAWS; n++) {
    if (i >= e.corruptBits || i >= CORRUPT_BITS_MAX) return;
    const pos = Number(nextRandom(st) % nbits);
    if (chosen.includes(pos) || (fix && spared(m, lo + (pos >> 3)))) {
      if (++draws >= CORRUPT_DRAWS) {
        i++;
        draws = 0;
      }
      continue;
    }
    chosen.push(pos);
    i++;
    draws = 0;
    const b = lo + (pos >> 3);
    if (b + 1 > m.frameLen) continue;
    const from = fr.b[b]!;
    const to = from ^ (0x80 >> (pos & 7));
    fr.b[b] = to;
    if (!fix) continue;
    const rel = b - m.l3Off;
    const odd = rel & 1;
    if (m.family === 4 && b < m.l4Off) fr.csumFix(m.l3Off + 10, byteWord(from, odd), byteWord(to, odd), false);
    if (!l4Csum) continue;
    if ((b >= m.l4Off && b < m.ipEnd) || (fr.hasPseudo && (m.family === 4 ? rel >= 12 && rel < 20 : rel >= 8 && rel < 40))) {
      fr.csumFix(fr.l4CsumOff, byteWord(from, odd), byteWord(to, odd), m.parse === 'udp');
    }
  }
}

function tcpFlags(fr: Frame, e: PolicyEmul): void {
  const m = fr.m;
  if (m.parse !== 'tcp' || m.l4Off + 18 > m.frameLen) return;
  const from = fr.b[m.l4Off + 13]!;
  const to = (from | e.tcpSet) & ~e.tcpClear & 0xff;
  if (to === from) return;
  fr.b[m.l4Off + 13] = to;
  fr.csumFix(m.l4Off + 16, from, to, false);
}

/**
 * actions_modify: the frame after truncate, corrupt and tcp-flags (a new array; the input is
 * not changed). `st` is the rule's state (for corrupt's draws), undefined without one.
 */
export function modifyFrame(frame: Uint8Array, mask: number, e: PolicyEmul, st: EmulState | undefined): Uint8Array {
  const info = parseFrame(frame);
  const out = Uint8Array.from(frame);
  if (!info || info.parse === 'other' || !(mask & EMUL_MODIFY)) return out;
  const fr = new Frame(out, { ...info });
  const l4Hdr = fr.l4HdrLen();
  if (mask & BIT('truncate')) truncate(fr, e, l4Hdr);
  if (mask & BIT('corrupt') && st && chance(st, e.corruptP)) corrupt(fr, e, st, l4Hdr);
  if (mask & BIT('tcp-flags')) tcpFlags(fr, e);
  return Uint8Array.from(fr.b);
}
