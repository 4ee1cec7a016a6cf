// test-unit: needs no root and no kernel (make test-unit).
// Capture records as PacketRecords (kind, action, reason, policy name, wall-clock time) and the
// pcap file `bae capture --pcap` writes, without a kernel: records built from the generated ABI.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CAPTURE, decodeCaptureRecord, ENUMS, LAYOUTS } from '../../src/datapath';
import { packetRecordOf } from '../../src/reconstruct/capture';
import { PcapWriter } from '../../src/reconstruct/pcap';

const A = ENUMS.policy_action;

/** A ring record as the kernel writes it: struct capture_hdr, then the bytes. */
function ringRecord(action: number, flags: number, data: Buffer, origLen = data.length, policyId = 77): Buffer {
  const L = LAYOUTS.capture_hdr!;
  const buf = Buffer.alloc(L.size + data.length);
  buf.writeBigUInt64LE(5_000_000_000n, L.fields.time_ns!.offset);
  buf.writeUInt32LE(3, L.fields.ifindex!.offset);
  buf.writeUInt32LE(policyId, L.fields.policy_id!.offset);
  buf.writeUInt32LE(origLen, L.fields.orig_len!.offset);
  buf.writeUInt16LE(data.length, L.fields.cap_len!.offset);
  buf[L.fields.action!.offset] = action;
  buf[L.fields.flags!.offset] = flags;
  data.copy(buf, L.size);
  return buf;
}

describe('capture records', () => {
  const names = new Map([[77, 'lossy']]);
  const clock = { offsetNs: 1_700_000_000_000_000_000n };
  const data = Buffer.from('00112233445566778899aabb0800', 'hex');

  it('a frame a policy removed is dropped, with the action that removed it and why', () => {
    const cases: [number, string, string][] = [
      [A.POLICY_ACT_LOSS, 'loss', 'seeded loss'],
      [A.POLICY_ACT_DROP, 'drop', 'dropped by policy'],
      [A.POLICY_ACT_BLOCK, 'block', 'source blocked by policy'],
      [A.POLICY_ACT_RATE, 'rate', 'over the rate limit'],
    ];
    for (const [bit, action, reason] of cases) {
      const r = packetRecordOf(decodeCaptureRecord(ringRecord(bit, CAPTURE.recDropped, data, 1400)), names, clock);
      assert.deepEqual(r, { tsNs: 5_000_000_000n + clock.offsetNs, ifindex: 3, kind: 'dropped', policy: 'lossy', action, reason, origLen: 1400, data });
    }
  });

  it('a frame that only matched is captured, with no reason; an unknown policy id is named by its number', () => {
    const r = packetRecordOf(decodeCaptureRecord(ringRecord(A.POLICY_ACT_CAPTURE, 0, data, data.length, 9)), names, clock);
    assert.equal(r.kind, 'captured');
    assert.equal(r.action, 'capture');
    assert.equal(r.reason, null);
    assert.equal(r.policy, '#9');
  });

  it('a record shorter than its header or its cap_len is refused, not read past its end', () => {
    const whole = ringRecord(A.POLICY_ACT_CAPTURE, 0, data);
    assert.throws(() => decodeCaptureRecord(whole.subarray(0, 10)), RangeError);
    assert.throws(() => decodeCaptureRecord(whole.subarray(0, whole.length - 1)), RangeError);
  });

  it('the pcap file holds each record with its nanosecond time and both lengths', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-test-pcap-'));
    try {
      const file = path.join(dir, 'x.pcap');
      const w = new PcapWriter(file);
      const r = packetRecordOf(decodeCaptureRecord(ringRecord(A.POLICY_ACT_LOSS, CAPTURE.recDropped | CAPTURE.recTruncated, data, 1514)), names, { offsetNs: 1_700_000_000_123_456_789n - 5_000_000_000n });
      w.write(r);
      w.write(r);
      w.close();
      const buf = fs.readFileSync(file);
      assert.equal(buf.readUInt32LE(0), 0xa1b23c4d, 'nanosecond pcap magic');
      assert.equal(buf.readUInt32LE(20), 1, 'Ethernet');
      assert.equal(buf.length, 24 + 2 * (16 + data.length));
      assert.equal(buf.readUInt32LE(24), 1_700_000_000);
      assert.equal(buf.readUInt32LE(28), 123_456_789);
      assert.equal(buf.readUInt32LE(32), data.length, 'captured length');
      assert.equal(buf.readUInt32LE(36), 1514, 'length on the wire');
      assert.deepEqual(buf.subarray(40, 40 + data.length), data);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
