// The loader: puts build/bpf/bae.o on one interface (ingress mode) or between two (inline
// mode), pins its maps and XDP links under one bpffs directory, and takes it all away again.
// Everything a later process needs is in the pins, so `bae status`, `bae profiles` and
// `bae unload` work from any process in the same network namespace as `bae load`.
//
// Pin layout of one bae instance (default /sys/fs/bpf/bae):
//   <pinDir>/<map name>       every map of bae.o (bae_convs, bae_stats, bae_ports, ...)
//   <pinDir>/links/<iface>    the XDP bpf_link of each port; the attachment lives as long as it
//
// A load either completes or leaves nothing behind: a failure after the first step detaches
// what was attached and removes every pin made, then reports the first error.
import fs from 'node:fs';
import path from 'node:path';
import { AlreadyLoadedError, BaeError, NoInterfaceError, NotLoadedError, NotRootError, UsageError } from '../errors';
import { Collection, loadCollection } from './collection';
import { BpfError, VerifierError } from './errors';
import { CONSTANTS, DEFAULT_HTTP_PORTS, MAPS, Mode, PROGRAM, Stats, encodeHttpPorts, sumStatsPerCpu } from './layout';
import { DELAY_MAPS, POLICY_DELAY_CLASSES } from './delay-layout';
import { BpfMap, openPinnedMap } from './map';
import { Link, XdpAttachedMode, XdpMode, attachXdp, openPinnedLink, resolveIfindex, xdpQuery } from './link';
import { ensurePinDir } from './pin';
import { Program, openProgramById } from './program';
import { requireSupportedKernel } from './features';

export const DEFAULT_PIN_DIR = '/sys/fs/bpf/bae';
/** build/bpf/bae.o of this checkout (dist/src/datapath/loader.js -> <repo>/build/bpf/bae.o); BAE_OBJECT overrides. */
export const DEFAULT_OBJECT = process.env.BAE_OBJECT ?? path.resolve(__dirname, '../../../build/bpf/bae.o');
/**
 * Upper bound of --max-conversations. bae_convs is a per-CPU LRU hash whose memory is allocated
 * up front: 464 bytes per entry per possible CPU, so 2^20 entries take ~1 GB on two CPUs.
 */
export const MAX_CONVERSATIONS_LIMIT = 1 << 20;
const LINKS_DIR = 'links';

export type BaeMode = 'ingress' | 'inline';

export interface LoadOptions {
  iface: string;
  /** The second port: inline mode. */
  peer?: string;
  xdpMode?: XdpMode;
  /** Capacity of bae_convs (and of bae_tcp_flows); the object's default when absent. */
  maxConversations?: number;
  pinDir?: string;
  objectPath?: string;
  /** `uname -r` of the kernel to load into (default os.release()); below 6.1 load refuses. */
  kernelRelease?: string;
  /** TCP ports whose payloads are read for HTTP/1.x lines (default DEFAULT_HTTP_PORTS; [] none). */
  httpPorts?: readonly number[];
}

export interface PortState {
  iface: string;
  ifindex: number;
  progId: number;
  linkId: number;
  linkPin: string;
}

export interface LoadedState {
  pinDir: string;
  mode: BaeMode;
  xdpMode: XdpMode;
  ports: PortState[];
  maxConversations: number;
}

// ---- checks --------------------------------------------------------------------------------

const IFNAME = /^[^\s/:]{1,15}$/;

/** Interface names: 1-15 characters, no whitespace, '/' or ':' (what the kernel accepts). */
export function checkIfaceName(name: string): string {
  if (!IFNAME.test(name)) {
    throw new UsageError(`bad interface name '${name}': 1 to 15 characters without spaces, '/' or ':'`);
  }
  return name;
}

/** A pin directory: an absolute path below a bpffs mount point, not the mount point itself. */
export function checkPinDir(dir: string): string {
  const resolved = path.resolve(dir);
  if (!path.isAbsolute(dir) || resolved === '/' || resolved === '/sys/fs/bpf' || dir.includes('\0')) {
    throw new UsageError(`bad pin directory '${dir}': give an absolute path below /sys/fs/bpf, e.g. ${DEFAULT_PIN_DIR}`);
  }
  return resolved;
}

function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new NotRootError(what);
}

/** The ifindex of `name` in this process's network namespace. */
export function ifindexOf(name: string): number {
  checkIfaceName(name);
  try {
    return resolveIfindex(name);
  } catch (err) {
    if ((err as BpfError).code === 'ENODEV') throw new NoInterfaceError(name, 'this network namespace');
    throw err;
  }
}

