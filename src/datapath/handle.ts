// What a map and a program have in common: a kernel object this process holds through a native
// handle (its file descriptor), by name, pinned and released the same way.
import { bpfError } from './errors';
import type { NativeHandle } from './native';
import { pinFd, unpinPath } from './pin';

export abstract class BpfHandle {
  readonly name: string;
  /** 'map' or 'program', for messages. */
  protected abstract readonly kind: string;
  #handle: NativeHandle | undefined;

  protected constructor(handle: NativeHandle, name: string) {
    this.#handle = handle;
    this.name = name;
  }

  /** The object's file descriptor; -1 once closed. */
  get fd(): number {
    return this.#handle?.fd ?? -1;
  }

  get closed(): boolean {
    return this.#handle === undefined;
  }

  /** Pins the object at `path` (a file on bpffs; the directory is made). */
  pin(path: string): void {
    pinFd(this.openFd('pin'), path, this.name);
  }

  /** Removes the pin at `path`. The object lives on while anything holds it. */
  unpin(path: string): void {
    unpinPath(path, this.name);
  }

  /** Releases this handle on the object; safe twice. */
  close(): void {
    this.#handle?.close();
    this.#handle = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The descriptor for operation `op`; EBADF once closed. */
  protected openFd(op: string): number {
    if (this.#handle === undefined) throw bpfError(op, 'EBADF', `${this.kind} ${this.name} is closed`, this.name);
    return this.#handle.fd;
  }
}
