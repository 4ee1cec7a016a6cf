// The catalogue of forged kinds (`bae inject --list`): each named, documented in one line and
// seedable. A kind forges the frames of one instance from the context of a live conversation
// (endpoints, TCP state, sizes drawn from its profile) and a seeded generator; every malformed
// kind is a valid frame of that conversation with exactly the flaw its name says.
import type { ForgeRng } from './forge-rng';
import {
  ETH_HLEN,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_HLEN,
  TCP_ACK,
  TCP_FIN,
  TCP_HLEN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
  UDP_HLEN,
  ethHeader,
  ipFrame,
  ipHeaderLength,
  ipv4Frame,
  ipv4Header,
  tcpSegment,
  udpDatagram,
  wrongChecksum,
  type Endpoints,
} from './forge';

/** The largest frame forged: an Ethernet MTU of 1500 bytes. */
export const MAX_FRAME = ETH_HLEN + 1500;
/** How far beyond the receiver's next expected sequence number an out-of-window segment lands:
 *  2^30 and up, past any window (at most 2^30 with the largest window scale, RFC 7323). */
const OUT_OF_WINDOW_MIN = 2 ** 30;

export interface TcpState {
  /** The sender's next sequence number: the highest end it sent (the receiver's next expected). */
  seq: number;
  /** The sender's latest acknowledgement number. */
  ack: number;
  /** The sender's latest window field (unscaled). */
  window: number;
}

export interface ForgeContext {
  ep: Endpoints;
  /** 'tcp' when the conversation has a TCP flow (its state in `tcp`), else 'udp'. */
  proto: 'tcp' | 'udp';
  /** The TCP flow state; data kinds advance `seq` by what they send. */
  tcp?: TcpState;
  /** A frame length (bytes on the wire) drawn from the sender's profile. */
  frameSize(rng: ForgeRng): number;
  /** The IPv4 identification of the next datagram; each datagram takes one. */
  ipId: number;
}

export type ForgeLayer = 'eth' | 'ip' | 'tcp' | 'udp';

export interface ForgeKind {
  name: string;
  layer: ForgeLayer;
  /** A well-formed packet that fits the conversation (not a malformation). */
  valid: boolean;
  /** The conversation it needs: a TCP flow, UDP ports, or either. */
  needs: 'tcp' | 'udp' | 'any';
  /** A flaw of the IPv4 header: no IPv6 form. */
  ipv4Only: boolean;
  /** One line for `bae inject --list`. */
  summary: string;
  /** Every instance is the same frames (sent in batches, `repeat`). */
  repeats: boolean;
  /** The frames of one instance. */
  forge(ctx: ForgeContext, rng: ForgeRng): Buffer[];
}

function tcpOf(ctx: ForgeContext): TcpState {
  if (!ctx.tcp) throw new Error('internal: a TCP kind forged without TCP state');
  return ctx.tcp;
}

const nextId = (ctx: ForgeContext): number => {
  const id = ctx.ipId & 0xffff;
  ctx.ipId = (ctx.ipId + 1) & 0xffff;
  return id;
};

/** Printable payload bytes (lowercase letters), so that a forged segment reads in a capture. */
function payload(rng: ForgeRng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = 0x61 + (rng.u32() % 26);
  return b;
}

/** A payload length for the frame size the profile gives, at least 1 byte, within the MTU. */
function payloadLength(ctx: ForgeContext, rng: ForgeRng, headers: number): number {
  const frame = Math.min(MAX_FRAME, Math.max(0, Math.round(ctx.frameSize(rng))));
  return Math.max(1, frame - ETH_HLEN - headers);
}

/** A TCP data segment at the sender's current sequence number (not advanced). */
function dataSegment(ctx: ForgeContext, rng: ForgeRng, checksum?: (c: number) => number): Buffer {
  const t = tcpOf(ctx);
  const data = payload(rng, payloadLength(ctx, rng, ipHeaderLength(ctx.ep) + TCP_HLEN));
  return tcpSegment(ctx.ep, { seq: t.seq, ack: t.ack, flags: TCP_ACK | TCP_PSH, window: t.window, payload: data, checksum });
}

