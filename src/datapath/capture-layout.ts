// Codec of the capture ring (bpf/capture.h, the capture section of bpf/policy_abi.h): records of
// struct capture_hdr followed by the frame's bytes, built on the generated kernel ABI (abi.gen.ts).
import { ENUMS } from './abi.gen';
import { LAYOUTS, checkSize, off } from './layout';

/** Maps of the capture action (bpf/capture.h). */
export const CAPTURE_MAPS = { ring: 'bae_capture' } as const;

const CB = ENUMS.capture_bounds;
/** Bounds of the capture section of bae.h (CAPTURE_*). */
export const CAPTURE = {
  /** Bytes a record holds at most (the largest snaplen). */
  snaplenMax: CB.CAPTURE_SNAPLEN_MAX,
  snaplenDefault: CB.CAPTURE_SNAPLEN_DEFAULT,
  ringBytes: CB.CAPTURE_RING_BYTES,
  /** policy_emul.capture_flags: keep only what the rule removes. */
  flagDrops: ENUMS.capture_flag.CAPTURE_DROPS,
  /** capture_hdr.flags */
  recDropped: ENUMS.capture_record_flag.CAPTURE_REC_DROPPED,
  recTruncated: ENUMS.capture_record_flag.CAPTURE_REC_TRUNCATED,
} as const;

/** One record of the bae_capture ring. */
export interface CaptureRecord {
  /** Kernel clock (enum bae_clock: CLOCK_MONOTONIC unless a test clock) at arrival, ns. */
  timeNs: bigint;
  ifindex: number;
  policyId: number;
  origLen: number;
  /** enum policy_action: what removed the frame (drop, block, loss, rate) or capture. */
  action: number;
  /** enum capture_record_flag bits. */
  flags: number;
  /** The first cap_len bytes of the frame (a copy, not a view of the ring's buffer). */
  data: Buffer;
}

export function decodeCaptureRecord(buf: Buffer): CaptureRecord {
  const L = 'capture_hdr';
  const size = LAYOUTS.capture_hdr!.size;
  checkSize(L, buf, 0, size);
  const capLen = buf.readUInt16LE(off(L, 'cap_len'));
  checkSize(L, buf, 0, size + capLen);
  return {
    timeNs: buf.readBigUInt64LE(off(L, 'time_ns')),
    ifindex: buf.readUInt32LE(off(L, 'ifindex')),
    policyId: buf.readUInt32LE(off(L, 'policy_id')),
    origLen: buf.readUInt32LE(off(L, 'orig_len')),
    action: buf[off(L, 'action')]!,
    flags: buf[off(L, 'flags')]!,
    data: Buffer.from(buf.subarray(size, size + capLen)),
  };
}
