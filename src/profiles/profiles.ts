// Conversation profiles as the control plane sees them: read from the kernel's per-CPU
// bae_convs map, merged over CPUs, decoded, given derived figures (means, deviations, ages) and
// sorted. Numbers stay exact: counts are bigint here (src/json.ts encodes them for --json).
import {
  AF_INET,
  LAYOUTS,
  TCP_FLAG_NAMES,
  decodeConvKey,
  mergeConvPerCpu,
  splitPerCpu,
  type BpfMap,
  type ConvDir,
} from '../datapath';

/** One direction of a conversation: the kernel's counters (ConvDir, documented there) merged over
 * CPUs, with means and the TCP flags by name. */
export interface DirectionProfile
  extends Pick<
    ConvDir,
    | 'packets'
    | 'bytes'
    | 'firstSeenNs'
    | 'lastSeenNs'
    | 'sizeMin'
    | 'sizeMax'
    | 'sizeHist'
    | 'iatHist'
    | 'iatSumNs'
    | 'iatCount'
    | 'retransmits'
    | 'outOfOrder'
    | 'zeroWindow'
    | 'httpRequests'
    | 'httpResponses'
    | 'httpErrors'
    | 'http5xx'
    | 'ttlMin'
    | 'ttlMax'
    | 'ttlLast'
  > {
  /** Mean frame size in bytes (0 without packets). */
  sizeMean: number;
  /** Standard deviation of frame sizes in bytes. */
  sizeStddev: number;
  /** Mean gap between packets in ns (0 with fewer than two). */
  iatMeanNs: number;
  tcpFlags: Record<(typeof TCP_FLAG_NAMES)[number], bigint>;
}

export interface ConversationProfile {
  family: 'ipv4' | 'ipv6';
  /** The lower address; `aToB` is what it sent. */
  a: string;
  b: string;
  aToB: DirectionProfile;
  bToA: DirectionProfile;
  packets: bigint;
  bytes: bigint;
  retransmits: bigint;
  firstSeenNs: bigint;
  lastSeenNs: bigint;
}

export const SORT_KEYS = ['bytes', 'packets', 'retransmits', 'last-seen'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

function direction(d: ConvDir): DirectionProfile {
  const n = Number(d.packets);
  const mean = n > 0 ? Number(d.bytes) / n : 0;
  const variance = n > 0 ? Math.max(0, Number(d.sizeSumSq) / n - mean * mean) : 0;
  return {
    packets: d.packets,
    bytes: d.bytes,
    firstSeenNs: d.firstSeenNs,
    lastSeenNs: d.lastSeenNs,
    sizeMin: d.sizeMin,
    sizeMax: d.sizeMax,
    sizeMean: mean,
    sizeStddev: Math.sqrt(variance),
    iatMeanNs: d.iatCount > 0n ? Number(d.iatSumNs) / Number(d.iatCount) : 0,
    iatSumNs: d.iatSumNs,
    iatCount: d.iatCount,
    sizeHist: d.sizeHist,
    iatHist: d.iatHist,
    tcpFlags: Object.fromEntries(TCP_FLAG_NAMES.map((f, i) => [f, d.tcpFlags[i] ?? 0n])) as DirectionProfile['tcpFlags'],
    retransmits: d.retransmits,
    outOfOrder: d.outOfOrder,
    zeroWindow: d.zeroWindow,
    httpRequests: d.httpRequests,
    httpResponses: d.httpResponses,
    httpErrors: d.httpErrors,
    http5xx: d.http5xx,
    ttlMin: d.ttlMin,
    ttlMax: d.ttlMax,
    ttlLast: d.ttlLast,
  };
}

/** One profile from a bae_convs key and its per-CPU values. */
export function profileFromEntry(key: Buffer, perCpu: readonly Buffer[]): ConversationProfile {
  const k = decodeConvKey(key);
  const conv = mergeConvPerCpu(perCpu);
  const aToB = direction(conv.dir[0]);
  const bToA = direction(conv.dir[1]);
  const seen = [aToB, bToA].filter((d) => d.packets > 0n);
  return {
    family: k.family === AF_INET ? 'ipv4' : 'ipv6',
    a: k.a,
    b: k.b,
    aToB,
    bToA,
    packets: aToB.packets + bToA.packets,
    bytes: aToB.bytes + bToA.bytes,
    retransmits: aToB.retransmits + bToA.retransmits,
    firstSeenNs: seen.length ? seen.map((d) => d.firstSeenNs).reduce((x, y) => (y < x ? y : x)) : 0n,
    lastSeenNs: seen.length ? seen.map((d) => d.lastSeenNs).reduce((x, y) => (y > x ? y : x)) : 0n,
  };
}

/** Every conversation in a bae_convs map (one batch walk; entries evicted meanwhile are missed). */
export function readProfiles(convs: BpfMap): ConversationProfile[] {
  const valueSize = LAYOUTS.bae_conv!.size;
  if (convs.keySize !== LAYOUTS.bae_conv_key!.size || convs.valueSize !== valueSize) {
    throw new RangeError(
      `map ${convs.name} has ${convs.keySize}-byte keys and ${convs.valueSize}-byte values; ` +
        `a bae_convs map has ${LAYOUTS.bae_conv_key!.size} and ${valueSize}`,
    );
  }
  const { keys, values } = convs.lookupBatch();
  return keys.map((key, i) => {
    const flat = values[i]!;
    return profileFromEntry(key, convs.isPerCpu ? splitPerCpu(flat, valueSize) : [flat]);
  });
}

const sortValue: Record<SortKey, (p: ConversationProfile) => bigint> = {
  bytes: (p) => p.bytes,
  packets: (p) => p.packets,
  retransmits: (p) => p.retransmits,
  'last-seen': (p) => p.lastSeenNs,
};

/** Largest (or most recent) first; ties broken by bytes, then by addresses, so the order is stable. */
export function sortProfiles(profiles: readonly ConversationProfile[], by: SortKey): ConversationProfile[] {
  const value = sortValue[by];
  return [...profiles].sort((x, y) => {
    const d = value(y) - value(x) || y.bytes - x.bytes;
    if (d !== 0n) return d > 0n ? 1 : -1;
    return `${x.a} ${x.b}`.localeCompare(`${y.a} ${y.b}`);
  });
}

/** The profile of the conversation between two addresses (in either order), if present. */
export function findProfile(
  profiles: readonly ConversationProfile[],
  x: string,
  y: string,
): ConversationProfile | undefined {
  return profiles.find((p) => (p.a === x && p.b === y) || (p.a === y && p.b === x));
}

