// The one rule that resolves overlaps: higher spec.priority first; among equal priorities the
// more specific policy first; then the name. Shared by the compiler (candidate lists) and the
// reference model, so both decide in the same order.
import type { Policy, PortRange } from './model';
import type { Prefix } from './net';

/** Prefix length on one scale for both families: an IPv4 /32 and an IPv6 /128 are both one host. */
function prefixScore(list: Prefix[] | undefined): number {
  if (!list) return -1;
  // A list is as specific as its widest entry.
  return Math.min(...list.map((p) => p.len + (p.family === 4 ? 96 : 0)));
}

function portWidth(list: PortRange[] | undefined): number {
  if (!list) return 65536;
  return list.reduce((n, r) => n + (r.hi - r.lo + 1), 0);
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

/** Policies in decision order (a new array); each specificity key is computed once. */
export function orderPolicies(policies: readonly Policy[]): Policy[] {
  const keyed = policies.map((p) => ({ p, s: specificity(p) }));
  keyed.sort((x, y) => compareWithKeys(x.p, x.s, y.p, y.s));
  return keyed.map((k) => k.p);
}
