// Program: one loaded BPF program. test() runs it on a packet through BPF_PROG_TEST_RUN.
import { bpfError, fromNative, nativeCall } from './errors';
import { BpfHandle } from './handle';
import { native, type NativeHandle, type NativeProgInfo, type NativeTestResult } from './native';

export interface TestOptions {
  /** Runs of the program; durationNs is the kernel's mean over them. Default 1. */
  repeat?: number;
  /** The xdp_md the program sees: ingress_ifindex and rx_queue_index. */
  ctxIn?: { ingressIfindex?: number; rxQueueIndex?: number };
  /** Size of the output buffer; default: the packet plus 4 KiB for programs that grow it. */
  dataSizeOut?: number;
  /** BPF_F_TEST_XDP_LIVE_FRAMES: frames really go out (XDP_TX/REDIRECT); needs ctxIn.ingressIfindex. */
  liveFrames?: boolean;
}

export interface TestResult {
  /** The program's return value (XDP_DROP = 1, XDP_PASS = 2, XDP_TX = 3, ...); 0 with liveFrames, where the kernel reports none. */
  verdict: number;
  /** The packet as the program left it (empty with liveFrames). */
  data: Buffer;
  /** Mean nanoseconds per run, as measured by the kernel. */
  durationNs: number;
}

export const XDP_ABORTED = 0;
export const XDP_DROP = 1;
export const XDP_PASS = 2;
export const XDP_TX = 3;
export const XDP_REDIRECT = 4;

const BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1;
const MAX_REPEAT = 0xffffffff;
const GROW_ROOM = 4096;

type TestArgs = [number, Buffer, number, [number, number] | null, number, number];

export class Program extends BpfHandle {
  protected readonly kind = 'program';
  /** libbpf's name of the program type, e.g. 'xdp'. */
  readonly type: string;
  readonly id: number;
  readonly tag: string;
  /** Instructions the verifier processed when it accepted the program (0 on kernels before 5.16). */
  readonly verifiedInsns: number;

  /** @internal Use loadCollection(...).program(name) or openPinnedProgram(path). */
  constructor(handle: NativeHandle, info: NativeProgInfo, name: string = info.name) {
    super(handle, name);
    this.type = info.type;
    this.id = info.id;
    this.tag = info.tag.toString('hex');
    this.verifiedInsns = info.verifiedInsns;
  }

  /** Runs the program once (or `repeat` times) on `packet` in the kernel, synchronously. */
  test(packet: Buffer, opts: TestOptions = {}): TestResult {
    const args = this.#testArgs('test', packet, opts);
    return nativeCall(this.name, () => native.progTestRun(...args));
  }

  /** test() on a libuv worker thread: for large repeat counts. */
  async testAsync(packet: Buffer, opts: TestOptions = {}): Promise<TestResult> {
    const args = this.#testArgs('testAsync', packet, opts);
    let result: NativeTestResult;
    try {
      result = await nativeCall(this.name, () => native.progTestRunAsync(...args));
    } catch (err) {
      throw fromNative(err, this.name);
    }
    return result;
  }

  #testArgs(op: string, packet: unknown, opts: TestOptions): TestArgs {
    const fd = this.openFd(op);
    const bad = (message: string) => bpfError(op, 'EINVAL', message, this.name);
    if (!Buffer.isBuffer(packet) || packet.length === 0) throw bad('packet must be a non-empty Buffer');
    if (opts === null || typeof opts !== 'object') throw bad('options must be an object');
    const repeat = opts.repeat ?? 1;
    if (!Number.isInteger(repeat) || repeat < 1 || repeat > MAX_REPEAT) throw bad(`repeat must be an integer from 1 to ${MAX_REPEAT}, got ${repeat}`);
    let ctx: [number, number] | null = null;
    if (opts.ctxIn !== undefined) {
      const ifindex = opts.ctxIn.ingressIfindex ?? 0;
      const queue = opts.ctxIn.rxQueueIndex ?? 0;
      if (!isU32(ifindex)) throw bad(`ctxIn.ingressIfindex must be an interface index, got ${ifindex}`);
      if (!isU32(queue)) throw bad(`ctxIn.rxQueueIndex must be a queue index, got ${queue}`);
      ctx = [ifindex, queue];
    }
    const live = opts.liveFrames ?? false;
    if (typeof live !== 'boolean') throw bad('liveFrames must be a boolean');
    if (live && (ctx === null || ctx[0] === 0)) throw bad('liveFrames needs ctxIn.ingressIfindex of a real device');
    const sizeOut = opts.dataSizeOut ?? packet.length + GROW_ROOM;
    if (!Number.isInteger(sizeOut) || sizeOut < 1 || sizeOut > 1 << 24) throw bad(`dataSizeOut must be an integer from 1 to ${1 << 24}, got ${sizeOut}`);
    return [fd, packet, repeat, ctx, sizeOut, live ? BPF_F_TEST_XDP_LIVE_FRAMES : 0];
  }
}

/** Opens a program pinned at `path`. */
export function openPinnedProgram(path: string): Program {
  if (typeof path !== 'string' || path.length === 0) throw bpfError('openPinnedProgram', 'EINVAL', 'path must be a non-empty string');
  const handle = nativeCall(path, () => native.objGet(path));
  try {
    return new Program(handle, nativeCall(path, () => native.progInfo(handle.fd)));
  } catch (err) {
    handle.close();
    throw err;
  }
}

/** Opens the program with this kernel id (e.g. the one an XDP link runs). */
export function openProgramById(id: number): Program {
  if (!isU32(id) || id === 0) throw bpfError('openProgramById', 'EINVAL', `id must be a program id (1 to 2^32-1), got ${String(id)}`);
  const handle = nativeCall(`program ${id}`, () => native.progGetById(id));
  try {
    return new Program(handle, nativeCall(`program ${id}`, () => native.progInfo(handle.fd)));
  } catch (err) {
    handle.close();
    throw err;
  }
}

function isU32(n: unknown): n is number {
  return Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 0xffffffff;
}
