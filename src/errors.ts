// One class per kind of failure. Each has a stable `code` that scripts can rely on and that the
// CLI maps to an exit code in one place (src/cli/main.ts).

export type ErrorCode =
  | 'EUSAGE' // bad command-line argument or option value
  | 'EPOLICY' // a policy file that does not parse, validate or compile
  | 'ENOTROOT' // the operation needs root (CAP_BPF / CAP_NET_ADMIN)
  | 'ENOTLOADED' // bae is not loaded where the command expected it
  | 'EALREADY' // bae (or another XDP program) is already there
  | 'ENOIFACE' // no such network interface
  | 'EKERNEL' // the running kernel is older than bae supports
  | 'ELAB' // lab set-up or tear-down failed
  | 'EBPF' // a BPF system call or libbpf operation failed
  | 'EVERIFIER' // the kernel verifier rejected a program
  | 'ENOAGENT' // no `bae agent` holds the delay line that the request needs
  | 'EBUS' // message bus failure
  | 'ESTORE'; // storage failure

export interface BaeErrorOptions {
  cause?: unknown;
}

export class BaeError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options: BaeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
  }
}

export class UsageError extends BaeError {
  constructor(message: string, options?: BaeErrorOptions) {
    super('EUSAGE', message, options);
  }
}

export class NotRootError extends BaeError {
  constructor(what: string) {
    super('ENOTROOT', `${what} needs root (CAP_BPF and CAP_NET_ADMIN); run it with sudo`);
  }
}

export class NotLoadedError extends BaeError {
  constructor(message = 'bae is not loaded; run `bae load --iface IF` first') {
    super('ENOTLOADED', message);
  }
}

export class AlreadyLoadedError extends BaeError {
  constructor(message: string) {
    super('EALREADY', message);
  }
}

export class NoInterfaceError extends BaeError {
  constructor(iface: string, where?: string) {
    super('ENOIFACE', `no network interface named '${iface}'${where ? ` in ${where}` : ''}`);
  }
}

/** The running kernel is older than the oldest bae supports (src/datapath/features.ts). */
export class UnsupportedKernelError extends BaeError {
  constructor(message: string) {
    super('EKERNEL', message);
  }
}

export class LabError extends BaeError {
  constructor(message: string, options?: BaeErrorOptions) {
    super('ELAB', message, options);
  }
}

/** Exit codes of the CLI: 2 for input the user must fix, 1 for everything that went wrong after. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof BaeError) {
    return err.code === 'EUSAGE' || err.code === 'EPOLICY' ? 2 : 1;
  }
  return 1;
}
