// pcapng out, pcap and pcapng in: the file formats of tcpdump, tshark and Wireshark
// (draft-ietf-opsawg-pcapng; pcap as libpcap writes it). Written here, small and to the point:
// the npm pcap libraries read, or write without per-packet comments, and bae's export is about
// those comments (opt_comment: kind, policy, action, reason), which tshark shows as
// frame.comment. Only Ethernet frames are bae's (link type 1); others are refused by name.
import { UsageError } from '../errors';

export const LINKTYPE_ETHERNET = 1;

const SHB = 0x0a0d0d0a;
const IDB = 0x00000001;
const SPB = 0x00000003;
const EPB = 0x00000006;
const OBSOLETE_PB = 0x00000002;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const OPT_END = 0;
const OPT_COMMENT = 1;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const IF_TSRESOL = 9;
const SHB_USERAPPL = 4;

const pad4 = (n: number) => (n + 3) & ~3;

function option(code: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + pad4(value.length));
  b.writeUInt16LE(code, 0);
  b.writeUInt16LE(value.length, 2);
  value.copy(b, 4);
  return b;
}
const endOfOptions = () => Buffer.alloc(4); // code 0, length 0

function block(type: number, body: Buffer[]): Buffer {
  const len = 12 + body.reduce((n, b) => n + b.length, 0);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(type, 0);
  head.writeUInt32LE(len, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(len, 0);
  return Buffer.concat([head, ...body, tail]);
}

/** The Section Header Block that starts a file (little-endian, section length unknown). */
export function sectionHeader(application = 'bae'): Buffer {
  const fixed = Buffer.alloc(16);
  fixed.writeUInt32LE(BYTE_ORDER_MAGIC, 0);
  fixed.writeUInt16LE(1, 4); // major
  fixed.writeUInt16LE(0, 6); // minor
  fixed.writeBigInt64LE(-1n, 8); // section length: not given
  return block(SHB, [fixed, option(SHB_USERAPPL, Buffer.from(application)), endOfOptions()]);
}

/** An Interface Description Block: Ethernet, nanosecond timestamps, its name. */
export function interfaceBlock(name: string, description?: string): Buffer {
  const fixed = Buffer.alloc(8);
  fixed.writeUInt16LE(LINKTYPE_ETHERNET, 0);
  fixed.writeUInt32LE(0, 4); // snaplen: no limit
  const opts = [option(IF_NAME, Buffer.from(name)), option(IF_TSRESOL, Buffer.from([9]))];
  if (description) opts.push(option(IF_DESCRIPTION, Buffer.from(description)));
  return block(IDB, [fixed, ...opts, endOfOptions()]);
}

/** An Enhanced Packet Block: the frame at `tsNs` on interface `ifaceId` of the file, with a comment. */
export function packetBlock(ifaceId: number, tsNs: bigint, origLen: number, data: Buffer, comment?: string): Buffer {
  const fixed = Buffer.alloc(20);
  fixed.writeUInt32LE(ifaceId, 0);
  fixed.writeUInt32LE(Number(tsNs >> 32n), 4);
  fixed.writeUInt32LE(Number(tsNs & 0xffffffffn), 8);
  fixed.writeUInt32LE(data.length, 12);
  fixed.writeUInt32LE(Math.max(origLen, data.length), 16);
  const padded = Buffer.alloc(pad4(data.length));
  data.copy(padded);
  const opts = comment ? [option(OPT_COMMENT, Buffer.from(comment)), endOfOptions()] : [];
  return block(EPB, [fixed, padded, ...opts]);
}

/** A frame read from a capture file. */
export interface CapturedFrame {
  tsNs: bigint;
  origLen: number;
  data: Buffer;
  /** The interface's name in the file (pcapng if_name), if it gave one. */
  iface: string | undefined;
  /** The packet's comment in the file (pcapng opt_comment), if any. */
  comment: string | undefined;
}

export interface CaptureFile {
  format: 'pcap' | 'pcapng';
  frames: CapturedFrame[];
}

function bad(file: string, what: string): never {
  throw new UsageError(`${file}: ${what}`);
}

function checkLinktype(file: string, linktype: number): void {
  if (linktype !== LINKTYPE_ETHERNET) bad(file, `link type ${linktype} is not Ethernet (1); bae keeps Ethernet frames (capture with tcpdump -i on an Ethernet or veth interface)`);
}

/** Ticks per second of a pcapng if_tsresol value: 10^v, or 2^v with the high bit set. */
function ticksPerSecond(v: number): bigint {
  return v & 0x80 ? 1n << BigInt(v & 0x7f) : 10n ** BigInt(v);
}
const toNs = (ticks: bigint, perSecond: bigint) => (perSecond === 1_000_000_000n ? ticks : (ticks * 1_000_000_000n) / perSecond);

function readPcap(file: string, buf: Buffer): CaptureFile {
  if (buf.length < 24) bad(file, 'truncated pcap header');
  const magicLE = buf.readUInt32LE(0);
  const le = magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d;
  const magic = le ? magicLE : buf.readUInt32BE(0);
  const nano = magic === 0xa1b23c4d;
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  checkLinktype(file, u32(20) & 0xffff);
  const frames: CapturedFrame[] = [];
  let off = 24;
  while (off < buf.length) {
    if (off + 16 > buf.length) bad(file, `truncated record header at byte ${off}`);
    const sec = BigInt(u32(off));
    const frac = BigInt(u32(off + 4));
    const incl = u32(off + 8);
    const orig = u32(off + 12);
    if (off + 16 + incl > buf.length) bad(file, `truncated packet at byte ${off} (${incl} bytes announced)`);
    frames.push({ tsNs: sec * 1_000_000_000n + (nano ? frac : frac * 1000n), origLen: orig, data: Buffer.from(buf.subarray(off + 16, off + 16 + incl)), iface: undefined, comment: undefined });
    off += 16 + incl;
  }
  return { format: 'pcap', frames };
}

function readPcapng(file: string, buf: Buffer): CaptureFile {
  const frames: CapturedFrame[] = [];
  let le = true;
  let ifaces: { perSecond: bigint; name: string | undefined }[] = [];
  let off = 0;
  while (off < buf.length) {
    if (off + 12 > buf.length) bad(file, `truncated block at byte ${off}`);
    const typeLE = buf.readUInt32LE(off);
    if (typeLE === SHB) {
      const bom = buf.readUInt32LE(off + 8);
      if (bom === BYTE_ORDER_MAGIC) le = true;
      else if (buf.readUInt32BE(off + 8) === BYTE_ORDER_MAGIC) le = false;
      else bad(file, `bad byte-order magic at byte ${off + 8}`);
      ifaces = []; // interfaces are numbered per section
    }
    const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
    const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
    const type = u32(off);
    const len = u32(off + 4);
    if (len < 12 || len % 4 !== 0 || off + len > buf.length) bad(file, `bad block length ${len} at byte ${off}`);
    const end = off + len - 4;
    /** Options from `o` to the block's end: code -> first value. */
    const options = (o: number) => {
      const found = new Map<number, Buffer>();
      while (o + 4 <= end) {
        const code = u16(o);
        const n = u16(o + 2);
        if (code === OPT_END) break;
        if (o + 4 + n > end) bad(file, `option ${code} runs past its block at byte ${o}`);
        if (!found.has(code)) found.set(code, buf.subarray(o + 4, o + 4 + n));
        o += 4 + pad4(n);
      }
      return found;
    };
    if (type === IDB) {
      checkLinktype(file, u16(off + 8));
      const opts = options(off + 16);
      const res = opts.get(IF_TSRESOL);
      ifaces.push({ perSecond: res ? ticksPerSecond(res[0]!) : 1_000_000n, name: opts.get(IF_NAME)?.toString('utf8') });
    } else if (type === EPB || type === OBSOLETE_PB) {
      const id = type === EPB ? u32(off + 8) : u16(off + 8);
      const iface = ifaces[id] ?? bad(file, `packet at byte ${off} names interface ${id}, which the file does not describe`);
      const ticks = (BigInt(u32(off + 12)) << 32n) | BigInt(u32(off + 16));
      const caplen = u32(off + 20);
      const orig = u32(off + 24);
      if (off + 28 + caplen > end) bad(file, `packet at byte ${off} runs past its block`);
      const opts = options(off + 28 + pad4(caplen));
      frames.push({
        tsNs: toNs(ticks, iface.perSecond),
        origLen: orig,
        data: Buffer.from(buf.subarray(off + 28, off + 28 + caplen)),
        iface: iface.name,
        comment: opts.get(OPT_COMMENT)?.toString('utf8'),
      });
    } else if (type === SPB) {
      // No timestamp, no interface id (the first); its time is that of the packet before.
      if (!ifaces[0]) bad(file, `simple packet at byte ${off} before any interface`);
      const orig = u32(off + 8);
      const caplen = Math.min(orig, len - 16);
      frames.push({ tsNs: frames.at(-1)?.tsNs ?? 0n, origLen: orig, data: Buffer.from(buf.subarray(off + 12, off + 12 + caplen)), iface: ifaces[0].name, comment: undefined });
    }
    off += len;
  }
  return { format: 'pcapng', frames };
}

/** Reads a pcap (µs or ns, either byte order) or pcapng file's Ethernet frames. */
export function readCapture(file: string, buf: Buffer): CaptureFile {
  if (buf.length < 4) bad(file, 'not a pcap or pcapng file (too short)');
  const m = buf.readUInt32LE(0);
  if (m === SHB) return readPcapng(file, buf);
  if ([0xa1b2c3d4, 0xa1b23c4d].includes(m) || [0xa1b2c3d4, 0xa1b23c4d].includes(buf.readUInt32BE(0))) return readPcap(file, buf);
  return bad(file, `not a pcap or pcapng file (magic 0x${m.toString(16).padStart(8, '0')})`);
}