/** A BPF failure as a one-line BaeError that says what was being done and, for EPERM, why. */
function bpfFailure(doing: string, err: unknown): BaeError {
  if (err instanceof BaeError) return err;
  if (err instanceof VerifierError) {
    return new BaeError('BAE_VERIFIER', `${doing}: the kernel verifier rejected it: ${err.message}`, { cause: err });
  }
  const e = err as Partial<BpfError> & Error;
  if (e.code === 'EPERM' || e.code === 'EACCES') {
    return new BaeError(
      'BAE_BPF',
      `${doing}: the kernel refused BPF (${e.code}); bae needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON in the ` +
        'initial user namespace (a container or `unshare -U` root does not have them)',
      { cause: err },
    );
  }
  return new BaeError('BAE_BPF', `${doing}: ${e.message ?? String(err)}`, { cause: err });
}

// ---- XDP attachment ---------------------------------------------------------------------------

interface XdpState {
  progId: number;
  mode: XdpAttachedMode | 'none';
}

function xdpStateOf(ifindex: number): XdpState {
  const q = xdpQuery(ifindex);
  return { progId: q.progId ?? 0, mode: q.progId ? (q.mode ?? 'multi') : 'none' };
}

// ---- load ------------------------------------------------------------------------------------

function listPins(pinDir: string): string[] {
  const out: string[] = [];
  if (!fs.existsSync(pinDir)) return out;
  for (const entry of fs.readdirSync(pinDir, { withFileTypes: true })) {
    const p = path.join(pinDir, entry.name);
    if (entry.isDirectory()) for (const sub of fs.readdirSync(p)) out.push(path.join(p, sub));
    else out.push(p);
  }
  return out;
}

/** Loads bae and attaches it; see the file comment. */
export function load(opts: LoadOptions): LoadedState {
  const xdpMode = opts.xdpMode ?? 'native';
  const pinDir = checkPinDir(opts.pinDir ?? DEFAULT_PIN_DIR);
  const objectPath = opts.objectPath ?? DEFAULT_OBJECT;
  checkIfaceName(opts.iface);
  if (opts.peer !== undefined) {
    checkIfaceName(opts.peer);
    if (opts.peer === opts.iface) throw new UsageError(`--peer must differ from --iface (both are '${opts.iface}')`);
  }
  if (opts.maxConversations !== undefined) {
    const n = opts.maxConversations;
    if (!Number.isInteger(n) || n < 1 || n > MAX_CONVERSATIONS_LIMIT) {
      throw new UsageError(`bad --max-conversations ${n}: a whole number from 1 to ${MAX_CONVERSATIONS_LIMIT}`);
    }
  }
  let httpWords: Buffer[];
  try {
    httpWords = encodeHttpPorts(opts.httpPorts ?? DEFAULT_HTTP_PORTS);
  } catch (err) {
    throw new UsageError(`bad --http-ports: ${(err as Error).message}`);
  }
  // A kernel older than bae supports is refused before anything is tried (features.ts).
  requireSupportedKernel(opts.kernelRelease);
  requireRoot('bae load');

  // Everything that can be checked before the first change is checked here.
  const names = opts.peer === undefined ? [opts.iface] : [opts.iface, opts.peer];
  const ifindexes = names.map(ifindexOf);
  const existing = listPins(pinDir);
  if (existing.length > 0) {
    throw new AlreadyLoadedError(`bae is already loaded (${existing.length} pins in ${pinDir}); run \`bae unload\` first`);
  }
  names.forEach((name, i) => {
    const st = xdpStateOf(ifindexes[i]!);
    if (st.progId) {
      throw new AlreadyLoadedError(
        `interface ${name} already has an XDP program (id ${st.progId}, ${st.mode} mode); detach it first`,
      );
    }
  });
  if (!fs.existsSync(objectPath)) {
    throw new BaeError('BAE_BPF', `BPF object ${objectPath} is missing; build it with \`make\``);
  }

  const createdDir = !fs.existsSync(pinDir);
  const links: Link[] = [];
  const pins: string[] = [];
  let coll: Collection | undefined;
  let step = 'preparing the pin directory';
  try {
    ensurePinDir(pinDir);
    step = `loading ${path.basename(objectPath)}`;
    const maxEntries: Record<string, number> = {};
    if (opts.maxConversations !== undefined) {
      maxEntries[MAPS.convs] = opts.maxConversations;
      maxEntries[MAPS.tcpFlows] = opts.maxConversations;
    }
    // Delay-class actions (src/agent/): XSKMAP key ingress ifindex * 8 + class, so the map is
    // sized for the ports at hand (ifindexes only grow on a long-lived host).
    maxEntries[DELAY_MAPS.xsks] = (Math.max(...ifindexes) + 1) * POLICY_DELAY_CLASSES;
    coll = loadCollection(objectPath, {
      pinPath: pinDir,
      maxEntries,
      constants: { [CONSTANTS.mode]: opts.peer === undefined ? Mode.ingress : Mode.inline },
    });
    // loadCollection pins every map that is not global data, named after it.
    for (const m of coll.maps.values()) if (!m.internal) pins.push(path.join(pinDir, m.name));
    const program = coll.program(PROGRAM);
    step = `filling ${MAPS.httpPorts}`;
    fillHttpPorts(coll.map(MAPS.httpPorts), httpWords);

    if (opts.peer !== undefined) {
      step = `filling ${MAPS.ports}`;
      const ports = coll.map(MAPS.ports);
      const [a, b] = ifindexes as [number, number];
      ports.update(u32(a), u32(b));
      ports.update(u32(b), u32(a));
    }

    const linkDir = path.join(pinDir, LINKS_DIR);
    fs.mkdirSync(linkDir, { recursive: true });
    const ports: PortState[] = [];
    names.forEach((name, i) => {
      step = `attaching to ${name} in ${xdpMode} mode`;
      const ifindex = ifindexes[i]!;
      const link = attachXdp({ program, iface: ifindex, mode: xdpMode });
      links.push(link);
      step = `pinning the link of ${name}`;
      const linkPin = path.join(linkDir, name);
      link.pin(linkPin);
      pins.push(linkPin);
      ports.push({ iface: name, ifindex, progId: link.progId, linkId: link.id, linkPin });
    });
    const maxConversations = coll.map(MAPS.convs).maxEntries;
    return { pinDir, mode: opts.peer === undefined ? 'ingress' : 'inline', xdpMode, ports, maxConversations };
  } catch (err) {
    // Undo in reverse: detach, then remove the pins this call made and nothing else (a failed
    // loadCollection has already removed its own). The directories go when they are empty.
    for (const link of links.reverse()) {
      try {
        link.detach();
      } catch {
        /* the interface may be gone */
      }
    }
    for (const p of pins) fs.rmSync(p, { force: true });
    removeIfEmpty(path.join(pinDir, LINKS_DIR));
    if (createdDir) removeIfEmpty(pinDir);
    throw bpfFailure(`bae load failed ${step}`, err);
  } finally {
    for (const link of links) link.close();
    coll?.close();
  }
}

