// Minimal frames for BPF_PROG_TEST_RUN: the fixtures look at the Ethernet header and the byte
// right after it, so a frame is an Ethernet header plus a payload.

/** An Ethernet frame of `length` bytes (at least 60): dst, src, ethertype, then `payload`. */
export function ethFrame(opts: { dst?: string; src?: string; ethertype?: number; payload?: Buffer | number[]; length?: number } = {}): Buffer {
  const payload = Buffer.from(opts.payload ?? []);
  const frame = Buffer.alloc(Math.max(opts.length ?? 60, 14 + payload.length));
  mac(opts.dst ?? '02:00:00:00:00:02').copy(frame, 0);
  mac(opts.src ?? '02:00:00:00:00:01').copy(frame, 6);
  frame.writeUInt16BE(opts.ethertype ?? 0x88b5, 12); // local experimental ethertype
  payload.copy(frame, 14);
  return frame;
}

export function mac(text: string): Buffer {
  const bytes = text.split(':').map((h) => parseInt(h, 16));
  if (bytes.length !== 6 || bytes.some((b) => !(b >= 0 && b <= 255))) throw new Error(`bad MAC address '${text}'`);
  return Buffer.from(bytes);
}
