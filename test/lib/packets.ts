// A small packet builder for golden-packet tests: Ethernet with VLAN tags, IPv4 with options,
// IPv6 with extension headers, TCP, UDP, ICMP, ICMPv6, all with correct checksums. Every built
// frame comes with the offset and length of each header, so tests can cut it at any byte.
import { AF_INET, encodeAddress } from '../../src/datapath/layout';

export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_ARP = 0x0806;
export const ETH_P_8021Q = 0x8100;
export const ETH_P_8021AD = 0x88a8;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_GRE = 47;
export const IPPROTO_ICMPV6 = 58;

export const IPV6_HOPOPTS = 0;
export const IPV6_ROUTING = 43;
export const IPV6_FRAGMENT = 44;
export const IPV6_AH = 51;
export const IPV6_DSTOPTS = 60;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

export interface VlanTag {
  vid: number;
  /** 0x8100 (802.1Q, the default) or 0x88a8 (802.1ad). */
  tpid?: number;
  pcp?: number;
}

export interface EthSpec {
  src?: string;
  dst?: string;
  vlans?: VlanTag[];
}

export interface Ipv4Spec {
  version: 4;
  src: string;
  dst: string;
  ttl?: number;
  tos?: number;
  id?: number;
  /** IP options, padded with zeros (end of options) to a multiple of 4 bytes. */
  options?: Buffer;
  /** Fragment offset in 8-byte units. */
  fragOffset?: number;
  moreFragments?: boolean;
  dontFragment?: boolean;
  /** Overrides, to build broken headers. */
  ihl?: number;
  versionField?: number;
  protocol?: number;
  totalLength?: number;
}

export type Ipv6Ext =
  | { type: 'hop-by-hop' | 'destination' | 'routing'; length?: number }
  | { type: 'fragment'; offset?: number; more?: boolean; id?: number }
  | { type: 'ah'; length?: number };

export interface Ipv6Spec {
  version: 6;
  src: string;
  dst: string;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
  extensions?: Ipv6Ext[];
  /** Overrides, to build broken headers. */
  versionField?: number;
  nextHeader?: number;
  payloadLength?: number;
}

export interface TcpSpec {
  proto: 'tcp';
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  /** Default: ACK. */
  flags?: number;
  window?: number;
  urgent?: number;
  /** TCP options, padded with zeros (end of option list) to a multiple of 4 bytes. */
  options?: Buffer;
  /** Overrides the data-offset field (in 32-bit words). */
  dataOffset?: number;
  payload?: Buffer;
}

export interface UdpSpec {
  proto: 'udp';
  sport: number;
  dport: number;
  payload?: Buffer;
}

export interface IcmpSpec {
  proto: 'icmp' | 'icmpv6';
  /** Default: echo request (8 for ICMP, 128 for ICMPv6). */
  type?: number;
  code?: number;
  id?: number;
  seq?: number;
  payload?: Buffer;
}

/** Any other upper layer: the bytes as given. */
export interface RawL4Spec {
  proto: number;
  payload?: Buffer;
}

export type L4Spec = TcpSpec | UdpSpec | IcmpSpec | RawL4Spec;

export interface PacketSpec {
  eth?: EthSpec;
  ip: Ipv4Spec | Ipv6Spec;
  l4: L4Spec;
}

export interface Layer {
  /** 'eth', 'vlan', 'ipv4', 'ipv6', 'ext', 'tcp', 'udp', 'icmp', 'icmpv6', 'payload'. */
  name: string;
  offset: number;
  length: number;
}

export interface Packet {
  frame: Buffer;
  layers: Layer[];
}

/** 16 bytes of an IPv4 or IPv6 address in network order (IPv4 in the first 4, rest zero). */
export function addressBytes(addr: string): { family: 4 | 6; bytes: Buffer } {
  const { family, bytes } = encodeAddress(addr);
  return { family: family === AF_INET ? 4 : 6, bytes };
}

