// The native addon's surface, typed by hand. Every argument reaching these functions has been
// checked by the TypeScript wrappers (collection.ts, map.ts, program.ts, link.ts, ringbuf.ts);
// the addon itself only guards against misuse.
import path from 'node:path';

/** An owned file descriptor; `fd` is -1 once closed. The addon closes it on GC and at exit. */
export interface NativeHandle {
  readonly fd: number;
  close(): void;
}

export interface NativeMapInfo {
  name: string;
  type: string;
  typeId: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export interface NativeProgInfo {
  name: string;
  type: string;
  typeId: number;
  id: number;
  tag: Buffer;
  /** Instructions the verifier processed to accept the program (bpf_prog_info, kernel 5.16+). */
  verifiedInsns: number;
}

export interface NativeLinkInfo {
  id: number;
  progId: number;
  type: string;
  ifindex: number;
}

export interface NativeXdpQuery {
  progId: number;
  attachMode: number;
  drvProgId: number;
  skbProgId: number;
  hwProgId: number;
}

export interface NativeStructLayout {
  name: string;
  size: number;
  members: { name: string; offset: number; size: number; bitOffset?: number; bitSize?: number }[];
}

export interface NativeTestResult {
  verdict: number;
  data: Buffer;
  durationNs: number;
}

export interface NativeBpfObject {
  programs(): { name: string; section: string; handle: NativeHandle }[];
  maps(): { name: string; internal: boolean; handle: NativeHandle }[];
  structLayout(name: string): NativeStructLayout | undefined;
  close(): void;
}

export interface NativeRingBuffer {
  consume(): number;
  close(): void;
  ref(): void;
  unref(): void;
}

/** Errors thrown by the addon for a failed system call: errno is positive. */
export interface NativeErrnoError extends Error {
  errno: number;
  op: string;
  detail?: string;
  count?: number;
  verifierLog?: string;
  libbpfLog?: string;
}

export interface NativeAddon {
  libbpfVersion(): string;
  BpfObject: new (
    path: string,
    pinDir: string | null,
    reusePinned: boolean,
    maxEntries: [string, number][],
    constants: [string, bigint][],
  ) => NativeBpfObject;
  numPossibleCpus(): number;
  ensureBpffs(dir: string): boolean;
  isBpffs(path: string): boolean;

  mapInfo(fd: number): NativeMapInfo;
  mapLookup(fd: number, key: Buffer, valueLen: number): Buffer | undefined;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags: number): void;
  mapDelete(fd: number, key: Buffer): boolean;
  mapNextKey(fd: number, key: Buffer | null, keySize: number): Buffer | undefined;
  mapLookupBatch(
    fd: number,
    inBatch: Buffer | null,
    keySize: number,
    valueLen: number,
    count: number,
    andDelete: boolean,
  ): { count: number; keys: Buffer; values: Buffer; outBatch: Buffer; done: boolean };
  mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, flags: number): number;
  mapDeleteBatch(fd: number, keys: Buffer, count: number): number;
  objPin(fd: number, path: string): void;
  objGet(path: string): NativeHandle;
  mapGetById(id: number): NativeHandle;
  /** Resolves after an RCU grace period (a map-in-map update; see addon/map.cc). */
  rcuGracePeriod(): Promise<void>;

  progInfo(fd: number): NativeProgInfo;
  progInfoById(id: number): NativeProgInfo | undefined;
  progGetById(id: number): NativeHandle;
  progTestRun(
    fd: number,
    data: Buffer,
    repeat: number,
    ctxIn: [number, number] | null,
    dataSizeOut: number,
    flags: number,
  ): NativeTestResult;
  progTestRunAsync(
    fd: number,
    data: Buffer,
    repeat: number,
    ctxIn: [number, number] | null,
    dataSizeOut: number,
    flags: number,
  ): Promise<NativeTestResult>;

  xdpLinkCreate(progFd: number, ifindex: number, xdpFlags: number): NativeHandle;
  linkDetach(fd: number): void;
  linkInfo(fd: number): NativeLinkInfo;
  linkGetById(id: number): NativeHandle;
  xdpLinkIds(ifindex: number, progId: number): number[];
  xdpQuery(ifindex: number): NativeXdpQuery;
  xdpDetach(ifindex: number, xdpFlags: number): void;
  xdpAttachLegacy(ifindex: number, progFd: number, xdpFlags: number): void;
  ifNameToIndex(name: string): number;
  ifIndexToName(ifindex: number): string | undefined;

  RingBuffer: new (mapFd: number, onRecords: (records: Buffer[]) => void) => NativeRingBuffer;

  // Feature probes (addon/features.cc); errno values are positive, 0 is success.
  /** result: 1 supported, 0 not, negative errno when the probe failed; name: libbpf's name of typeId. */
  probeMapType(typeId: number): { result: number; name: string | undefined };
  /** 1 usable from progTypeId programs, 0 not, negative errno when the probe failed. */
  probeHelper(progTypeId: number, helperId: number): number;
  /** 0 when the kernel creates such a map (closed at once), its errno otherwise. */
  probeMapCreate(typeId: number, keySize: number, valueSize: number, maxEntries: number, flags: number): number;
  /** 0 when BPF_PROG_TEST_RUN takes BPF_F_TEST_XDP_LIVE_FRAMES (a dropped frame), its errno otherwise. */
  probeXdpLiveFrames(): number;
  /** socket(AF_XDP)'s errno, and setsockopt(XDP_MAX_TX_SKB_BUDGET)'s on that socket without rings. */
  probeXsk(): { socket: number; txBudget: number };
  /** Binds an AF_XDP socket of its own to the queue in copy mode and closes it; the step that failed. */
  xskBindProbe(ifindex: number, queueId: number): { errno: number; step: string };
}

// dist/src/datapath/native.js -> <repo>/addon/build/Release/bae.node; BAE_ADDON overrides.
const addonPath = process.env.BAE_ADDON ?? path.resolve(__dirname, '../../../addon/build/Release/bae.node');

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: NativeAddon = require(addonPath) as NativeAddon;
