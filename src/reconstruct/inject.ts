// `bae inject`: packets forged to fit a live conversation. Its addresses and ports come from
// bae's maps (bae_convs, bae_tcp_flows), TCP sequence and acknowledgement numbers from the flow
// state (the sender's highest end seq is the receiver's next expected one: inside the window),
// frame sizes and spacing from the conversation's profile; MACs from the command line, the
// neighbour table or the port. The frames leave through inject-send.ts.
import { execFileSync } from 'node:child_process';
import { BaeError, UsageError } from '../errors';
import {
  AF_INET,
  AF_INET6,
  MAPS,
  decodeFlowKey,
  decodeTcpFlow,
  ifindexOf,
  openLoadedMap,
  formatAddress,
  parseAddress,
  status,
  type BpfMap,
  type TcpHalf,
} from '../datapath';
import { findProfile, readProfiles, type DirectionProfile } from '../profiles';
import { FORGE_KIND_NAMES, forgeKind, type ForgeContext, type ForgeKind, type TcpState } from './forge-catalogue';
import { formatMac, parseMac, type Endpoints } from './forge';
import { forgeRng, type ForgeRng } from './forge-rng';
import { INJECT_MAX_SECONDS, Injector, checkBounds, sendFrames, type OutFrame, type SendReport } from './inject-send';
import type { PacketRecord } from './packet-record';

/** What `bae inject` sends when --rate is not given and the profile has no spacing. */
export const DEFAULT_INJECT_RATE = 1000;
/** With spacing drawn from the profile, the rate never exceeds this, nor any gap 1 s. */
export const PROFILE_RATE_BOUND = 100_000;
const MAX_DRAWN_GAP_NS = 1e9;
/** A frame length when the profile has no frame of the sending direction. */
const DEFAULT_FRAME_SIZE = 128;

export class NoConversationError extends BaeError {
  constructor(message: string) {
    super('BAE_NO_CONVERSATION', message);
  }
}

export interface InjectRequest {
  src: string;
  dst: string;
  kind: string;
  /** Instances of the kind (a kind of two fragments sends two frames per instance). */
  count: number;
  /** Frames per second; without it, spacing is drawn from the profile. */
  rate?: number;
  seed: number;
  /** The port the frames leave by; default: bae's port when it has one. */
  port?: string;
  sport?: number;
  dport?: number;
  srcMac?: string;
  dstMac?: string;
  pinDir: string;
}

export interface InjectPlan {
  kind: ForgeKind;
  port: string;
  ifindex: number;
  endpoints: { srcMac: string; dstMac: string; src: string; dst: string; sport: number; dport: number; ttl: number; proto: 'tcp' | 'udp' };
  /** The TCP state the frames were forged from (before data kinds advanced it). */
  tcp?: TcpState;
  frames: OutFrame[];
  rate: number;
  gapNs?: () => number;
}

export interface InjectResult {
  plan: InjectPlan;
  report: SendReport;
  /** One record per distinct frame sent (a repeated frame once, with its repeat count). */
  sent: { record: PacketRecord; repeat: number }[];
}

/** An address in bae's text form (the maps' keys are formatted so), with its family. */
function checkAddress(what: string, addr: string): { text: string; version: 4 | 6 } {
  const p = parseAddress(addr);
  if (!p) throw new UsageError(`${what} '${addr}' is not an IPv4 or IPv6 address`);
  return { text: formatAddress(p.family, p.addr), version: p.family };
}

interface FlowMatch {
  sport: number;
  dport: number;
  tcp: TcpState;
  seen: boolean;
}

/** a is after b in sequence space (RFC 793 modular comparison). */
const seqAfter = (a: number, b: number): boolean => ((a - b) | 0) > 0;

/**
 * The sender's state for a forged segment: the receiver's next expected byte is the later of
 * what the sender sent (its highest end) and what the receiver acknowledged in its latest
 * segment. bae's flow state follows segments that occupy sequence space (data, SYN, FIN), not
 * pure ACKs, and never sees an injection (it leaves a port, it does not cross one): after a
 * forged data segment the receiver expects more than bae knows until one of the two sends data.
 */
function senderState(sender: TcpHalf, receiver: TcpHalf): TcpState {
  const seq = receiver.seen && seqAfter(receiver.ack, sender.seqHigh) ? receiver.ack : sender.seqHigh;
  return { seq, ack: sender.ack, window: sender.window };
}

/** The TCP flows between src and dst in bae_tcp_flows, oriented from src. */
export function flowsBetween(flows: BpfMap, src: string, dst: string): FlowMatch[] {
  const { keys, values } = flows.lookupBatch();
  const out: FlowMatch[] = [];
  keys.forEach((k, i) => {
    const key = decodeFlowKey(k);
    if ((key.family !== AF_INET && key.family !== AF_INET6) || key.a === key.b) return;
    const [a, b] = decodeTcpFlow(values[i]!);
    if (key.a === src && key.b === dst) out.push({ sport: key.portA, dport: key.portB, tcp: senderState(a, b), seen: a.seen });
    else if (key.a === dst && key.b === src) out.push({ sport: key.portB, dport: key.portA, tcp: senderState(b, a), seen: b.seen });
  });
  return out;
}

