// SecBeat's BlockCommand (its mitigation nodes' contract, generalised in DESIGN.md): parsed and
// checked field by field, so that a malformed command is refused with its reason and changes
// nothing; and the bounded record of command ids that makes commands idempotent.
import * as crypto from 'node:crypto';
import { ESCALATE_FACTOR_MAX, ESCALATE_FACTOR_MIN, MAX_BLOCK_TTL_NS, parseBlockTarget, type BlockTarget, type Escalation } from '../policy';

export interface BlockCommand {
  command_id: string;
  ip: string;
  reason: string;
  /** Seconds the block lasts (block); ignored by unblock. */
  duration_seconds: number;
  action: 'block' | 'unblock';
  /** RFC 3339 time the command was issued. */
  issued_at: string;
  /** Who issued it (a SecBeat orchestrator, `bae block --nats` of a user@host, ...). */
  source: string;
  /** bae's extension (SecBeat ignores it): escalate a repeat offender's block (`bae block --escalate`). */
  escalate?: { factor: number; max_seconds: number; forget_seconds: number };
}

export interface CheckedBlockCommand {
  command: BlockCommand;
  target: BlockTarget;
  /** duration_seconds in ns (0 for unblock). */
  ttlNs: bigint;
  /** The command's escalate, in ns; absent: the block does not escalate. */
  escalate?: Escalation;
}

const MAX_ID = 128;
const MAX_TEXT = 1024;
const MAX_SECONDS = Number(MAX_BLOCK_TTL_NS / 1_000_000_000n);

/** Checks a decoded message; the reasons it is not a BlockCommand otherwise (all of them). */
export function parseBlockCommand(value: unknown): CheckedBlockCommand | { errors: string[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { errors: ['a BlockCommand is a JSON object'] };
  const v = value as Record<string, unknown>;
  const errors: string[] = [];
  const text = (name: string, required: boolean, max: number): string => {
    const x = v[name];
    if (x === undefined || x === null) {
      if (required) errors.push(`${name} is missing`);
      return '';
    }
    if (typeof x !== 'string') {
      errors.push(`${name} must be a string`);
      return '';
    }
    if (required && x.trim() === '') errors.push(`${name} is empty`);
    if (x.length > max) errors.push(`${name} is longer than ${max} characters`);
    return x;
  };
  const id = text('command_id', true, MAX_ID);
  const ip = text('ip', true, 64);
  const reason = text('reason', false, MAX_TEXT);
  const source = text('source', false, MAX_TEXT);
  const issuedAt = text('issued_at', false, 64);
  if (issuedAt && Number.isNaN(Date.parse(issuedAt))) errors.push(`issued_at '${issuedAt}' is not an RFC 3339 time`);
  // SecBeat's serde names the variants as written; accept either case.
  const rawAction = v.action;
  const action = typeof rawAction === 'string' ? rawAction.toLowerCase() : rawAction;
  if (action !== 'block' && action !== 'unblock') errors.push(`action must be 'block' or 'unblock', got ${JSON.stringify(rawAction)}`);
  const d = v.duration_seconds;
  let seconds = 0;
  if (action === 'block' || d !== undefined) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < (action === 'block' ? 1 : 0) || d > MAX_SECONDS) {
      errors.push(`duration_seconds must be a whole number from ${action === 'block' ? 1 : 0} to ${MAX_SECONDS}, got ${JSON.stringify(d)}`);
    } else {
      seconds = d;
    }
  }
  let escalate: Escalation | undefined;
  let escalateSeconds: BlockCommand['escalate'];
  if (v.escalate !== undefined && v.escalate !== null) {
    const e = v.escalate as Record<string, unknown>;
    const whole = (name: string, min: number, max: number): number | undefined => {
      const x = typeof e === 'object' && !Array.isArray(e) ? e[name] : undefined;
      if (typeof x === 'number' && Number.isInteger(x) && x >= min && x <= max) return x;
      errors.push(`escalate.${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(x)}`);
      return undefined;
    };
    if (typeof e !== 'object' || Array.isArray(e)) errors.push('escalate is an object { factor, max_seconds, forget_seconds }');
    else {
      const factor = whole('factor', ESCALATE_FACTOR_MIN, ESCALATE_FACTOR_MAX);
      const max = whole('max_seconds', 1, MAX_SECONDS);
      const forget = whole('forget_seconds', 1, MAX_SECONDS);
      if (max !== undefined && max < seconds) errors.push(`escalate.max_seconds ${max} is shorter than duration_seconds ${seconds}`);
      if (factor !== undefined && max !== undefined && forget !== undefined) {
        escalate = { factor, maxNs: BigInt(max) * 1_000_000_000n, forgetNs: BigInt(forget) * 1_000_000_000n };
        escalateSeconds = { factor, max_seconds: max, forget_seconds: forget };
      }
    }
  }
  let target: BlockTarget | undefined;
  if (ip) {
    const t = parseBlockTarget(ip);
    if (typeof t === 'string') errors.push(`ip: ${t}`);
    else target = t;
  }
  if (errors.length || !target) return { errors };
  const escalated = escalate && action === 'block';
  return {
    command: {
      command_id: id,
      ip,
      reason,
      duration_seconds: seconds,
      action: action as 'block' | 'unblock',
      issued_at: issuedAt,
      source,
      ...(escalated ? { escalate: escalateSeconds } : {}),
    },
    target,
    ttlNs: action === 'block' ? BigInt(seconds) * 1_000_000_000n : 0n,
    ...(escalated ? { escalate } : {}),
  };
}

/** A new BlockCommand (for `bae block --nats`), with a fresh UUID as its id. */
export function newBlockCommand(o: { ip: string; action: 'block' | 'unblock'; durationSeconds?: number; reason?: string; source: string; now?: Date; escalate?: Escalation }): BlockCommand {
  const s = (ns: bigint) => Number(ns / 1_000_000_000n);
  return {
    command_id: crypto.randomUUID(),
    ip: o.ip,
    reason: o.reason ?? '',
    duration_seconds: o.durationSeconds ?? 0,
    action: o.action,
    issued_at: (o.now ?? new Date()).toISOString(),
    source: o.source,
    ...(o.escalate ? { escalate: { factor: o.escalate.factor, max_seconds: s(o.escalate.maxNs), forget_seconds: s(o.escalate.forgetNs) } } : {}),
  };
}

/** Command ids seen lately, the oldest forgotten first beyond `capacity`. */
export class SeenIds {
  readonly capacity: number;
  #ids = new Set<string>();

  constructor(capacity = 10_000) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity ${capacity} is not a positive whole number`);
    this.capacity = capacity;
  }

  /** Whether `id` was seen; records it when not (true: new). */
  add(id: string): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.add(id);
    if (this.#ids.size > this.capacity) this.#ids.delete(this.#ids.values().next().value as string);
    return true;
  }

  has(id: string): boolean {
    return this.#ids.has(id);
  }

  get size(): number {
    return this.#ids.size;
  }
}
