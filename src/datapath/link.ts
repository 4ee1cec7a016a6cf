// XDP attachment through bpf_link (cilium/ebpf link/xdp.go): the program stays attached while
// the Link (or a pin of it) lives. Interfaces are named or numbered in the caller's network
// namespace.
import { bpfError, fromNative, nativeCall } from './errors';
import { native, type NativeHandle, type NativeLinkInfo } from './native';
import { pinFd, unpinPath } from './pin';
import type { Program } from './program';

export type XdpMode = 'native' | 'generic';
export type XdpAttachedMode = XdpMode | 'offload' | 'multi';

export interface AttachXdpOptions {
  program: Program;
  iface: string | number;
  mode: XdpMode;
  /** Detach whatever XDP program the interface carries first (link or netlink attached). */
  replace?: boolean;
}

export interface XdpStatus {
  ifindex: number;
  /** The attached program's id; absent when nothing is attached. */
  progId?: number;
  progName?: string;
  mode?: XdpAttachedMode;
  /** Id of the bpf_link holding it; absent for netlink (legacy) attachments. */
  linkId?: number;
}

// linux/if_link.h
const XDP_FLAGS_SKB_MODE = 1 << 1;
const XDP_FLAGS_DRV_MODE = 1 << 2;
const XDP_FLAGS_HW_MODE = 1 << 3;
const modeFlags: Record<XdpMode, number> = { native: XDP_FLAGS_DRV_MODE, generic: XDP_FLAGS_SKB_MODE };
// enum XDP_ATTACHED_*
const attachedModes: Record<number, XdpAttachedMode> = { 1: 'native', 2: 'generic', 3: 'offload', 4: 'multi' };

export class Link {
  readonly id: number;
  readonly ifindex: number;
  readonly progId: number;
  #handle: NativeHandle | undefined;
  #pinnedAt: string | undefined;

  /** @internal Use attachXdp() or openPinnedLink(). */
  constructor(handle: NativeHandle, info: NativeLinkInfo, pinnedAt?: string) {
    this.#handle = handle;
    this.id = info.id;
    this.ifindex = info.ifindex;
    this.progId = info.progId;
    this.#pinnedAt = pinnedAt;
  }

  get fd(): number {
    return this.#handle?.fd ?? -1;
  }

  get closed(): boolean {
    return this.#handle === undefined;
  }

  /** Where this link is pinned, if it is. */
  get pinnedAt(): string | undefined {
    return this.#pinnedAt;
  }

