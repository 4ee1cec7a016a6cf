// One root logger. JSON lines on stderr by default (stdout belongs to command output), pretty
// enough for a human only when stderr is a TTY. Modules take `logger.child({ module })`.
import pino from 'pino';

const level = process.env.BAE_LOG_LEVEL ?? (process.env.NODE_TEST_CONTEXT ? 'warn' : 'info');

export const logger = pino(
  { name: 'bae', level, base: { pid: process.pid } },
  pino.destination({ fd: 2, sync: true }),
);

export function moduleLogger(module: string): pino.Logger {
  return logger.child({ module });
}
