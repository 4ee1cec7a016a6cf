// The one rule that resolves overlaps: higher spec.priority first; among equal priorities the
// more specific policy first; then the name. Shared by the compiler (candidate lists) and the
// reference model, so both decide in the same order.
import type { Policy, PortRange } from './model';
import type { Prefix } from './net';

/** Prefix length on one scale for both families: an IPv4 /32 and an IPv6 /128 are both one host. */
function prefixScore(list: Prefix[] | undefined): number {
  if (!list) return -1;
  // A list is as specific as its widest entry.
  let score = Infinity;
  for (let i = 0; i < list.length; i++) score = Math.min(score, list[i]!.len + (list[i]!.family === 4 ? 96 : 0));
  return score;
}

function portWidth(list: PortRange[] | undefined): number {
  if (!list) return 65536;
  let width = 0;
  for (let i = 0; i < list.length; i++) width += list[i]!.hi - list[i]!.lo + 1;
  return width;
}

function popcount(x: number): number {
  let n = 0;
  for (let v = x; v; v &= v - 1) n++;
  return n;
}

/**
 * The specificity key, compared element by element, larger first: source prefix length,
 * destination prefix length, fewer destination ports, fewer source ports, fewer protocols,
 * more TCP flags looked at, an interface named.
 */
export function specificity(p: Policy): number[] {
  const m = p.match;
  return [
    prefixScore(m.src),
    prefixScore(m.dst),
    -portWidth(m.dport),
    -portWidth(m.sport),
    -(m.proto ? m.proto.length : 256),
    m.tcpFlags ? popcount(m.tcpFlags.mask) : 0,
    m.iface ? 1 : 0,
  ];
}

function compareWithKeys(a: Policy, sa: number[], b: Policy, sb: number[]): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  for (let i = 0; i < sa.length; i++) if (sa[i] !== sb[i]) return sb[i]! - sa[i]!;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function comparePolicies(a: Policy, b: Policy): number {
  return compareWithKeys(a, specificity(a), b, specificity(b));
}

/** Numbers per policy in orderPolicies' key: priority, then specificity() folded into five. */
const KEY = 6;

/**
 * specificity() as five numbers at out[at..at+4] that compare the same way (larger first): the
 * last holds protocols, TCP flags (popcount 0..8) and interface together.
 */
function packedSpecificity(p: Policy, out: Float64Array, at: number): void {
  const m = p.match;
  out[at] = prefixScore(m.src);
  out[at + 1] = prefixScore(m.dst);
  out[at + 2] = -portWidth(m.dport);
  out[at + 3] = -portWidth(m.sport);
  out[at + 4] = -(m.proto ? m.proto.length : 256) * 32 + (m.tcpFlags ? popcount(m.tcpFlags.mask) : 0) * 2 + (m.iface ? 1 : 0);
}

/**
 * Policies in decision order (a new array). The keys are computed once into one flat array and
 * the sort compares numbers, not key arrays: this runs on every apply, mostly as cold code.
 */
export function orderPolicies(policies: readonly Policy[]): Policy[] {
  const n = policies.length;
  const keys = new Float64Array(KEY * n);
  const order = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const p = policies[i]!;
    keys[KEY * i] = p.priority;
    packedSpecificity(p, keys, KEY * i + 1);
    order[i] = i;
  }
  order.sort((x, y) => {
    for (let a = KEY * x, b = KEY * y, end = a + KEY; a < end; a++, b++) if (keys[a] !== keys[b]) return keys[b]! - keys[a]!;
    const na = policies[x]!.name;
    const nb = policies[y]!.name;
    return na < nb ? -1 : na > nb ? 1 : 0;
  });
  const out = new Array<Policy>(n);
  for (let i = 0; i < n; i++) out[i] = policies[order[i]!]!;
  return out;
}