/** Writes the bae_http_ports bitmap (encodeHttpPorts) into its map, every word. */
export function fillHttpPorts(map: BpfMap, words: readonly Buffer[]): void {
  map.updateBatch(
    words.map((_, i) => u32(i)),
    [...words],
  );
}

function removeIfEmpty(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    /* absent, or holds what another process made */
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

// ---- unload ----------------------------------------------------------------------------------

export interface UnloadResult {
  pinDir: string;
  wasLoaded: boolean;
  /** Interfaces bae was detached from. */
  detached: string[];
  removedPins: string[];
}

/** Detaches every pinned link and removes every pin under pinDir. Idempotent. */
export function unload(opts: { pinDir?: string } = {}): UnloadResult {
  const pinDir = checkPinDir(opts.pinDir ?? DEFAULT_PIN_DIR);
  const result: UnloadResult = { pinDir, wasLoaded: false, detached: [], removedPins: [] };
  // Before looking: without root, /sys/fs/bpf (mode 0700) hides the pins and all looks unloaded.
  requireRoot('bae unload');
  if (!fs.existsSync(pinDir)) return result;
  const linkDir = path.join(pinDir, LINKS_DIR);
  const linkPins = fs.existsSync(linkDir) ? fs.readdirSync(linkDir).map((n) => path.join(linkDir, n)) : [];
  const errors: string[] = [];
  for (const pin of linkPins) {
    let link: Link | undefined;
    try {
      link = openPinnedLink(pin);
      // A link whose interface vanished (lab down) has ifindex 0: nothing was attached any more.
      const wasAttached = link.ifindex !== 0;
      link.detach();
      if (wasAttached) result.detached.push(path.basename(pin));
    } catch (err) {
      // ENOLINK: already detached (the interface is gone); anything else is worth reporting.
      if ((err as BpfError).code !== 'ENOLINK') errors.push(`${path.basename(pin)}: ${(err as Error).message}`);
    } finally {
      link?.close();
    }
  }
  for (const pin of listPins(pinDir)) {
    fs.rmSync(pin, { force: true });
    result.removedPins.push(pin);
  }
  fs.rmSync(linkDir, { recursive: true, force: true });
  fs.rmSync(pinDir, { recursive: true, force: true });
  result.wasLoaded = result.removedPins.length > 0;
  if (errors.length) throw new BaeError('BAE_BPF', `bae unload could not detach ${errors.join('; ')} (pins removed)`);
  return result;
}

// ---- status ----------------------------------------------------------------------------------

export interface PortStatus {
  iface: string;
  /** The interface's ifindex in this namespace now (0: not here). */
  ifindex: number;
  linkId: number;
  progId: number;
  /** The link still holds the program on the interface. */
  attached: boolean;
  /** How the program is attached, as the interface reports it. */
  xdpMode: XdpAttachedMode | 'none';
}

export interface MapFill {
  entries: number;
  maxEntries: number;
}

/** The program the ports' links run. */
export interface ProgramStatus {
  id: number;
  name: string;
  /** Instructions the verifier processed when it accepted the program on this kernel. */
  verifiedInsns: number;
}

export interface Status {
  pinDir: string;
  loaded: boolean;
  mode?: BaeMode;
  ports: PortStatus[];
  program?: ProgramStatus;
  maps: { conversations?: MapFill; tcpFlows?: MapFill };
  counters?: Stats;
}

function ifindexOrZero(name: string): number {
  try {
    return resolveIfindex(name);
  } catch {
    return 0;
  }
}

function countEntries(m: BpfMap): number {
  let n = 0;
  for (const _ of m.keys()) n++;
  return n;
}

/** Opens a pinned map of a loaded bae; NotLoadedError when bae is not loaded at pinDir. */
export function openLoadedMap(name: string, pinDir: string = DEFAULT_PIN_DIR, command = 'this bae command'): BpfMap {
  const dir = checkPinDir(pinDir);
  requireRoot(command);
  const pin = path.join(dir, name);
  if (!fs.existsSync(pin)) {
    throw new NotLoadedError(`bae is not loaded (no ${name} pinned in ${dir}); run \`bae load --iface IF\` first`);
  }
  try {
    return openPinnedMap(pin);
  } catch (err) {
    throw bpfFailure(`opening ${pin}`, err);
  }
}

export function status(opts: { pinDir?: string } = {}): Status {
  const pinDir = checkPinDir(opts.pinDir ?? DEFAULT_PIN_DIR);
  const st: Status = { pinDir, loaded: false, ports: [], maps: {} };
  requireRoot('bae status');
  if (listPins(pinDir).length === 0) return st;
  st.loaded = true;
  const linkDir = path.join(pinDir, LINKS_DIR);
  for (const iface of fs.existsSync(linkDir) ? fs.readdirSync(linkDir).sort() : []) {
    let link: Link | undefined;
    try {
      link = openPinnedLink(path.join(linkDir, iface));
      const info = { id: link.id, progId: link.progId, ifindex: link.ifindex };
      const ifindex = ifindexOrZero(iface);
      const xdp = ifindex ? xdpStateOf(ifindex) : { progId: 0, mode: 'none' as const };
      st.ports.push({
        iface,
        ifindex,
        linkId: info.id,
        progId: info.progId,
        attached: info.ifindex !== 0 && info.ifindex === ifindex && xdp.progId === info.progId,
        xdpMode: xdp.progId === info.progId ? xdp.mode : 'none',
      });
    } catch (err) {
      throw bpfFailure(`reading the link pinned for ${iface}`, err);
    } finally {
      link?.close();
    }
  }
  const progId = st.ports.find((p) => p.progId !== 0)?.progId;
  if (progId !== undefined) {
    let program: Program | undefined;
    try {
      program = openProgramById(progId);
      st.program = { id: program.id, name: program.name, verifiedInsns: program.verifiedInsns };
    } catch (err) {
      // ENOENT: the program went away with its last link between the two reads.
      if ((err as BpfError).code !== 'ENOENT') throw bpfFailure(`reading program ${progId}`, err);
    } finally {
      program?.close();
    }
  }
  const maps: [keyof Status['maps'], string][] = [
    ['conversations', MAPS.convs],
    ['tcpFlows', MAPS.tcpFlows],
  ];
  for (const [key, name] of maps) {
    if (!fs.existsSync(path.join(pinDir, name))) continue;
    const m = openLoadedMap(name, pinDir, 'bae status');
    try {
      st.maps[key] = { entries: countEntries(m), maxEntries: m.maxEntries };
    } finally {
      m.close();
    }
  }
  if (fs.existsSync(path.join(pinDir, MAPS.ports))) {
    const ports = openLoadedMap(MAPS.ports, pinDir, 'bae status');
    try {
      st.mode = countEntries(ports) > 0 ? 'inline' : 'ingress';
    } finally {
      ports.close();
    }
  }
  if (fs.existsSync(path.join(pinDir, MAPS.stats))) {
    const stats = openLoadedMap(MAPS.stats, pinDir, 'bae status');
    try {
      const perCpu = stats.lookupPerCpu(u32(0));
      if (perCpu) st.counters = sumStatsPerCpu(perCpu);
    } finally {
      stats.close();
    }
  }
  return st;
}
