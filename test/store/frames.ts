// Frames for the store's tests and benchmark: Ethernet + IPv4 + UDP, `size` bytes on the wire,
// the row's sequence number in the payload (so that a test can tell which rows are there).
import type { PacketKind, PacketRecord } from '../../src/store';

/** An Ethernet/IPv4/UDP frame from `src` to `dst` (a.b.c.d) of `size` bytes, payload starting with `seq`. */
export function udpFrame(seq: number, size = 128, src = '10.0.0.1', dst = '10.0.0.2'): Buffer {
  const f = Buffer.alloc(size);
  Buffer.from('020000000002020000000001', 'hex').copy(f, 0);
  f.writeUInt16BE(0x0800, 12);
  const ip = 14;
  f[ip] = 0x45;
  f.writeUInt16BE(size - 14, ip + 2);
  f[ip + 8] = 64;
  f[ip + 9] = 17;
  Buffer.from(src.split('.').map(Number)).copy(f, ip + 12);
  Buffer.from(dst.split('.').map(Number)).copy(f, ip + 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += f.readUInt16BE(ip + i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  f.writeUInt16BE(~sum & 0xffff, ip + 10);
  const udp = ip + 20;
  f.writeUInt16BE(40000, udp);
  f.writeUInt16BE(9, udp + 2);
  f.writeUInt16BE(size - udp, udp + 4); // checksum 0: none (IPv4)
  f.writeUInt32BE(seq >>> 0, udp + 8);
  for (let i = udp + 12; i < size; i++) f[i] = (seq + i) & 0xff;
  return f;
}

export const seqOf = (data: Buffer) => data.readUInt32BE(14 + 20 + 8);

export function packet(seq: number, o: { tsNs?: bigint; kind?: PacketKind; policy?: string | null; size?: number; src?: string; dst?: string } = {}): PacketRecord {
  return {
    tsNs: o.tsNs ?? 1_765_000_000_000_000_000n + BigInt(seq) * 1000n,
    ifindex: 3,
    kind: o.kind ?? 'dropped',
    policy: o.policy === undefined ? 'lossy' : o.policy,
    action: 'loss',
    reason: 'seeded loss',
    origLen: o.size ?? 128,
    data: udpFrame(seq, o.size ?? 128, o.src, o.dst),
  };
}
