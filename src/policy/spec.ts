// The normal form of a policy: its plain-data spec (what `policy check --json` prints, what the
// applied-policy store keeps, and what the stable id is computed over: stable-id.ts), and the text
// forms of its values. Shared by the parser and the stable id, which do not import each other.
import { TCP_FLAG_BITS } from './actions-model';
import type { Policy, PortRange } from './model';
import { formatPrefix } from './net';

const PROTO_DISPLAY: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' };

const DURATION_UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  µs: 1000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
};

/** "100ms", "1.5s", "2m" -> nanoseconds, or a reason why not. */
export function parseDuration(text: string): bigint | string {
  const m = /^([0-9]+)(?:\.([0-9]+))?(ns|us|µs|ms|s|m|h|d)$/.exec(text.trim());
  if (!m) return `'${text}' is not a duration (a number with a unit: ns, us, ms, s, m, h, d)`;
  const unit = DURATION_UNITS[m[3]!]!;
  const whole = BigInt(m[1]!);
  const frac = m[2] ?? '';
  if (frac.length > 12) return `'${text}' has too many decimals`;
  const scale = 10n ** BigInt(frac.length);
  const fracNs = (BigInt(frac || '0') * unit);
  if (fracNs % scale !== 0n) return `'${text}' is not a whole number of nanoseconds`;
  return whole * unit + fracNs / scale;
}

export function formatDuration(ns: bigint): string {
  const units: [string, bigint][] = [['d', DURATION_UNITS.d!], ['h', DURATION_UNITS.h!], ['m', DURATION_UNITS.m!], ['s', DURATION_UNITS.s!], ['ms', DURATION_UNITS.ms!], ['us', 1000n]];
  for (const [name, size] of units) if (ns >= size && ns % size === 0n) return `${ns / size}${name}`;
  return `${ns}ns`;
}

/** The normalized policy as plain data (what `policy check --json` prints and the store keeps). */
export function policySpec(p: Omit<Policy, 'id' | 'spec' | 'source'>): Record<string, unknown> {
  const m = p.match;
  const ports = (r: PortRange[] | undefined) => r?.map((x) => (x.lo === x.hi ? `${x.lo}` : `${x.lo}-${x.hi}`));
  const flagNames = (f: { mask: number; value: number }) =>
    Object.entries(TCP_FLAG_BITS)
      .filter(([, bit]) => f.mask & bit)
      .map(([n, bit]) => (f.value & bit ? n : `!${n}`))
      .join(',');
  const out: Record<string, unknown> = {
    name: p.name,
    priority: p.priority,
    match: {
      ...(m.src ? { src: m.src.map(formatPrefix) } : {}),
      ...(m.dst ? { dst: m.dst.map(formatPrefix) } : {}),
      ...(m.proto ? { proto: m.proto.map((n) => PROTO_DISPLAY[n] ?? n) } : {}),
      ...(m.sport ? { sport: ports(m.sport) } : {}),
      ...(m.dport ? { dport: ports(m.dport) } : {}),
      ...(m.tcpFlags ? { tcpFlags: flagNames(m.tcpFlags) } : {}),
      ...(m.iface ? { iface: m.iface } : {}),
    },
    actions: p.actions.map((a) => ({
      [a.kind]: Object.fromEntries(Object.entries(a.params).map(([k, v]) => [k, typeof v === 'bigint' ? formatDuration(v) : v])),
    })),
  };
  if (p.trigger) {
    out.trigger = {
      when: `${p.trigger.metric} ${p.trigger.op} ${p.trigger.threshold}`,
      within: formatDuration(p.trigger.withinNs),
      scope: p.trigger.scope,
    };
  }
  if (p.forNs !== undefined) out.for = formatDuration(p.forNs);
  if (p.cooldownNs > 0n) out.cooldown = formatDuration(p.cooldownNs);
  if (p.seed !== undefined) out.seed = Number(p.seed);
  if (p.monitor) out.monitor = true;
  return out;
}