/** A segment without data at the current sequence number, with these flags. */
function bareSegment(ctx: ForgeContext, flags: number, extra: { options?: Buffer } = {}): Buffer {
  const t = tcpOf(ctx);
  return tcpSegment(ctx.ep, { seq: t.seq, ack: (flags & TCP_ACK) ? t.ack : 0, flags, window: t.window, ...extra });
}

function udpBody(ctx: ForgeContext, rng: ForgeRng, checksum?: (c: number) => number): Buffer {
  return udpDatagram(ctx.ep, payload(rng, payloadLength(ctx, rng, ipHeaderLength(ctx.ep) + UDP_HLEN)), checksum);
}

/** A valid upper layer of the conversation's protocol (TCP data at the current seq, or UDP). */
function l4Body(ctx: ForgeContext, rng: ForgeRng): { protocol: number; bytes: Buffer } {
  return ctx.proto === 'tcp'
    ? { protocol: IPPROTO_TCP, bytes: dataSegment(ctx, rng) }
    : { protocol: IPPROTO_UDP, bytes: udpBody(ctx, rng) };
}

const tcpFrame = (ctx: ForgeContext, seg: Buffer): Buffer => ipFrame(ctx.ep, IPPROTO_TCP, nextId(ctx), seg);
const udpFrame = (ctx: ForgeContext, dgram: Buffer): Buffer => ipFrame(ctx.ep, IPPROTO_UDP, nextId(ctx), dgram);
const wrong = (rng: ForgeRng, udp = false) => (correct: number) => wrongChecksum(correct, () => rng.int(1, 0xfffe), udp);

const flagKind = (name: string, flags: number, what: string): ForgeKind => ({
  name,
  layer: 'tcp',
  valid: false,
  needs: 'tcp',
  ipv4Only: false,
  summary: `a segment with ${what}, no data, in window`,
  repeats: false,
  forge: (ctx) => [tcpFrame(ctx, bareSegment(ctx, flags))],
});

/** A frame cut `keep` bytes into the layer that starts at `at`. */
const cut = (frame: Buffer, at: number, keep: number): Buffer => frame.subarray(0, at + keep);

