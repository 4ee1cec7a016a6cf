// One root logger. Each module takes `moduleLogger('name')`, that is `logger.child({ module })`.
// Lines go to stderr (stdout belongs to command output): JSON, one object per line, unless
// stderr is a terminal, where they are short lines for a person ("12:00:01.250 WARN  agent:
// message key=value"). BAE_LOG_FORMAT=json|pretty overrides that choice; BAE_LOG_LEVEL sets the
// level (default info, warn under `node --test`, debug with BAE_DEBUG=1).
import pino from 'pino';

export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  level?: string;
  format?: LogFormat;
  /** Where each line goes (default: stderr, written synchronously). */
  write?: (line: string) => void;
}

function defaultLevel(): string {
  return process.env.BAE_LOG_LEVEL ?? (process.env.BAE_DEBUG ? 'debug' : process.env.NODE_TEST_CONTEXT ? 'warn' : 'info');
}

function defaultFormat(): LogFormat {
  const forced = process.env.BAE_LOG_FORMAT;
  if (forced === 'json' || forced === 'pretty') return forced;
  return process.stderr.isTTY ? 'pretty' : 'json';
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every line has, shown in the line's head (or not at all) rather than as key=value. */
const HEAD_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'module', 'msg', 'err']);

function fieldText(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value);
}

/** One JSON log line of pino as a line for a person: time, level, module, message, fields, error. */
export function prettyLine(jsonLine: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const t = new Date(typeof o.time === 'number' ? o.time : Date.now());
  const two = (n: number) => String(n).padStart(2, '0');
  const time = `${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}.${String(t.getMilliseconds()).padStart(3, '0')}`;
  const level = (LEVEL_NAMES[o.level as number] ?? String(o.level)).padEnd(5);
  const module = typeof o.module === 'string' ? ` ${o.module}:` : '';
  const fields = Object.entries(o)
    .filter(([k]) => !HEAD_FIELDS.has(k))
    .map(([k, v]) => ` ${k}=${fieldText(v)}`)
    .join('');
  const err = o.err as { message?: string; stack?: string; code?: unknown } | undefined;
  const code = err && typeof err === 'object' && err.code !== undefined ? ` code=${fieldText(err.code)}` : '';
  let line = `${time} ${level}${module} ${typeof o.msg === 'string' ? o.msg : ''}${fields}${code}`;
  if (err && typeof err === 'object') line += `\n    ${(err.stack ?? err.message ?? JSON.stringify(err)).split('\n').join('\n    ')}`;
  return line + '\n';
}

/** A root logger; the process's own is `logger` below. Tests make one that writes to them. */
export function createLogger(options: LoggerOptions = {}): pino.Logger {
  const format = options.format ?? defaultFormat();
  const out: { write(line: string): void } = options.write ? { write: options.write } : pino.destination({ fd: 2, sync: true });
  const stream = format === 'pretty' ? { write: (line: string) => out.write(prettyLine(line)) } : out;
  return pino({ name: 'bae', level: options.level ?? defaultLevel(), base: { pid: process.pid } }, stream);
}

export const logger = createLogger();

export function moduleLogger(module: string): pino.Logger {
  return logger.child({ module });
}
