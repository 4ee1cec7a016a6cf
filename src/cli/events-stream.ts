// `bae events --nats URL [--since T] [--node N] [--follow] [--json]`: the fleet's events from the
// JetStream stream BAE_EVENTS, with an ordered consumer from a start time, so that a reader that
// was away catches up; with --follow it goes on until SIGINT/SIGTERM.
import { InvalidArgumentError } from 'commander';
import { BusError, NatsBus, SUBJECTS, checkToken, openBus, type NatsAuth, type StoredEvent } from '../bus';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { parseDuration } from '../policy';

/** `--since`: an ISO 8601 time, or a duration ago (10m, 2h, 7d). */
export function sinceArg(value: string, now = Date.now()): Date {
  if (/^\d+(\.\d+)?[a-z]+$/.test(value)) {
    const ns = parseDuration(value);
    if (typeof ns === 'string') throw new InvalidArgumentError(ns);
    return new Date(now - Number(ns / 1_000_000n));
  }
  const t = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(t)) throw new InvalidArgumentError(`'${value}' is neither a time (2026-12-06T22:00:00Z) nor a duration ago (10m, 2h, 1d)`);
  return new Date(t);
}

/** One line for a person: stored time, node, kind, and what happened. */
export function formatStoredEvent(e: StoredEvent): string {
  const v = (e.value ?? {}) as Record<string, unknown> & { command?: Record<string, unknown> };
  const node = String(v.node ?? e.subject.split('.')[2] ?? '?');
  const kind = String(v.kind ?? e.subject.split('.')[3] ?? '?');
  let what: string;
  if (kind === 'command' && v.command) what = `${String(v.command.action)} ${String(v.command.ip)}${v.command.action === 'block' ? ` for ${String(v.command.duration_seconds)}s` : ''} (command ${String(v.command.command_id)})`;
  else if ('policy' in v) what = `${String(v.policy)} ${String(v.src)} -> ${String(v.dst)} scope=${String(v.scope)} value=${String(v.value)}`;
  else what = toJson(v);
  return `${e.time} #${e.seq} ${node} ${kind.padEnd(5)} ${what}`;
}

export interface ReadEventStreamOptions {
  url: string;
  auth?: NatsAuth;
  since?: Date;
  node?: string;
  follow: boolean;
  json: boolean;
  write?: (text: string) => void;
}

export async function readEventStream(o: ReadEventStreamOptions): Promise<number> {
  let filter: string = SUBJECTS.allEvents;
  if (o.node !== undefined) {
    try {
      filter = `bae.events.${checkToken(o.node, 'node name')}.>`;
    } catch (err) {
      throw new UsageError(`--node: ${(err as Error).message}`);
    }
  }
  const write = o.write ?? ((t: string) => void process.stdout.write(t));
  const bus = await openBus({ url: o.url, ...(o.auth ? { auth: o.auth } : {}), name: 'bae-cli' });
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (!(bus instanceof NatsBus)) throw new BusError('bae events --nats needs a NATS bus');
    return await bus.readEvents({ filter, follow: o.follow, signal: stop.signal, ...(o.since ? { since: o.since } : {}) }, (e) => {
      write((o.json ? toJson({ seq: e.seq, index: e.index, stored: e.time, subject: e.subject, event: e.value }) : formatStoredEvent(e)) + '\n');
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await bus.close();
  }
}
