// The frame builder of forged packets: Ethernet, IPv4 or IPv6, TCP and UDP with correct
// checksums unless asked otherwise. Every malformation of the catalogue (forge-catalogue.ts) is one override
// here, so a forged frame differs from a valid one exactly where its kind says.
import { parseIPv4, parseIPv6 } from '../datapath';

export const ETH_HLEN = 14;
export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const IPV4_HLEN = 20;
export const IPV6_HLEN = 40;
export const TCP_HLEN = 20;
export const UDP_HLEN = 8;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;

/** IPv4 flag bits in the flags/fragment-offset word. */
const IP_DF = 0x4000;
const IP_MF = 0x2000;

/** Who talks to whom: the addresses of one direction of a conversation. */
export interface Endpoints {
  srcMac: Buffer;
  dstMac: Buffer;
  /** IPv4 or IPv6 addresses (both of one family). */
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** IPv4 TTL or IPv6 hop limit of the forged packets. */
  ttl: number;
}

/** RFC 1071 one's-complement sum of `parts`, folded and inverted. */
export function internetChecksum(...parts: Buffer[]): number {
  let sum = 0;
  for (const part of parts) {
    for (let i = 0; i + 1 < part.length; i += 2) sum += part.readUInt16BE(i);
    if (part.length % 2) sum += part[part.length - 1]! << 8;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * A checksum that is wrong for a receiver that validates: `correct` moved by a nonzero amount
 * from `pick` (1..0xfffe), never 0 for UDP (0 there means "no checksum") and never the other
 * one's-complement form of zero when `correct` is a zero (0x0000 and 0xffff verify alike).
 */
export function wrongChecksum(correct: number, pick: () => number, udp: boolean): number {
  for (let i = 0; i < 64; i++) {
    const bad = (correct + pick()) & 0xffff;
    const zeroish = (v: number) => v === 0 || v === 0xffff;
    if (bad === correct || (zeroish(bad) && zeroish(correct)) || (udp && bad === 0)) continue;
    return bad;
  }
  return correct ^ 0x5555; // never equal, never zero-equivalent of a zero
}

export function parseMac(text: string): Buffer {
  const parts = text.split(':');
  const bytes = parts.map((h) => (/^[0-9a-fA-F]{1,2}$/.test(h) ? parseInt(h, 16) : NaN));
  if (bytes.length !== 6 || bytes.some((b) => Number.isNaN(b))) throw new RangeError(`bad MAC address '${text}': six hex bytes separated by ':'`);
  return Buffer.from(bytes);
}

export function formatMac(mac: Buffer): string {
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The 4 bytes of a dotted IPv4 address; a RangeError names anything else. */
export function ipv4Bytes(text: string): Buffer {
  const b = parseIPv4(text);
  if (!b) throw new RangeError(`'${text}' is not an IPv4 address`);
  return Buffer.from(b);
}

export function ipv6Bytes(text: string): Buffer {
  const b = parseIPv6(text);
  if (!b) throw new RangeError(`'${text}' is not an IPv6 address`);
  return Buffer.from(b);
}

/** 6 when the endpoints are IPv6, else 4. */
export const ipVersionOf = (ep: Pick<Endpoints, 'src'>): 4 | 6 => (parseIPv4(ep.src) ? 4 : 6);

/** The length of the IP header the endpoints' family has (without IPv4 options). */
export const ipHeaderLength = (ep: Pick<Endpoints, 'src'>): number => (ipVersionOf(ep) === 4 ? IPV4_HLEN : IPV6_HLEN);

export function ethHeader(ep: Pick<Endpoints, 'srcMac' | 'dstMac'> & Partial<Pick<Endpoints, 'src'>>, ethertype = ep.src && ipVersionOf({ src: ep.src }) === 6 ? ETH_P_IPV6 : ETH_P_IP): Buffer {
  const b = Buffer.alloc(ETH_HLEN);
  ep.dstMac.copy(b, 0);
  ep.srcMac.copy(b, 6);
  b.writeUInt16BE(ethertype, 12);
  return b;
}

export interface Ipv4Options {
  protocol: number;
  /** Bytes after the IP header (its total length counts them unless `totalLength` overrides). */
  payloadLength: number;
  id: number;
  /** Fragment offset in 8-byte units, and more-fragments. Default: an unfragmented datagram, DF set. */
  fragOffset?: number;
  moreFragments?: boolean;
  /** Overrides, to break the header. */
  ihl?: number;
  totalLength?: number;
  /** A checksum other than the correct one. */
  checksum?: (correct: number) => number;
}

export function ipv4Header(ep: Endpoints, o: Ipv4Options): Buffer {
  const h = Buffer.alloc(IPV4_HLEN);
  h[0] = 0x40 | ((o.ihl ?? 5) & 0x0f);
  h.writeUInt16BE(o.totalLength ?? IPV4_HLEN + o.payloadLength, 2);
  h.writeUInt16BE(o.id & 0xffff, 4);
  const fragmented = o.fragOffset !== undefined || o.moreFragments !== undefined;
  h.writeUInt16BE(fragmented ? ((o.fragOffset ?? 0) & 0x1fff) | (o.moreFragments ? IP_MF : 0) : IP_DF, 6);
  h[8] = ep.ttl;
  h[9] = o.protocol;
  ipv4Bytes(ep.src).copy(h, 12);
  ipv4Bytes(ep.dst).copy(h, 16);
  const correct = internetChecksum(h);
  h.writeUInt16BE(o.checksum ? o.checksum(correct) : correct, 10);
  return h;
}

export function ipv6Header(ep: Endpoints, nextHeader: number, payloadLength: number): Buffer {
  const h = Buffer.alloc(IPV6_HLEN);
  h.writeUInt32BE(0x60000000, 0); // version 6, traffic class 0, flow label 0
  h.writeUInt16BE(payloadLength, 4);
  h[6] = nextHeader;
  h[7] = ep.ttl;
  ipv6Bytes(ep.src).copy(h, 8);
  ipv6Bytes(ep.dst).copy(h, 24);
  return h;
}

function pseudoHeader(ep: Endpoints, protocol: number, length: number): Buffer {
  if (ipVersionOf(ep) === 6) {
    // RFC 8200 8.1: source, destination, upper-layer length (32 bits), zeros, next header.
    const p = Buffer.alloc(40);
    ipv6Bytes(ep.src).copy(p, 0);
    ipv6Bytes(ep.dst).copy(p, 16);
    p.writeUInt32BE(length, 32);
    p[39] = protocol;
    return p;
  }
  const p = Buffer.alloc(12);
  ipv4Bytes(ep.src).copy(p, 0);
  ipv4Bytes(ep.dst).copy(p, 4);
  p[9] = protocol;
  p.writeUInt16BE(length, 10);
  return p;
}

export interface TcpOptions {
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** TCP options, already a multiple of 4 bytes. */
  options?: Buffer;
  payload?: Buffer;
  checksum?: (correct: number) => number;
}

export function tcpSegment(ep: Endpoints, o: TcpOptions): Buffer {
  const opts = o.options ?? Buffer.alloc(0);
  if (opts.length % 4 !== 0 || opts.length > 40) throw new RangeError(`TCP options must be a multiple of 4 bytes up to 40, got ${opts.length}`);
  const h = Buffer.alloc(TCP_HLEN);
  h.writeUInt16BE(ep.sport, 0);
  h.writeUInt16BE(ep.dport, 2);
  h.writeUInt32BE(o.seq >>> 0, 4);
  h.writeUInt32BE(o.ack >>> 0, 8);
  h[12] = ((TCP_HLEN + opts.length) / 4) << 4;
  h[13] = o.flags & 0xff;
  h.writeUInt16BE(o.window & 0xffff, 14);
  const seg = Buffer.concat([h, opts, o.payload ?? Buffer.alloc(0)]);
  const correct = internetChecksum(pseudoHeader(ep, IPPROTO_TCP, seg.length), seg);
  seg.writeUInt16BE(o.checksum ? o.checksum(correct) : correct, 16);
  return seg;
}

export function udpDatagram(ep: Endpoints, payload: Buffer, checksum?: (correct: number) => number): Buffer {
  const d = Buffer.alloc(UDP_HLEN + payload.length);
  d.writeUInt16BE(ep.sport, 0);
  d.writeUInt16BE(ep.dport, 2);
  d.writeUInt16BE(d.length, 4);
  payload.copy(d, UDP_HLEN);
  let correct = internetChecksum(pseudoHeader(ep, IPPROTO_UDP, d.length), d);
  if (correct === 0) correct = 0xffff; // RFC 768: a computed zero is sent as all ones
  d.writeUInt16BE(checksum ? checksum(correct) : correct, 6);
  return d;
}

/** Ethernet + IPv4 (+ whatever `l4` holds), the IP header built for exactly those bytes. */
export function ipv4Frame(ep: Endpoints, ip: Omit<Ipv4Options, 'payloadLength'>, l4: Buffer): Buffer {
  return Buffer.concat([ethHeader(ep, ETH_P_IP), ipv4Header(ep, { ...ip, payloadLength: l4.length }), l4]);
}

/** Ethernet + the endpoints' IP header (valid; IPv4 with this id) + `l4`. */
export function ipFrame(ep: Endpoints, protocol: number, id: number, l4: Buffer): Buffer {
  if (ipVersionOf(ep) === 4) return ipv4Frame(ep, { protocol, id }, l4);
  return Buffer.concat([ethHeader(ep, ETH_P_IPV6), ipv6Header(ep, protocol, l4.length), l4]);
}
