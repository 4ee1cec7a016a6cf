// Collection: the programs and maps of one BPF ELF object, loaded together (cilium/ebpf's
// Collection). Knobs that must be set before the kernel sees the object — max_entries,
// `const volatile` constants, pinning — are options of loadCollection.
import fs from 'node:fs';
import path from 'node:path';
import { bpfError, loadError, nativeCall } from './errors';
import { BpfMap } from './map';
import { native, type NativeBpfObject } from './native';
import { ensurePinDir, unpinPath } from './pin';
import { Program } from './program';

export interface LoadOptions {
  /** Pin every (non-global-data) map in this directory, named after the map. */
  pinPath?: string;
  /** Reuse maps already pinned in pinPath (their contents survive); otherwise a pin there is EEXIST. */
  reusePinned?: boolean;
  /** max_entries per map name, applied before load. */
  maxEntries?: Record<string, number>;
  /** Values of `const volatile` globals (.rodata), applied before load. */
  constants?: Record<string, number | bigint | boolean>;
}

export interface StructMember {
  name: string;
  offset: number;
  size: number;
  /** Only for bitfields. */
  bitOffset?: number;
  bitSize?: number;
}

export interface StructLayout {
  name: string;
  size: number;
  members: StructMember[];
}

export class Collection {
  readonly objectPath: string;
  readonly programs: ReadonlyMap<string, Program>;
  /** Every map by libbpf name; global-data maps appear as '<obj>.rodata', '<obj>.bss', ... */
  readonly maps: ReadonlyMap<string, BpfMap>;
  /** The directory the maps are pinned in (loadCollection's pinPath, resolved), if any. */
  readonly pinPath: string | undefined;
  #object: NativeBpfObject | undefined;

  /** @internal Use loadCollection(). */
  constructor(objectPath: string, object: NativeBpfObject, pinPath?: string) {
    this.objectPath = objectPath;
    this.pinPath = pinPath;
    this.#object = object;
    const programs = new Map<string, Program>();
    const maps = new Map<string, BpfMap>();
    try {
      for (const p of object.programs()) {
        try {
          programs.set(p.name, new Program(p.handle, nativeCall(p.name, () => native.progInfo(p.handle.fd)), p.name));
        } catch (err) {
          p.handle.close();
          throw err;
        }
      }
      for (const m of object.maps()) {
        try {
          maps.set(m.name, new BpfMap(m.handle, nativeCall(m.name, () => native.mapInfo(m.handle.fd)), m.name, m.internal));
        } catch (err) {
          m.handle.close();
          throw err;
        }
      }
    } catch (err) {
      for (const p of programs.values()) p.close();
      for (const m of maps.values()) m.close();
      object.close();
      throw err;
    }
    this.programs = programs;
    this.maps = maps;
  }

  get closed(): boolean {
    return this.#object === undefined;
  }

  program(name: string): Program {
    const p = this.programs.get(name);
    if (p === undefined) throw bpfError('program', 'ENOENT', `no program named '${name}' in ${this.objectPath} (programs: ${list(this.programs)})`);
    return p;
  }

  map(name: string): BpfMap {
    const m = this.maps.get(name);
    if (m === undefined) throw bpfError('map', 'ENOENT', `no map named '${name}' in ${this.objectPath} (maps: ${list(this.maps)})`);
    return m;
  }

  /** Layout of a struct (or union) from the object's BTF, to check TypeScript codecs against the C header. */
  structLayout(name: string): StructLayout {
    if (this.#object === undefined) throw bpfError('structLayout', 'EBADF', `collection ${this.objectPath} is closed`);
    if (typeof name !== 'string' || name.length === 0) throw bpfError('structLayout', 'EINVAL', 'struct name must be a non-empty string');
    const object = this.#object;
    const layout = nativeCall(this.objectPath, () => object.structLayout(name));
    if (layout === undefined) throw bpfError('structLayout', 'ENOENT', `no struct or union named '${name}' in the BTF of ${this.objectPath}`);
    return layout;
  }

  /**
   * Removes the pins of this collection's maps from pinPath (the maps live on while anything
   * holds them); pins that are already gone are skipped. Returns the paths removed.
   */
  unpinMaps(): string[] {
    if (this.pinPath === undefined) return [];
    const removed: string[] = [];
    for (const m of this.maps.values()) {
      if (m.internal) continue;
      const pinned = path.join(this.pinPath, m.name);
      if (!fs.existsSync(pinned)) continue;
      unpinPath(pinned, m.name);
      removed.push(pinned);
    }
    return removed;
  }

  /** Closes every program and map, then the object; safe twice. Pinned maps stay pinned. */
  close(): void {
    if (this.#object === undefined) return;
    for (const p of this.programs.values()) p.close();
    for (const m of this.maps.values()) m.close();
    this.#object.close();
    this.#object = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Opens `objectPath`, applies the options and loads every program and map into the kernel. */
export function loadCollection(objectPath: string, opts: LoadOptions = {}): Collection {
  const bad = (message: string) => bpfError('loadCollection', 'EINVAL', message, typeof objectPath === 'string' ? objectPath : undefined);
  if (typeof objectPath !== 'string' || objectPath.length === 0) throw bad('object path must be a non-empty string');
  if (opts === null || typeof opts !== 'object') throw bad('options must be an object');
  const maxEntries: [string, number][] = [];
  for (const [name, n] of Object.entries(opts.maxEntries ?? {})) {
    if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) throw bad(`maxEntries.${name} must be an integer from 1 to ${0xffffffff}, got ${String(n)}`);
    maxEntries.push([name, n]);
  }
  const constants: [string, bigint][] = [];
  for (const [name, v] of Object.entries(opts.constants ?? {})) {
    if (typeof v === 'boolean') constants.push([name, v ? 1n : 0n]);
    else if (typeof v === 'bigint') constants.push([name, v]);
    else if (typeof v === 'number' && Number.isSafeInteger(v)) constants.push([name, BigInt(v)]);
    else throw bad(`constants.${name} must be an integer, bigint or boolean, got ${String(v)}`);
  }
  let pinDir: string | null = null;
  if (opts.pinPath !== undefined) {
    if (typeof opts.pinPath !== 'string' || opts.pinPath.length === 0) throw bad('pinPath must be a non-empty path');
    pinDir = path.resolve(opts.pinPath);
    ensurePinDir(pinDir);
  }
  let object: NativeBpfObject;
  try {
    object = new native.BpfObject(objectPath, pinDir, opts.reusePinned ?? false, maxEntries, constants);
  } catch (err) {
    throw loadError(err, objectPath);
  }
  return new Collection(objectPath, object, pinDir ?? undefined);
}

function list(m: ReadonlyMap<string, unknown>): string {
  return m.size === 0 ? 'none' : [...m.keys()].join(', ');
}
