// `bae export` and `bae import` without the CLI: stored packets to a pcapng file (one comment a
// packet: kind, policy, action, reason), and a pcap/pcapng file into the store as a scenario.
import * as fs from 'node:fs';
import { formatAddress, parseAddress } from '../datapath';
import { UsageError } from '../errors';
import { interfaceBlock, packetBlock, readCapture, sectionHeader } from './pcapng';
import type { StoredPacket } from './packet-record';
import type { PacketFilter, Store } from './store';

/** The comment a packet carries in the export: what bae did with it and why. */
export function packetComment(p: StoredPacket): string {
  const parts = [`bae: ${p.kind}`];
  if (p.policy !== null) parts.push(`policy=${p.policy}`);
  if (p.action !== null) parts.push(`action=${p.action}`);
  if (p.reason !== null) parts.push(`reason=${p.reason}`);
  return parts.join(' ');
}

/** Ethernet type offsets: up to two VLAN tags, as the datapath parses. */
const VLAN_TYPES = new Set([0x8100, 0x88a8]);

/** The IP source and destination of an Ethernet frame ('' for non-IP or truncated frames). */
export function frameAddresses(data: Buffer): { src: string; dst: string } | undefined {
  let off = 12;
  if (data.length < 14) return undefined;
  let type = data.readUInt16BE(off);
  for (let i = 0; i < 2 && VLAN_TYPES.has(type); i++) {
    off += 4;
    if (data.length < off + 2) return undefined;
    type = data.readUInt16BE(off);
  }
  const ip = off + 2;
  if (type === 0x0800 && data.length >= ip + 20) {
    return { src: formatAddress(4, data.subarray(ip + 12, ip + 16)), dst: formatAddress(4, data.subarray(ip + 16, ip + 20)) };
  }
  if (type === 0x86dd && data.length >= ip + 40) {
    return { src: formatAddress(6, data.subarray(ip + 8, ip + 24)), dst: formatAddress(6, data.subarray(ip + 24, ip + 40)) };
  }
  return undefined;
}

/** `A,B`: two addresses, in their one written form (formatAddress), or undefined when not two addresses. */
export function parseConversation(text: string): [string, string] | undefined {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length !== 2) return undefined;
  const a = parseAddress(parts[0]!);
  const b = parseAddress(parts[1]!);
  if (!a || !b) return undefined;
  return [formatAddress(a.family, a.addr), formatAddress(b.family, b.addr)];
}

export interface ExportOptions extends PacketFilter {
  /** Only packets between these two addresses (either direction). */
  conversation?: [string, string];
  /** The name of interface `ifindex` in the file (default: `if<N>`). */
  ifaceName?: (ifindex: number) => string;
}

/** The name of interface `ifindex` on this host, from /sys/class/net, else `if<N>`. */
export function hostIfaceName(ifindex: number): string {
  try {
    for (const name of fs.readdirSync('/sys/class/net')) {
      if (fs.readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim() === String(ifindex)) return name;
    }
  } catch {
    // no sysfs: the number will do
  }
  return `if${ifindex}`;
}

/** Writes the packets that pass `o` to `file` as pcapng; returns how many. */
export function exportPcapng(store: Store, file: string, o: ExportOptions = {}): { packets: number; interfaces: number } {
  const nameOf = o.ifaceName ?? ((i: number) => (i === 0 ? 'unknown' : `if${i}`));
  let fd: number;
  try {
    fd = fs.openSync(file, 'w');
  } catch (err) {
    throw new UsageError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  try {
    const chunks: Buffer[] = [sectionHeader()];
    let bytes = chunks[0]!.length;
    const flush = () => {
      if (chunks.length) fs.writeSync(fd, Buffer.concat(chunks));
      chunks.length = 0;
      bytes = 0;
    };
    const push = (b: Buffer) => {
      chunks.push(b);
      bytes += b.length;
      if (bytes >= 1 << 20) flush();
    };
    const ifaceIds = new Map<number, number>();
    let packets = 0;
    for (const p of store.packets(o)) {
      if (o.conversation) {
        const a = frameAddresses(p.data);
        const [x, y] = o.conversation;
        if (!a || !((a.src === x && a.dst === y) || (a.src === y && a.dst === x))) continue;
      }
      let id = ifaceIds.get(p.ifindex);
      if (id === undefined) {
        id = ifaceIds.size;
        ifaceIds.set(p.ifindex, id);
        push(interfaceBlock(nameOf(p.ifindex), p.ifindex ? `ifindex ${p.ifindex}` : 'interface not known'));
      }
      push(packetBlock(id, p.tsNs, p.origLen, p.data, packetComment(p)));
      packets++;
    }
    flush();
    return { packets, interfaces: ifaceIds.size };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads `file` (pcap or pcapng) into the store as scenario `name`: packets of kind 'imported',
 * their comment (if the file has one) as reason, in one transaction. Returns the scenario's id.
 */
export function importCapture(store: Store, file: string, name: string): { scenarioId: number; packets: number; format: string } {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  const cap = readCapture(file, bytes);
  const first = cap.frames[0]?.tsNs;
  const last = cap.frames.at(-1)?.tsNs;
  let scenarioId = 0;
  store.db.transaction(() => {
    scenarioId = store.insertScenario({
      name,
      createdNs: BigInt(Date.now()) * 1_000_000n,
      seed: null,
      policies: null,
      durationMs: first !== undefined && last !== undefined ? Number((last - first) / 1_000_000n) : null,
    });
    store.insertPackets(
      cap.frames.map((f) => ({ tsNs: f.tsNs, ifindex: 0, kind: 'imported' as const, policy: null, action: 'import', reason: f.comment ?? null, origLen: f.origLen, data: f.data })),
      scenarioId,
    );
  })();
  return { scenarioId, packets: cap.frames.length, format: cap.format };
}
