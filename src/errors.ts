// One class per kind of failure. Each carries a stable `code` that scripts can rely on and the
// CLI's exit code for it (`exitCode`), which the one handler of src/cli/main.ts uses. The codes
// are namespaced (BAE_...) so that none reads as an errno name: the errno of a failed system call
// is BpfError's (src/datapath/errors.ts), whose `code` is that errno name, as Node's own errors.

/** The exit codes of the CLI. */
export const EXIT = {
  /** Something went wrong after the input was accepted; also any error bae does not know. */
  failure: 1,
  /** Input the user must fix: an argument, an option, a policy file. */
  input: 2,
  /** A status query found nothing running (`bae agent status` without an agent), as LSB's status. */
  notRunning: 3,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Every code of bae's errors, with the exit code it gives unless its class says otherwise. */
export const ERROR_CODES = {
  /** bad command-line argument or option value */
  BAE_USAGE: EXIT.input,
  /** a policy file that does not parse, validate or compile */
  BAE_POLICY: EXIT.input,
  /** the operation needs root (CAP_BPF / CAP_NET_ADMIN) */
  BAE_NOT_ROOT: EXIT.failure,
  /** bae is not loaded where the command expected it */
  BAE_NOT_LOADED: EXIT.failure,
  /** bae (or another XDP program, or another agent) is already there */
  BAE_ALREADY_LOADED: EXIT.failure,
  /** another bae process holds what this one needs (a concurrent `bae policy apply`) */
  BAE_BUSY: EXIT.failure,
  /** no such network interface */
  BAE_NO_IFACE: EXIT.failure,
  /** the running kernel is older than bae supports */
  BAE_KERNEL: EXIT.failure,
  /** lab set-up or tear-down failed */
  BAE_LAB: EXIT.failure,
  /** a BPF system call or libbpf operation failed */
  BAE_BPF: EXIT.failure,
  /** the kernel verifier rejected a program */
  BAE_VERIFIER: EXIT.failure,
  /** no `bae agent` answers on the control socket (exit 3 from `bae agent status`) */
  BAE_NO_AGENT: EXIT.failure,
  /** the agent's control socket failed, or the agent refused the request */
  BAE_AGENT: EXIT.failure,
  /** the message bus failed: NATS unreachable or refused, no reply within the timeout, a malformed command */
  BAE_BUS: EXIT.failure,
  /** no conversation (or TCP flow) in bae's maps fits what `bae inject` was asked to forge */
  BAE_NO_CONVERSATION: EXIT.failure,
  /** the store (SQLite) failed: a disk full, a file it cannot open or write, a schema newer than this bae */
  BAE_STORE: EXIT.failure,
} as const satisfies Record<string, ExitCode>;
export type ErrorCode = keyof typeof ERROR_CODES;

export interface BaeErrorOptions {
  cause?: unknown;
}

export class BaeError extends Error {
  readonly code: ErrorCode;
  /** The CLI's exit code for this failure: ERROR_CODES[code] unless a class overrides it. */
  readonly exitCode: ExitCode;
  constructor(code: ErrorCode, message: string, options: BaeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = ERROR_CODES[code];
  }
}

export class UsageError extends BaeError {
  constructor(message: string, options?: BaeErrorOptions) {
    super('BAE_USAGE', message, options);
  }
}

export class NotRootError extends BaeError {
  constructor(what: string) {
    super('BAE_NOT_ROOT', `${what} needs root (CAP_BPF and CAP_NET_ADMIN); run it with sudo`);
  }
}

export class NotLoadedError extends BaeError {
  constructor(message = 'bae is not loaded; run `bae load --iface IF` first') {
    super('BAE_NOT_LOADED', message);
  }
}

export class AlreadyLoadedError extends BaeError {
  constructor(message: string) {
    super('BAE_ALREADY_LOADED', message);
  }
}

export class NoInterfaceError extends BaeError {
  constructor(iface: string, where?: string) {
    super('BAE_NO_IFACE', `no network interface named '${iface}'${where ? ` in ${where}` : ''}`);
  }
}

/** The running kernel is older than the oldest bae supports (src/datapath/features.ts). */
export class UnsupportedKernelError extends BaeError {
  constructor(message: string) {
    super('BAE_KERNEL', message);
  }
}

export class LabError extends BaeError {
  constructor(message: string, options?: BaeErrorOptions) {
    super('BAE_LAB', message, options);
  }
}

/** The exit code of the CLI for any error: its own for bae's errors, EXIT.failure for the rest. */
export function exitCodeFor(err: unknown): ExitCode {
  return err instanceof BaeError ? err.exitCode : EXIT.failure;
}