/** Bounds of the frame-size histogram's bucket i (bpf/bae.h BAE_SIZE_BUCKETS). */
function bucketBounds(i: number): [number, number] {
  if (i === 0) return [14, 63];
  if (i >= 7) return [4096, 9000];
  return [2 ** (i + 5), 2 ** (i + 6) - 1];
}

/** A frame length drawn from a direction's size histogram, within its min and max. */
export function drawFrameSize(dir: DirectionProfile | undefined, rng: ForgeRng): number {
  if (!dir || dir.packets === 0n) return DEFAULT_FRAME_SIZE;
  const weights = dir.sizeHist.map(Number);
  const total = weights.reduce((a, b) => a + b, 0);
  let pick = rng() * total;
  let bucket = weights.findIndex((w) => (pick -= w) < 0);
  if (bucket < 0) bucket = weights.length - 1;
  const [lo, hi] = bucketBounds(bucket);
  const min = Math.max(lo, dir.sizeMin);
  const max = Math.min(hi, dir.sizeMax);
  return min <= max ? rng.int(min, max) : rng.int(dir.sizeMin, dir.sizeMax);
}

/** Gaps (ns) drawn from a direction's mean inter-arrival time (exponential, each at most 1 s),
 *  or undefined when the profile has no spacing. */
export function spacingFromProfile(dir: DirectionProfile | undefined, rng: ForgeRng): (() => number) | undefined {
  if (!dir || !(dir.iatMeanNs > 0)) return undefined;
  const mean = dir.iatMeanNs;
  return () => Math.min(MAX_DRAWN_GAP_NS, -Math.log(1 - rng()) * mean);
}