  /** Pins the link so that the attachment outlives this process. */
  pin(path: string): void {
    pinFd(this.#open('pin'), path, `link ${this.id}`);
    this.#pinnedAt = path;
  }

  /** Removes the pin made by pin() (or the one opened by openPinnedLink). */
  unpin(): void {
    if (this.#pinnedAt === undefined) throw bpfError('unpin', 'ENOENT', `link ${this.id} is not pinned`, `link ${this.id}`);
    unpinPath(this.#pinnedAt, `link ${this.id}`);
    this.#pinnedAt = undefined;
  }

  /** Detaches the program now, whoever else holds or pins the link, and closes it. */
  detach(): void {
    const fd = this.#open('detach');
    nativeCall(this.#describe(), () => native.linkDetach(fd));
    this.close();
  }

  /**
   * Closes this handle; an unpinned link is detached first, so that the program is gone when
   * close() returns even if another process holds the link for a moment (anything that lists
   * links, such as xdpQuery, does). A pinned link stays attached. Safe twice.
   */
  close(): void {
    const handle = this.#handle;
    if (handle === undefined) return;
    this.#handle = undefined;
    if (this.#pinnedAt === undefined) {
      try {
        native.linkDetach(handle.fd);
      } catch {
        // already detached (replaced, interface gone): closing is all that is left
      }
    }
    handle.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #open(op: string): number {
    if (this.#handle === undefined) throw bpfError(op, 'EBADF', `link ${this.id} is closed`, this.#describe());
    return this.#handle.fd;
  }

  #describe(): string {
    return native.ifIndexToName(this.ifindex) ?? `link ${this.id}`;
  }
}

/** The ifindex of `iface` (a name or an index) in this network namespace; ENODEV naming it otherwise. */
export function resolveIfindex(iface: string | number, op = 'ifindex'): number {
  if (typeof iface === 'number') {
    if (!Number.isInteger(iface) || iface <= 0 || iface > 0x7fffffff) throw bpfError(op, 'EINVAL', `interface index must be a positive integer, got ${iface}`);
    if (native.ifIndexToName(iface) === undefined) throw bpfError(op, 'ENODEV', `no network interface with index ${iface}`, String(iface));
    return iface;
  }
  if (typeof iface !== 'string' || iface.length === 0 || iface.length > 15)
    throw bpfError(op, 'EINVAL', `interface must be a name of 1 to 15 characters or an index, got ${JSON.stringify(iface)}`);
  const ifindex = native.ifNameToIndex(iface);
  if (ifindex === 0) throw bpfError(op, 'ENODEV', `no network interface named '${iface}'`, iface);
  return ifindex;
}

/** What XDP program `iface` carries, in which mode, and through which link. */
export function xdpQuery(iface: string | number): XdpStatus {
  const ifindex = resolveIfindex(iface, 'xdpQuery');
  const name = native.ifIndexToName(ifindex) ?? String(ifindex);
  const q = nativeCall(name, () => native.xdpQuery(ifindex));
  const status: XdpStatus = { ifindex };
  if (q.progId === 0 && q.attachMode === 0) return status;
  const mode = attachedModes[q.attachMode];
  if (mode !== undefined) status.mode = mode;
  const progId = q.progId || q.drvProgId || q.skbProgId || q.hwProgId;
  if (progId) {
    status.progId = progId;
    const info = nativeCall(name, () => native.progInfoById(progId));
    if (info !== undefined) status.progName = info.name;
  }
  if (progId) {
    const linkIds = nativeCall(name, () => native.xdpLinkIds(ifindex, progId));
    if (linkIds.length === 1) status.linkId = linkIds[0]!;
  }
  return status;
}

/**
 * Attaches `program` to `iface` in `mode` through a bpf_link. An interface that already carries
 * an XDP program is refused with EEXIST naming it, unless `replace`: then the old program is
 * detached first (its link detached, or the netlink attachment removed in its own mode).
 */
export function attachXdp(opts: AttachXdpOptions): Link {
  if (opts === null || typeof opts !== 'object') throw bpfError('attachXdp', 'EINVAL', 'options must be an object');
  const { program, iface, mode } = opts;
  if (program === null || typeof program !== 'object' || typeof program.fd !== 'number')
    throw bpfError('attachXdp', 'EINVAL', 'program must be a Program');
  if (program.fd < 0) throw bpfError('attachXdp', 'EBADF', `program ${program.name} is closed`, String(iface));
  if (!(mode in modeFlags)) throw bpfError('attachXdp', 'EINVAL', `mode must be 'native' or 'generic', got ${JSON.stringify(mode)}`, String(iface));
  if (program.type !== 'xdp') throw bpfError('attachXdp', 'EINVAL', `program ${program.name} is of type ${program.type}, not xdp`, String(iface));
  const ifindex = resolveIfindex(iface, 'attachXdp');
  const name = native.ifIndexToName(ifindex) ?? String(iface);

  const current = xdpQuery(ifindex);
  if (current.progId !== undefined) {
    if (!opts.replace) {
      const what = `${current.progName ? `'${current.progName}' ` : ''}(id ${current.progId}, ${current.mode ?? 'unknown'} mode, ${current.linkId ? `link ${current.linkId}` : 'netlink'})`;
      throw bpfError('attachXdp', 'EEXIST', `interface ${name} already has XDP program ${what}; pass replace to detach it first`, name);
    }
    detachCurrent(ifindex, name);
  }

  const handle = nativeCall(name, () => native.xdpLinkCreate(program.fd, ifindex, modeFlags[mode]));
  try {
    return new Link(handle, nativeCall(name, () => native.linkInfo(handle.fd)));
  } catch (err) {
    handle.close();
    throw err;
  }
}

// Removes whatever XDP program the interface carries, mode by mode. Netlink first: the kernel
// refuses that with EBUSY when a bpf_link holds the program, and then the link is detached.
function detachCurrent(ifindex: number, name: string): void {
  const q = nativeCall(name, () => native.xdpQuery(ifindex));
  const modes: [number, number][] = [
    [q.drvProgId, XDP_FLAGS_DRV_MODE],
    [q.skbProgId, XDP_FLAGS_SKB_MODE],
    [q.hwProgId, XDP_FLAGS_HW_MODE],
  ];
  for (const [progId, flags] of modes) {
    if (!progId) continue;
    try {
      native.xdpDetach(ifindex, flags);
      continue;
    } catch (err) {
      if ((err as { errno?: number }).errno !== 16 /* EBUSY: a link holds it */) throw fromNative(err, name);
    }
    const linkIds = nativeCall(name, () => native.xdpLinkIds(ifindex, progId));
    if (linkIds.length !== 1)
      throw bpfError('attachXdp', 'EBUSY', `interface ${name}: cannot tell which of ${linkIds.length} links holds program ${progId}; detach it by hand`, name);
    const handle = nativeCall(name, () => native.linkGetById(linkIds[0]!));
    try {
      nativeCall(name, () => native.linkDetach(handle.fd));
    } finally {
      handle.close();
    }
  }
}

/**
 * Attaches through netlink (no link): the old way that `ip link set dev X xdp` uses. For tools
 * and tests that must reproduce such an attachment; detach it with detachXdpLegacy in the same mode.
 */
export function attachXdpLegacy(program: Program, iface: string | number, mode: XdpMode): void {
  const ifindex = resolveIfindex(iface, 'attachXdpLegacy');
  if (!(mode in modeFlags)) throw bpfError('attachXdpLegacy', 'EINVAL', `mode must be 'native' or 'generic', got ${JSON.stringify(mode)}`);
  const XDP_FLAGS_UPDATE_IF_NOEXIST = 1;
  nativeCall(native.ifIndexToName(ifindex) ?? String(iface), () =>
    native.xdpAttachLegacy(ifindex, program.fd, modeFlags[mode] | XDP_FLAGS_UPDATE_IF_NOEXIST),
  );
}

/** Removes a netlink-attached program in `mode`. */
export function detachXdpLegacy(iface: string | number, mode: XdpMode): void {
  const ifindex = resolveIfindex(iface, 'detachXdpLegacy');
  if (!(mode in modeFlags)) throw bpfError('detachXdpLegacy', 'EINVAL', `mode must be 'native' or 'generic', got ${JSON.stringify(mode)}`);
  nativeCall(native.ifIndexToName(ifindex) ?? String(iface), () => native.xdpDetach(ifindex, modeFlags[mode]));
}

/** Opens a link pinned at `path`; unpin() then removes that pin. */
export function openPinnedLink(path: string): Link {
  if (typeof path !== 'string' || path.length === 0) throw bpfError('openPinnedLink', 'EINVAL', 'path must be a non-empty string');
  const handle = nativeCall(path, () => native.objGet(path));
  try {
    return new Link(handle, nativeCall(path, () => native.linkInfo(handle.fd)), path);
  } catch (err) {
    handle.close();
    throw err;
  }
}
