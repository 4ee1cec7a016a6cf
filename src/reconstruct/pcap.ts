// A classic pcap file (nanosecond timestamps, Ethernet) of PacketRecords, for `bae capture
// --pcap`: tshark, tcpdump and Wireshark read it. The store's pcapng export (with comments)
// is the store's; this is the plain form a live capture streams to.
import * as fs from 'node:fs';
import type { PacketRecord } from './packet-record';

const MAGIC_NS = 0xa1b23c4d;
const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 65535;

export class PcapWriter {
  readonly #fd: number;

  /** Creates (or truncates) `file` and writes the file header. */
  constructor(file: string) {
    this.#fd = fs.openSync(file, 'w');
    const head = Buffer.alloc(24);
    head.writeUInt32LE(MAGIC_NS, 0);
    head.writeUInt16LE(2, 4);
    head.writeUInt16LE(4, 6);
    head.writeUInt32LE(SNAPLEN, 16);
    head.writeUInt32LE(LINKTYPE_ETHERNET, 20);
    fs.writeSync(this.#fd, head);
  }

  write(r: PacketRecord): void {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(Number(r.tsNs / 1_000_000_000n), 0);
    h.writeUInt32LE(Number(r.tsNs % 1_000_000_000n), 4);
    h.writeUInt32LE(r.data.length, 8);
    h.writeUInt32LE(r.origLen, 12);
    fs.writeSync(this.#fd, Buffer.concat([h, r.data]));
  }

  close(): void {
    fs.closeSync(this.#fd);
  }
}
