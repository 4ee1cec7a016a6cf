// The subjects of bae's bus (docs/bus.md, DESIGN.md "Message bus") and NATS's subject rules,
// which the in-process bus follows too: tokens separated by '.', none empty; in a subscription
// `*` matches one token and `>` (last token only) one or more.
import { BusError } from './errors';

export const SUBJECTS = {
  /** Periodic digest of one node: bae.telemetry.<node>. */
  telemetry: (node: string) => `bae.telemetry.${checkToken(node, 'node name')}`,
  /** A kernel event of one node: bae.events.<node>.<kind> (fire, block, match, ...). */
  event: (node: string, kind: string) => `bae.events.${checkToken(node, 'node name')}.${checkToken(kind, 'event kind')}`,
  /** Every event of every node: what the JetStream stream keeps. */
  allEvents: 'bae.events.>',
  /** An agent's heartbeat (docs/bus.md "Heartbeats"): bae.heartbeat.<node>. */
  heartbeat: (node: string) => `bae.heartbeat.${checkToken(node, 'node name')}`,
  /** Every node's heartbeats: the node stream keeps the newest of each. */
  allHeartbeats: 'bae.heartbeat.>',
  /** Block and unblock commands (SecBeat's BlockCommand), for every node. */
  block: 'bae.commands.block',
  /** Policy sets for one node (request/reply). */
  policy: (node: string) => `bae.commands.policy.${checkToken(node, 'node name')}`,
} as const;

/** Longest subject bae accepts (NATS has no hard limit; a bound keeps garbage out). */
export const MAX_SUBJECT = 256;

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/** A node name or event kind as one subject token: letters, digits, '_' and '-', 1..64. */
export function checkToken(value: string, what: string): string {
  if (!TOKEN.test(value)) {
    throw new BusError(`bad ${what} '${value}': 1 to 64 letters, digits, '_' or '-' (it is one token of a NATS subject)`);
  }
  return value;
}

/** A node name from a hostname: the first label, other characters as '_'. */
export function nodeNameOf(hostname: string): string {
  const first = hostname.split('.')[0] ?? '';
  const name = first.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  return name || 'node';
}

function tokens(subject: string): string[] | undefined {
  if (subject.length === 0 || subject.length > MAX_SUBJECT || /\s/.test(subject)) return undefined;
  const t = subject.split('.');
  return t.every((x) => x.length > 0) ? t : undefined;
}

/** A subject to publish on: no wildcards. */
export function checkSubject(subject: string): string {
  const t = tokens(subject);
  if (!t || t.some((x) => x === '*' || x === '>')) {
    throw new BusError(`bad subject '${subject}': tokens separated by '.', none empty, no spaces or wildcards, at most ${MAX_SUBJECT} characters`);
  }
  return subject;
}

/** A subject to subscribe to: `*` for one token, `>` as the last token for the rest. */
export function checkPattern(pattern: string): string {
  const t = tokens(pattern);
  if (!t || t.some((x, i) => (x === '>' && i !== t.length - 1) || (x !== '*' && x !== '>' && /[*>]/.test(x)))) {
    throw new BusError(`bad subscription '${pattern}': tokens separated by '.', '*' for one token, '>' only as the last`);
  }
  return pattern;
}

/** Whether `subject` (no wildcards) matches `pattern`. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}
