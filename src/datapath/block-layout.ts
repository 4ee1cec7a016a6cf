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