function macOfPort(port: string): Buffer {
  // Through netlink, not /sys/class/net: under `nsenter --net` sysfs is still the host's.
  try {
    const out = execFileSync('ip', ['-j', 'link', 'show', 'dev', port], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const [link] = JSON.parse(out) as { address?: string }[];
    return parseMac(link?.address ?? '');
  } catch (err) {
    throw new UsageError(`cannot read the MAC address of port ${port}: give --src-mac`, { cause: err });
  }
}

/** The neighbour table's entry of `addr` (this network namespace): its MAC and the device it
 *  is on, if it has a usable one. */
export function neighbourEntry(addr: string): { mac: Buffer; dev: string } | undefined {
  let out: string;
  try {
    out = execFileSync('ip', ['-j', 'neigh', 'show', 'to', addr], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
  const entries = JSON.parse(out || '[]') as { lladdr?: string; dev?: string; state?: string[] }[];
  const e = entries.find((n) => n.lladdr && !(n.state ?? []).includes('FAILED'));
  return e?.lladdr ? { mac: parseMac(e.lladdr), dev: e.dev ?? '' } : undefined;
}

/** The neighbour table's MAC of `addr` (this network namespace), if it has a usable one. */
export function neighbourMac(addr: string): Buffer | undefined {
  return neighbourEntry(addr)?.mac;
}

function macOption(what: string, text: string): Buffer {
  try {
    return parseMac(text);
  } catch (err) {
    throw new UsageError(`bad ${what} '${text}': six hex bytes separated by ':'`, { cause: err });
  }
}

function choosePort(req: InjectRequest): string {
  if (req.port !== undefined) return req.port;
  const st = status({ pinDir: req.pinDir });
  if (!st.loaded || st.ports.length === 0) throw new UsageError('bae has no port to inject through here: give --port IF');
  if (st.ports.length > 1) {
    throw new UsageError(`bae is inline on ${st.ports.map((p) => p.iface).join(' and ')}: say which port faces ${req.dst} with --port`);
  }
  return st.ports[0]!.iface;
}

/** Reads the maps and forges the frames; sends nothing. */
export function planInjection(req: InjectRequest): InjectPlan {
  const kind = forgeKind(req.kind);
  if (!kind) throw new UsageError(`unknown kind '${req.kind}': one of ${FORGE_KIND_NAMES.join(', ')} (bae inject --list)`);
  const source = checkAddress('source', req.src);
  const destination = checkAddress('destination', req.dst);
  const src = source.text;
  const dst = destination.text;
  if (source.version !== destination.version) throw new UsageError(`${src} and ${dst} are not of one address family`);
  if (src === dst) throw new UsageError(`source and destination are the same address (${src})`);
  if (kind.ipv4Only && source.version === 6) throw new UsageError(`${kind.name} is a flaw of the IPv4 header: not for the IPv6 conversation ${src},${dst}`);
  if (!Number.isInteger(req.seed) || req.seed < 0 || req.seed > 0xffffffff) throw new UsageError(`seed must be 0 to 4294967295, got ${req.seed}`);
  // Every instance is at least one frame: a count the rate cannot carry is refused before anything is read.
  if (req.rate !== undefined) checkBounds(req.count, req.rate);

  const convs = openLoadedMap(MAPS.convs, req.pinDir, 'bae inject');
  let dir: DirectionProfile | undefined;
  try {
    const profile = findProfile(readProfiles(convs), src, dst);
    if (!profile) throw new NoConversationError(`bae has seen no conversation between ${src} and ${dst} (bae profiles lists those it has)`);
    dir = profile.a === src ? profile.aToB : profile.bToA;
  } finally {
    convs.close();
  }
  const flowsMap = openLoadedMap(MAPS.tcpFlows, req.pinDir, 'bae inject');
  let flows: FlowMatch[];
  try {
    flows = flowsBetween(flowsMap, src, dst).filter(
      (f) => (req.sport === undefined || f.sport === req.sport) && (req.dport === undefined || f.dport === req.dport),
    );
  } finally {
    flowsMap.close();
  }

  const ports = (req.sport !== undefined && req.dport !== undefined) ? { sport: req.sport, dport: req.dport } : undefined;
  let proto: 'tcp' | 'udp';
  let flow: FlowMatch | undefined;
  const wantsTcp = kind.needs === 'tcp' || (kind.needs === 'any' && flows.length > 0);
  if (wantsTcp) {
    if (flows.length === 0) {
      throw new NoConversationError(`no TCP flow from ${src}${req.sport ? `:${req.sport}` : ''} to ${dst}${req.dport ? `:${req.dport}` : ''} in bae's flow state: ${kind.name} needs one`);
    }
    if (flows.length > 1) {
      const list = flows.map((f) => `${f.sport}->${f.dport}`).join(', ');
      throw new UsageError(`${flows.length} TCP flows between ${src} and ${dst} (${list}): choose one with --sport and --dport`);
    }
    flow = flows[0]!;
    if (!flow.seen) throw new NoConversationError(`the TCP flow ${src}:${flow.sport} -> ${dst}:${flow.dport} has no segment of ${src} yet: no sequence number to fit`);
    proto = 'tcp';
  } else {
    if (!ports) throw new UsageError(`${kind.name} needs the conversation's UDP ports: give --sport and --dport`);
    proto = 'udp';
  }
  const sport = flow?.sport ?? ports!.sport;
  const dport = flow?.dport ?? ports!.dport;

  const port = choosePort(req);
  const ifindex = ifindexOf(port);
  const srcMac = req.srcMac !== undefined ? macOption('--src-mac', req.srcMac) : macOfPort(port);
  const dstMac = req.dstMac !== undefined ? macOption('--dst-mac', req.dstMac) : neighbourMac(dst);
  if (!dstMac) {
    throw new UsageError(`no MAC address known for ${dst}: bae's maps keep none and the neighbour table here has none; give --dst-mac`);
  }
  const ep: Endpoints = { srcMac, dstMac, src, dst, sport, dport, ttl: dir && dir.packets > 0n && dir.ttlLast > 0 ? dir.ttlLast : 64 };

  const rng = forgeRng(req.seed);
  const tcp = flow ? { ...flow.tcp } : undefined;
  const ctx: ForgeContext = { ep, proto, tcp: tcp ? { ...tcp } : undefined, frameSize: (r) => drawFrameSize(dir, r), ipId: rng.u32() & 0xffff };
  const frames: OutFrame[] = [];
  const out = (data: Buffer, repeat = 1): OutFrame => ({ data, repeat, kind: 'injected', policy: null, action: 'inject', reason: kind.name });
  if (kind.repeats) {
    for (const f of kind.forge(ctx, rng)) frames.push(out(f, req.count));
  } else {
    for (let i = 0; i < req.count; i++) for (const f of kind.forge(ctx, rng)) frames.push(out(f));
  }
  const gapNs = req.rate === undefined ? spacingFromProfile(dir, rng) : undefined;
  const rate = req.rate ?? (gapNs ? PROFILE_RATE_BOUND : DEFAULT_INJECT_RATE);
  const total = frames.reduce((n, f) => n + (f.repeat ?? 1), 0);
  // Drawn gaps are at most 1 s each: the count bounds the time.
  if (gapNs && total > INJECT_MAX_SECONDS) {
    throw new UsageError(`${total} frames with spacing drawn from the profile (gaps up to 1 s) may take over ${INJECT_MAX_SECONDS} s: give --rate`);
  }
  checkBounds(total, rate);
  return {
    kind,
    port,
    ifindex,
    endpoints: { srcMac: formatMac(srcMac), dstMac: formatMac(dstMac), src, dst, sport, dport, ttl: ep.ttl, proto },
    tcp,
    frames,
    rate,
    gapNs,
  };
}

/** Plans and sends; the records say what went out. */
export async function inject(req: InjectRequest, signal?: AbortSignal): Promise<InjectResult> {
  const plan = planInjection(req);
  const injector = new Injector();
  const sent: InjectResult['sent'] = [];
  try {
    const report = await sendFrames(injector, plan.frames, {
      ifindex: plan.ifindex,
      rate: plan.rate,
      gapNs: plan.gapNs,
      signal,
      onSent: (record, repeat) => sent.push({ record, repeat }),
    });
    return { plan, report, sent };
  } finally {
    injector.close();
  }
}
