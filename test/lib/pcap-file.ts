// The frames of a classic pcap file as tcpdump and tshark (-F pcap) write it: little-endian,
// microsecond or nanosecond timestamps. For lab tests that compare what left or reached a host
// with what bae kept.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';

export interface PcapFrame {
  /** Capture time, seconds since the epoch. */
  t: number;
  data: Buffer;
}

export function pcapFrames(file: string): PcapFrame[] {
  const buf = fs.readFileSync(file);
  const magic = buf.readUInt32LE(0);
  assert.ok(magic === 0xa1b2c3d4 || magic === 0xa1b23c4d, `a little-endian pcap file (magic ${magic.toString(16)})`);
  const div = magic === 0xa1b2c3d4 ? 1e6 : 1e9;
  const frames: PcapFrame[] = [];
  for (let at = 24; at + 16 <= buf.length; ) {
    const incl = buf.readUInt32LE(at + 8);
    frames.push({ t: buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) / div, data: buf.subarray(at + 16, at + 16 + incl) });
    at += 16 + incl;
  }
  return frames;
}