export function mac(text: string): Buffer {
  const bytes = text.split(':').map((h) => parseInt(h, 16));
  if (bytes.length !== 6 || bytes.some((b) => !(b >= 0 && b <= 255))) throw new Error(`bad MAC address '${text}'`);
  return Buffer.from(bytes);
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

/** Ethernet header and VLAN tags in front of a payload of ethertype `type`. */
function ethHeader(eth: EthSpec, type: number, defaultDst: string): { bytes: Buffer; layers: Layer[] } {
  const vlans = eth.vlans ?? [];
  const l2 = Buffer.alloc(14 + 4 * vlans.length);
  const layers: Layer[] = [{ name: 'eth', offset: 0, length: 14 }];
  mac(eth.dst ?? defaultDst).copy(l2, 0);
  mac(eth.src ?? '02:00:00:00:00:01').copy(l2, 6);
  // Each type field names what follows it: the first tag's TPID sits in the Ethernet header.
  l2.writeUInt16BE(vlans.length ? (vlans[0]!.tpid ?? ETH_P_8021Q) : type, 12);
  vlans.forEach((tag, i) => {
    const off = 14 + 4 * i;
    l2.writeUInt16BE(((tag.pcp ?? 0) << 13) | (tag.vid & 0xfff), off);
    l2.writeUInt16BE(i + 1 < vlans.length ? (vlans[i + 1]!.tpid ?? ETH_P_8021Q) : type, off + 2);
    layers.push({ name: 'vlan', offset: off, length: 4 });
  });
  return { bytes: l2, layers };
}

function pad4(b: Buffer | undefined): Buffer {
  if (!b || b.length === 0) return Buffer.alloc(0);
  return Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
}

function extHeader(ext: Ipv6Ext, next: number): { type: number; bytes: Buffer } {
  if (ext.type === 'fragment') {
    const b = Buffer.alloc(8);
    b[0] = next;
    b.writeUInt16BE((((ext.offset ?? 0) & 0x1fff) << 3) | (ext.more ? 1 : 0), 2);
    b.writeUInt32BE(ext.id ?? 0x1234, 4);
    return { type: IPV6_FRAGMENT, bytes: b };
  }
  if (ext.type === 'ah') {
    const length = ext.length ?? 16; // 12 fixed bytes + 4 bytes of ICV
    if (length < 12 || length % 4) throw new Error(`AH length ${length}: at least 12, a multiple of 4`);
    const b = Buffer.alloc(length);
    b[0] = next;
    b[1] = length / 4 - 2;
    b.writeUInt32BE(0x100, 4); // SPI
    b.writeUInt32BE(1, 8); // sequence number
    return { type: IPV6_AH, bytes: b };
  }
  const length = ext.length ?? 8;
  if (length < 8 || length % 8) throw new Error(`${ext.type} header length ${length}: a multiple of 8`);
  const b = Buffer.alloc(length);
  b[0] = next;
  b[1] = length / 8 - 1;
  if (ext.type !== 'routing') {
    b[2] = 1; // one PadN option filling the rest
    b[3] = length - 4;
  } // routing: type 0, segments left 0 (at its final destination); the rest zero
  const types = { 'hop-by-hop': IPV6_HOPOPTS, destination: IPV6_DSTOPTS, routing: IPV6_ROUTING } as const;
  return { type: types[ext.type], bytes: b };
}

function l4Number(l4: L4Spec): number {
  if (typeof l4.proto === 'number') return l4.proto;
  return { tcp: IPPROTO_TCP, udp: IPPROTO_UDP, icmp: IPPROTO_ICMP, icmpv6: IPPROTO_ICMPV6 }[l4.proto];
}

/** The upper-layer bytes; `pseudo(len)` is the pseudo-header of its checksum. */
function l4Bytes(l4: L4Spec, pseudo: (len: number) => Buffer): { name: string; header: number; bytes: Buffer } {
  if (l4.proto === 'tcp') {
    const options = pad4(l4.options);
    const payload = l4.payload ?? Buffer.alloc(0);
    const h = Buffer.alloc(20 + options.length);
    h.writeUInt16BE(l4.sport, 0);
    h.writeUInt16BE(l4.dport, 2);
    h.writeUInt32BE((l4.seq ?? 0) >>> 0, 4);
    h.writeUInt32BE((l4.ack ?? 0) >>> 0, 8);
    h[12] = (l4.dataOffset ?? h.length / 4) << 4;
    h[13] = l4.flags ?? TCP_ACK;
    h.writeUInt16BE(l4.window ?? 65535, 14);
    h.writeUInt16BE(l4.urgent ?? 0, 18);
    options.copy(h, 20);
    const seg = Buffer.concat([h, payload]);
    seg.writeUInt16BE(internetChecksum(pseudo(seg.length), seg), 16);
    return { name: 'tcp', header: h.length, bytes: seg };
  }
  if (l4.proto === 'udp') {
    const seg = Buffer.concat([Buffer.alloc(8), l4.payload ?? Buffer.alloc(0)]);
    seg.writeUInt16BE(l4.sport, 0);
    seg.writeUInt16BE(l4.dport, 2);
    seg.writeUInt16BE(seg.length, 4);
    // A computed zero goes out as 0xffff (RFC 768).
    seg.writeUInt16BE(internetChecksum(pseudo(seg.length), seg) || 0xffff, 6);
    return { name: 'udp', header: 8, bytes: seg };
  }
  if (l4.proto === 'icmp' || l4.proto === 'icmpv6') {
    const v6 = l4.proto === 'icmpv6';
    const msg = Buffer.concat([Buffer.alloc(8), l4.payload ?? Buffer.alloc(0)]);
    msg[0] = l4.type ?? (v6 ? 128 : 8);
    msg[1] = l4.code ?? 0;
    msg.writeUInt16BE(l4.id ?? 1, 4);
    msg.writeUInt16BE(l4.seq ?? 1, 6);
    // ICMPv6 sums a pseudo-header, ICMP only the message.
    msg.writeUInt16BE(v6 ? internetChecksum(pseudo(msg.length), msg) : internetChecksum(msg), 2);
    // The program reads the 4-byte type, code, checksum prefix common to both.
    return { name: l4.proto, header: 4, bytes: msg };
  }
  return { name: 'payload', header: 0, bytes: l4.payload ?? Buffer.alloc(0) };
}

/** Builds one frame from its layers, with every checksum and length field right. */
export function buildPacket(spec: PacketSpec): Packet {
  const ipType = spec.ip.version === 4 ? ETH_P_IP : ETH_P_IPV6;
  const { bytes: l2, layers } = ethHeader(spec.eth ?? {}, ipType, '02:00:00:00:00:02');
  const l4proto = l4Number(spec.l4);
  const src = addressBytes(spec.ip.src);
  const dst = addressBytes(spec.ip.dst);
  if (src.family !== spec.ip.version || dst.family !== spec.ip.version) {
    throw new Error(`addresses ${spec.ip.src} and ${spec.ip.dst} do not match IPv${spec.ip.version}`);
  }
  let l3: Buffer;
  let l4: ReturnType<typeof l4Bytes>;
  if (spec.ip.version === 4) {
    const ip = spec.ip;
    l4 = l4Bytes(spec.l4, (len) => {
      const p = Buffer.alloc(12);
      src.bytes.copy(p, 0, 0, 4);
      dst.bytes.copy(p, 4, 0, 4);
      p[9] = l4proto;
      p.writeUInt16BE(len, 10);
      return p;
    });
    const options = pad4(ip.options);
    l3 = Buffer.alloc(20 + options.length);
    l3[0] = ((ip.versionField ?? 4) << 4) | (ip.ihl ?? l3.length / 4);
    l3[1] = ip.tos ?? 0;
    l3.writeUInt16BE(ip.totalLength ?? l3.length + l4.bytes.length, 2);
    l3.writeUInt16BE(ip.id ?? 1, 4);
    const flags = (ip.dontFragment ? 0x4000 : 0) | (ip.moreFragments ? 0x2000 : 0);
    l3.writeUInt16BE(flags | ((ip.fragOffset ?? 0) & 0x1fff), 6);
    l3[8] = ip.ttl ?? 64;
    l3[9] = ip.protocol ?? l4proto;
    src.bytes.copy(l3, 12, 0, 4);
    dst.bytes.copy(l3, 16, 0, 4);
    options.copy(l3, 20);
    l3.writeUInt16BE(internetChecksum(l3), 10);
    layers.push({ name: 'ipv4', offset: l2.length, length: l3.length });
  } else {
    const ip = spec.ip;
    l4 = l4Bytes(spec.l4, (len) => {
      const p = Buffer.alloc(40);
      src.bytes.copy(p, 0);
      dst.bytes.copy(p, 16);
      p.writeUInt32BE(len, 32);
      p[39] = l4proto;
      return p;
    });
    // Extension headers chain back to front: each names the one after it.
    const exts: Buffer[] = [];
    let next = l4proto;
    for (const ext of [...(ip.extensions ?? [])].reverse()) {
      const built = extHeader(ext, next);
      exts.unshift(built.bytes);
      next = built.type;
    }
    const fixed = Buffer.alloc(40);
    const extLen = exts.reduce((n, e) => n + e.length, 0);
    const word0 = ((ip.versionField ?? 6) << 28) | ((ip.trafficClass ?? 0) << 20) | ((ip.flowLabel ?? 0) & 0xfffff);
    fixed.writeUInt32BE(word0 >>> 0, 0);
    fixed.writeUInt16BE(ip.payloadLength ?? extLen + l4.bytes.length, 4);
    fixed[6] = ip.nextHeader ?? next;
    fixed[7] = ip.hopLimit ?? 64;
    src.bytes.copy(fixed, 8);
    dst.bytes.copy(fixed, 24);
    layers.push({ name: 'ipv6', offset: l2.length, length: 40 });
    let off = l2.length + 40;
    for (const e of exts) {
      layers.push({ name: 'ext', offset: off, length: e.length });
      off += e.length;
    }
    l3 = Buffer.concat([fixed, ...exts]);
  }
  const l4off = l2.length + l3.length;
  if (l4.header) layers.push({ name: l4.name, offset: l4off, length: l4.header });
  if (l4.bytes.length > l4.header) {
    layers.push({ name: 'payload', offset: l4off + l4.header, length: l4.bytes.length - l4.header });
  }
  return { frame: Buffer.concat([l2, l3, l4.bytes]), layers };
}

/** A frame of another ethertype (ARP, LLDP ...), with optional VLAN tags. */
export function buildEthFrame(type: number, payload: Buffer, eth: EthSpec = {}): Buffer {
  return Buffer.concat([ethHeader(eth, type, 'ff:ff:ff:ff:ff:ff').bytes, payload]);
}

/** An Ethernet frame of `length` bytes (at least 60): dst, src, ethertype, then `payload`. */
export function ethFrame(
  opts: { dst?: string; src?: string; ethertype?: number; payload?: Buffer | number[]; length?: number } = {},
): Buffer {
  const payload = Buffer.from(opts.payload ?? []);
  const frame = Buffer.alloc(Math.max(opts.length ?? 60, 14 + payload.length));
  const head = buildEthFrame(opts.ethertype ?? 0x88b5, payload, {
    dst: opts.dst ?? '02:00:00:00:00:02',
    src: opts.src ?? '02:00:00:00:00:01',
  }); // 0x88b5: local experimental ethertype
  head.copy(frame);
  return frame;
}

/** The `nth` layer called `name` (throws when absent: a test asked for a header it did not build). */
export function layerOf(packet: Packet, name: string, nth = 0): Layer {
  const found = packet.layers.filter((l) => l.name === name)[nth];
  if (!found) throw new Error(`packet has no layer '${name}' #${nth}`);
  return found;
}
