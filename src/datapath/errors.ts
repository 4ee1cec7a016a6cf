// Errors of the BPF layer. A failed system call or libbpf operation becomes a BpfError whose
// `code` is the errno name ('ENOENT', 'EEXIST', ...), with `errno`, the operation `op` and the
// `object` it was applied to; the message reads "bpf_map_update_elem(conversations): File exists".
// A program the verifier refuses becomes a VerifierError carrying the verifier log.
import os from 'node:os';
import type { NativeErrnoError } from './native';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(os.constants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}
// Kernel-internal errnos that leak out of the bpf syscall and have no libc name.
errnoNames.set(524, 'ENOTSUPP');

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

export interface BpfErrorOptions {
  object?: string;
  detail?: string;
  cause?: unknown;
}

export class BpfError extends Error {
  /** errno name, e.g. 'ENOENT'. */
  readonly code: string;
  readonly errno: number;
  /** the failed operation, e.g. 'bpf_map_update_elem'. */
  readonly op: string;
  /** what it was applied to (map, program or interface name, path), when known. */
  readonly object: string | undefined;

  constructor(op: string, errno: number, reason: string, options: BpfErrorOptions = {}) {
    const target = options.object === undefined ? op : `${op}(${options.object})`;
    super(`${target}: ${options.detail ?? reason}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = errnoName(errno);
    this.errno = errno;
    this.op = op;
    this.object = options.object;
  }
}

export class VerifierError extends BpfError {
  /** The verifier's log, one entry per line (libbpf's own messages when the kernel gave none). */
  readonly log: string[];
  /** The program the kernel refused, when libbpf named it. */
  readonly program: string | undefined;
  constructor(op: string, errno: number, reason: string, log: string[], options: BpfErrorOptions & { program?: string } = {}) {
    super(op, errno, reason, options);
    this.log = log;
    this.program = options.program;
  }
}

function isNativeErrno(err: unknown): err is NativeErrnoError {
  return err instanceof Error && typeof (err as NativeErrnoError).errno === 'number' && typeof (err as NativeErrnoError).op === 'string';
}

function reasonOf(err: NativeErrnoError): string {
  const sep = err.message.lastIndexOf(': ');
  return sep >= 0 ? err.message.slice(sep + 2) : err.message;
}

/** Turns an addon error into a BpfError naming `object`; anything else passes through. */
export function fromNative(err: unknown, object?: string): unknown {
  if (!isNativeErrno(err)) return err;
  const options: BpfErrorOptions = { cause: err };
  // Some native operations already name their object: "bpf_obj_get(/sys/fs/bpf/x)".
  const named = /^([\w.]+)\((.*)\)$/.exec(err.op);
  const op = named ? named[1]! : err.op;
  const target = named ? named[2]! : object;
  if (target !== undefined) options.object = target;
  if (err.detail !== undefined) options.detail = err.detail;
  return new BpfError(op, err.errno, reasonOf(err), options);
}

/** Runs one addon call; a failure is rethrown as a BpfError naming `object`. */
export function nativeCall<T>(object: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err, object);
  }
}

/** A BpfError raised by the TypeScript layer itself (closed object, bad argument, absent name). */
export function bpfError(op: string, code: keyof typeof os.constants.errno, message: string, object?: string): BpfError {
  const options: BpfErrorOptions = { detail: message };
  if (object !== undefined) options.object = object;
  return new BpfError(op, os.constants.errno[code], message, options);
}

/** The load failure of an object: a VerifierError when the kernel refused a program. */
export function loadError(err: unknown, objectPath: string): unknown {
  if (!isNativeErrno(err)) return err;
  const kernelLog = (err.verifierLog ?? '').split('\n').filter((l) => l.length > 0);
  const libbpfLog = (err.libbpfLog ?? '').split('\n').filter((l) => l.length > 0);
  const refused = libbpfLog.some((l) => /BPF program load failed/.test(l));
  if (kernelLog.length > 0 || refused) {
    const log = kernelLog.length > 0 ? kernelLog : libbpfLog;
    const hint = kernelLog.length > 0 ? ` (verifier: ${lastMeaningful(kernelLog)})` : '';
    // libbpf: "prog 'bae_xdp': BPF program load failed: Argument list too long"
    const program = libbpfLog.map((l) => /prog '([^']+)': BPF program load failed/.exec(l)?.[1]).find((p) => p !== undefined);
    return new VerifierError('bpf_object__load', err.errno, reasonOf(err) + hint, log, {
      object: objectPath,
      cause: err,
      ...(program !== undefined ? { program } : {}),
    });
  }
  const e = fromNative(err, objectPath);
  if (e instanceof BpfError && libbpfLog.length > 0) {
    Object.defineProperty(e, 'libbpfLog', { value: libbpfLog, enumerable: false });
    // libbpf's own line says which map or step failed ("map 'x': failed to create: ...").
    const why = libbpfLog.filter((l) => /fail|error/i.test(l) && !/failed to load object|Failed to bump RLIMIT_MEMLOCK/.test(l)).pop();
    if (why !== undefined) e.message += ` (${why.replace(/^libbpf: /, '').split('. ')[0]!.trim()})`;
  }
  return e;
}

/** The line of a verifier log that says why (the log ends with "processed N insns" statistics). */
export function lastMeaningful(log: string[]): string {
  for (let i = log.length - 1; i >= 0; i--) {
    const line = log[i]!;
    if (!/^processed \d+ insns|^verification time|^stack depth|^R\d|^-- END PROG LOAD LOG --/.test(line)) return line.trim();
  }
  return log[log.length - 1] ?? '';
}