export const FORGE_KINDS: readonly ForgeKind[] = [
  {
    name: 'tcp-in-window',
    layer: 'tcp',
    valid: true,
    needs: 'tcp',
    ipv4Only: false,
    summary: 'a valid data segment at the receiver\'s next expected sequence number (accepted: its bytes join the stream)',
    repeats: false,
    forge: (ctx, rng) => {
      const seg = dataSegment(ctx, rng);
      tcpOf(ctx).seq = (tcpOf(ctx).seq + seg.length - TCP_HLEN) >>> 0;
      return [tcpFrame(ctx, seg)];
    },
  },
  {
    name: 'udp-datagram',
    layer: 'udp',
    valid: true,
    needs: 'udp',
    ipv4Only: false,
    summary: 'a valid UDP datagram between the conversation\'s ports, its size drawn from the profile',
    repeats: false,
    forge: (ctx, rng) => [udpFrame(ctx, udpBody(ctx, rng))],
  },
  {
    name: 'ip-bad-checksum',
    layer: 'ip',
    valid: false,
    needs: 'any',
    ipv4Only: true,
    summary: 'an IPv4 header checksum that does not match its header (the rest valid)',
    repeats: false,
    forge: (ctx, rng) => {
      const body = l4Body(ctx, rng);
      return [ipv4Frame(ctx.ep, { protocol: body.protocol, id: nextId(ctx), checksum: wrong(rng) }, body.bytes)];
    },
  },
  {
    name: 'tcp-bad-checksum',
    layer: 'tcp',
    valid: false,
    needs: 'tcp',
    ipv4Only: false,
    summary: 'an in-window data segment whose TCP checksum is wrong',
    repeats: false,
    forge: (ctx, rng) => [tcpFrame(ctx, dataSegment(ctx, rng, wrong(rng)))],
  },
  {
    name: 'udp-bad-checksum',
    layer: 'udp',
    valid: false,
    needs: 'udp',
    ipv4Only: false,
    summary: 'a UDP datagram whose checksum is wrong (and not 0, which would mean none)',
    repeats: false,
    forge: (ctx, rng) => [udpFrame(ctx, udpBody(ctx, rng, wrong(rng, true)))],
  },
  {
    name: 'eth-truncated',
    layer: 'eth',
    valid: false,
    needs: 'any',
    ipv4Only: false,
    summary: 'a frame that ends with its Ethernet header: the ethertype announces IP and no byte of it follows',
    repeats: false,
    // The kernel takes no frame shorter than 14 bytes for BPF_PROG_TEST_RUN, and no receiver
    // would see one: the shortest sendable cut is right after the header.
    forge: (ctx) => [ethHeader(ctx.ep)],
  },
  {
    name: 'ip-truncated',
    layer: 'ip',
    valid: false,
    needs: 'any',
    ipv4Only: false,
    summary: 'a frame that ends inside the IP header (1 to 19 of IPv4\'s 20 bytes, 1 to 39 of IPv6\'s 40)',
    repeats: false,
    forge: (ctx, rng) => {
      const body = l4Body(ctx, rng);
      return [cut(ipFrame(ctx.ep, body.protocol, nextId(ctx), body.bytes), ETH_HLEN, rng.int(1, ipHeaderLength(ctx.ep) - 1))];
    },
  },
  {
    name: 'tcp-truncated',
    layer: 'tcp',
    valid: false,
    needs: 'tcp',
    ipv4Only: false,
    summary: 'a datagram that ends inside the TCP header (1 to 19 bytes of it; the IP header\'s length says so too)',
    repeats: false,
    forge: (ctx, rng) => {
      const keep = rng.int(1, TCP_HLEN - 1);
      const seg = bareSegment(ctx, TCP_ACK).subarray(0, keep);
      return [tcpFrame(ctx, seg)];
    },
  },
  {
    name: 'udp-truncated',
    layer: 'udp',
    valid: false,
    needs: 'udp',
    ipv4Only: false,
    summary: 'a datagram that ends inside the UDP header (1 to 7 bytes of it; the IP header\'s length says so too)',
    repeats: false,
    forge: (ctx, rng) => {
      const keep = rng.int(1, UDP_HLEN - 1);
      return [udpFrame(ctx, udpBody(ctx, rng).subarray(0, keep))];
    },
  },
  flagKind('tcp-syn-fin', TCP_SYN | TCP_FIN, 'SYN and FIN set together'),
  flagKind('tcp-null', 0, 'no flag set (a null scan)'),
  flagKind('tcp-xmas', TCP_FIN | TCP_PSH | TCP_URG, 'FIN, PSH and URG set (an xmas scan)'),
  {
    name: 'ip-bad-ihl',
    layer: 'ip',
    valid: false,
    needs: 'any',
    ipv4Only: true,
    summary: 'an IPv4 header length field below 5 (fewer than the 20 bytes of a header)',
    repeats: false,
    forge: (ctx, rng) => {
      const body = l4Body(ctx, rng);
      return [ipv4Frame(ctx.ep, { protocol: body.protocol, id: nextId(ctx), ihl: rng.int(0, 4) }, body.bytes)];
    },
  },
  {
    name: 'ip-bad-total-length',
    layer: 'ip',
    valid: false,
    needs: 'any',
    ipv4Only: true,
    summary: 'an IPv4 total length larger than the datagram the frame carries',
    repeats: false,
    forge: (ctx, rng) => {
      const body = l4Body(ctx, rng);
      const real = IPV4_HLEN + body.bytes.length;
      return [ipv4Frame(ctx.ep, { protocol: body.protocol, id: nextId(ctx), totalLength: Math.min(0xffff, real + rng.int(1, 1000)) }, body.bytes)];
    },
  },
  {
    name: 'ip-tiny-fragment',
    layer: 'ip',
    valid: false,
    needs: 'tcp',
    ipv4Only: true,
    summary: 'a first fragment (more-fragments set) of 8 bytes: ports and sequence number, not the TCP flags (RFC 1858)',
    repeats: false,
    forge: (ctx, rng) => {
      const seg = dataSegment(ctx, rng);
      const ip = ipv4Header(ctx.ep, { protocol: IPPROTO_TCP, id: nextId(ctx), payloadLength: 8, fragOffset: 0, moreFragments: true });
      return [Buffer.concat([ethHeader(ctx.ep), ip, seg.subarray(0, 8)])];
    },
  },
  {
    name: 'ip-overlapping-fragments',
    layer: 'ip',
    valid: false,
    needs: 'any',
    ipv4Only: true,
    summary: 'two fragments of one datagram whose bytes overlap with different contents (a reassembly conflict)',
    repeats: false,
    forge: (ctx, rng) => {
      const body = l4Body(ctx, rng).bytes;
      const padded = body.length >= 24 ? body : Buffer.concat([body, Buffer.alloc(24 - body.length)]);
      const l4 = ctx.proto === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP;
      const id = nextId(ctx);
      // First fragment: bytes 0..15, more to come. Second: from byte 8 (offset 1) to the end,
      // its first 8 bytes overlapping the first fragment's last 8, inverted so that they differ.
      const first = padded.subarray(0, 16);
      const second = Buffer.from(padded.subarray(8));
      for (let i = 0; i < 8; i++) second[i] = ~second[i]! & 0xff;
      const frag = (bytes: Buffer, offset: number, more: boolean) =>
        Buffer.concat([ethHeader(ctx.ep), ipv4Header(ctx.ep, { protocol: l4, id, payloadLength: bytes.length, fragOffset: offset, moreFragments: more }), bytes]);
      return [frag(first, 0, true), frag(second, 1, false)];
    },
  },
  {
    name: 'tcp-bad-options',
    layer: 'tcp',
    valid: false,
    needs: 'tcp',
    ipv4Only: false,
    summary: 'an in-window segment whose TCP option has an impossible length (MSS with length 1)',
    repeats: false,
    // MSS (kind 2) must have length 4; a length below 2 cannot even cover its own kind and
    // length bytes. The NOPs fill the options to a multiple of 4.
    forge: (ctx) => [tcpFrame(ctx, bareSegment(ctx, TCP_ACK, { options: Buffer.from([2, 1, 1, 1]) }))],
  },
  {
    name: 'tcp-out-of-window',
    layer: 'tcp',
    valid: false,
    needs: 'tcp',
    ipv4Only: false,
    summary: 'a data segment 2^30 or more beyond the receiver\'s next expected sequence number (refused)',
    repeats: false,
    forge: (ctx, rng) => {
      const t = tcpOf(ctx);
      const far = { ...ctx, tcp: { ...t, seq: (t.seq + OUT_OF_WINDOW_MIN + rng.int(0, 2 ** 20)) >>> 0 } };
      return [tcpFrame(ctx, dataSegment(far, rng))];
    },
  },
  {
    name: 'tcp-rst',
    layer: 'tcp',
    valid: false,
    needs: 'tcp',
    ipv4Only: false,
    summary: 'a RST at exactly the receiver\'s next expected sequence number: the connection is reset (RFC 5961)',
    repeats: false,
    forge: (ctx) => [tcpFrame(ctx, bareSegment(ctx, TCP_RST | TCP_ACK))],
  },
  {
    name: 'tcp-dup-ack-storm',
    layer: 'tcp',
    valid: false,
    needs: 'tcp',
    ipv4Only: false,
    summary: 'identical pure ACKs of the sender\'s latest acknowledgement, one per count (duplicate ACKs)',
    repeats: true,
    forge: (ctx) => [tcpFrame(ctx, bareSegment(ctx, TCP_ACK))],
  },
];

export const FORGE_KIND_NAMES: readonly string[] = FORGE_KINDS.map((k) => k.name);

export function forgeKind(name: string): ForgeKind | undefined {
  return FORGE_KINDS.find((k) => k.name === name);
}
