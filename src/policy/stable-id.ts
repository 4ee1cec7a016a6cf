// The stable id of a policy: FNV-1a (32 bit) over its canonical JSON. Re-applying an unchanged
// policy gives the same id, so its trigger state and counters in the kernel carry over.
import type { Policy } from './model';
import { policySpec } from './spec';

/** JSON with sorted keys and bigints as strings: equal content, equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The stable id of a policy whose canonicalJson(policySpec()) is `canonical`. */
export function idOfCanonical(canonical: string): number {
  // 0 is reserved (no policy) in the kernel tables.
  return fnv1a32(canonical) || 1;
}

export function policyId(p: Omit<Policy, 'id' | 'spec' | 'source'>): number {
  return idOfCanonical(canonicalJson(policySpec(p)));
}
