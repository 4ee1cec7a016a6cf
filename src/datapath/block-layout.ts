// Codecs of the blocklist stage's maps (bpf/policy_maps.h: policy_blocklist, policy_block_used,
// policy_block_prefixes, policy_protected), built on the generated kernel ABI (abi.gen.ts).
import { ENUMS } from './abi.gen';
import { LAYOUTS, checkSize, off } from './layout';

export function encodePolicyBlockKey(family: number, addr: Uint8Array): Buffer {
  const buf = Buffer.alloc(LAYOUTS.policy_block_key!.size);
  buf[off('policy_block_key', 'family')] = family;
  buf.set(addr.subarray(0, 16), off('policy_block_key', 'addr'));
  return buf;
}

export function decodePolicyBlockKey(buf: Buffer): { family: number; addr: Buffer } {
  checkSize('policy_block_key', buf, 0, LAYOUTS.policy_block_key!.size);
  const a = off('policy_block_key', 'addr');
  return { family: buf[off('policy_block_key', 'family')]!, addr: Buffer.from(buf.subarray(a, a + 16)) };
}

/** Slot 1 of policy_block_used: what the prefix tables hold (enum policy_block_flag). */
export const POLICY_BLOCK_FLAGS = {
  prefixes: ENUMS.policy_block_flag.POLICY_BLOCK_PREFIXES,
  protected: ENUMS.policy_block_flag.POLICY_BLOCK_PROTECTED,
} as const;

/** struct policy_block_lpm_key of a prefix (policy_block_prefixes, policy_protected). */
export function encodePolicyBlockLpmKey(family: number, addr: Uint8Array, len: number): Buffer {
  const L = 'policy_block_lpm_key';
  const buf = Buffer.alloc(LAYOUTS.policy_block_lpm_key!.size);
  buf.writeUInt32LE(32 + len, off(L, 'prefixlen'));
  buf[off(L, 'family')] = family;
  Buffer.from(addr).copy(buf, off(L, 'addr'), 0, 16);
  return buf;
}

export function decodePolicyBlockLpmKey(buf: Buffer): { family: number; addr: Buffer; len: number } {
  const L = 'policy_block_lpm_key';
  checkSize(L, buf, 0, LAYOUTS.policy_block_lpm_key!.size);
  const a = off(L, 'addr');
  return { family: buf[off(L, 'family')]!, addr: Buffer.from(buf.subarray(a, a + 16)), len: buf.readUInt32LE(off(L, 'prefixlen')) - 32 };
}

/** struct policy_escalate of a rule's block action (factor 0: none). */
export interface PolicyEscalate {
  factor: number;
  maxNs: bigint;
  forgetNs: bigint;
}

export function writePolicyEscalate(buf: Buffer, at: number, e: PolicyEscalate): void {
  const L = 'policy_escalate';
  checkSize(L, buf, at, LAYOUTS.policy_escalate!.size);
  buf.writeUInt32LE(e.factor, at + off(L, 'factor'));
  buf.writeBigUInt64LE(e.maxNs, at + off(L, 'max_ns'));
  buf.writeBigUInt64LE(e.forgetNs, at + off(L, 'forget_ns'));
}

export function decodePolicyEscalate(buf: Buffer, at = 0): PolicyEscalate {
  const L = 'policy_escalate';
  checkSize(L, buf, at, LAYOUTS.policy_escalate!.size);
  return { factor: buf.readUInt32LE(at + off(L, 'factor')), maxNs: buf.readBigUInt64LE(at + off(L, 'max_ns')), forgetNs: buf.readBigUInt64LE(at + off(L, 'forget_ns')) };
}

/** struct policy_offence: an address's history of escalating blocks (map policy_offences). */
export interface PolicyOffence {
  count: number;
  lastExpiryNs: bigint;
}

export function encodePolicyOffence(o: PolicyOffence): Buffer {
  const L = 'policy_offence';
  const buf = Buffer.alloc(LAYOUTS.policy_offence!.size);
  buf.writeUInt32LE(o.count, off(L, 'count'));
  buf.writeBigUInt64LE(o.lastExpiryNs, off(L, 'last_expiry_ns'));
  return buf;
}

export function decodePolicyOffence(buf: Buffer): PolicyOffence {
  const L = 'policy_offence';
  checkSize(L, buf, 0, LAYOUTS.policy_offence!.size);
  return { count: buf.readUInt32LE(off(L, 'count')), lastExpiryNs: buf.readBigUInt64LE(off(L, 'last_expiry_ns')) };
}
