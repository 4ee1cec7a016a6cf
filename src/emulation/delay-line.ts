// The AF_XDP delay line (docs/emulation.md): frames the XDP program redirects into an XSKMAP are
// held by a native thread and leave on the egress port when due, with netem's delay, jitter,
// correlation, duplicate and reorder. This file checks every argument (bad input: one UsageError
// naming the problem, nothing changed) and converts units; addon/delay_line/ does the work.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { BpfError, POLICY_DELAY_CLASSES, nativeCall as datapathCall } from '../datapath';
import { UsageError } from '../errors';
import { DISTRIBUTION_CODES, isJitterDistribution, JITTER_DISTRIBUTIONS, type JitterDistribution } from './jitter';
import { NativeDelayLine, type NativeDelayLinePort, type NativeDelayLineStats } from './native';

/** Default maxLateMs: a frame this late is shed. Scheduling stalls of 5-25 ms were seen on the
 * shared 2-CPU VM; only a real overload should cost frames. */
export const DEFAULT_MAX_LATE_MS = 100;

/** Delay classes per port (bae.h POLICY_DELAY_CLASSES). XSKMAP key = ingress ifindex * DELAY_CLASSES_MAX + class. */
export const DELAY_CLASSES_MAX = POLICY_DELAY_CLASSES;
/** Ports of one delay line. */
export const DELAY_PORTS_MAX = 16;
/** Longest delay accepted (delay + jitter), ms: frames held longer would only exhaust the UMEM. */
export const DELAY_MAX_MS = 60_000;

/** The XSKMAP slot of (ingress ifindex, class) — what the XDP program passes to bpf_redirect_map. */
export function delayLineKey(ifindex: number, classId: number): number {
  return ifindex * DELAY_CLASSES_MAX + classId;
}

/** Parameters of one delay class; netem's, with probabilities and correlations as 0..1. */
export interface DelayParams {
  /** Mean one-way delay, ms (netem `delay TIME`). */
  delayMs: number;
  /** Jitter, ms (netem `delay TIME JITTER`): half-width for uniform, sigma for the tables. */
  jitterMs: number;
  distribution: JitterDistribution;
  /** Correlation of successive delay draws, 0..1 (netem's blend of the previous random number). */
  correlation: number;
  /** Probability that a frame is also sent as a copy (which gets its own delay). */
  duplicate: number;
  duplicateCorrelation: number;
  /** Probability that a frame skips the delay (netem `reorder`), once `reorderGap` frames were delayed. */
  reorder: number;
  reorderCorrelation: number;
  /** netem `gap`: at least reorderGap - 1 delayed frames between two reordered ones; >= 1. */
  reorderGap: number;
}

export const DEFAULT_DELAY_PARAMS: Readonly<DelayParams> = Object.freeze({
  delayMs: 0,
  jitterMs: 0,
  distribution: 'uniform',
  correlation: 0,
  duplicate: 0,
  duplicateCorrelation: 0,
  reorder: 0,
  reorderCorrelation: 0,
  reorderGap: 1,
});

/**
 * What happens to a frame that arrives while `maxInFlight` frames are held: 'drop' recycles it
 * (netem's queue limit), 'pass' transmits it at once, undelayed. Both count it as `overflow`.
 */
export type OverflowRule = 'drop' | 'pass';

export interface DelayLinePort {
  iface: string;
  /** The port its frames leave on; default: the other port of a pair, itself for one port. */
  egress?: string;
}

export interface DelayLineOptions {
  /** The XSKMAP the XDP program redirects into (a BpfMap of type xskmap). */
  xskMap: { readonly fd: number; readonly type: string; readonly maxEntries: number; readonly name: string };
  /** Two interface names bridge each other (A -> B, B -> A); or explicit ports. */
  ports: readonly string[] | readonly DelayLinePort[];
  /** Delay classes per port, 1..8 (one AF_XDP socket per port and class). Default 1. */
  classes?: number;
  /** UMEM frames shared by all ports. Default 16384 (more when the rings need more). */
  frames?: number;
  /** UMEM frame size, 2048 or 4096. Default 2048 (frames up to 1792 bytes). */
  frameSize?: 2048 | 4096;
  /** Entries of each fill/completion/RX/TX ring, a power of two 64..16384. Default 2048. */
  ringSize?: number;
  /** Frames held at once; default and maximum: frames - ports * 2 * ringSize. */
  maxInFlight?: number;
  overflow?: OverflowRule;
  /** Seed of the decisions: the same seed and frame sequence give the same decisions. Default random. */
  seed?: number | bigint;
  /**
   * Wake up this long before a due time and spin: wake-ups on a busy machine are 20-100 µs late.
   * Default 100 (lateness p99 ~20 µs at 100 kpps); 0 saves CPU and costs precision.
   */
  spinUs?: number;
  /**
   * Run the thread with SCHED_FIFO priority 10, so that a busy machine does not make frames
   * milliseconds late (stats().realtime says whether the kernel allowed it). Default true.
   */
  realtime?: boolean;
  /**
   * A frame that could not leave within this many ms of its due time is dropped (`lateDropped`)
   * instead of sent: when more frames come due than the line can transmit, it sheds the stale
   * ones rather than making every later frame later, and it is back on time as soon as the
   * overload ends. Default 100 (DEFAULT_MAX_LATE_MS): well above the few ms a scheduling hiccup
   * of this VM costs, so only an overload sheds; up to 60000 (never, in practice).
   */
  maxLateMs?: number;
  /** Pin the thread to this CPU (0-based). Default: any CPU, as the scheduler likes. */
  cpu?: number;
  /**
   * The XDP program that feeds the line (attached to the ports) and its two arrays of
   * bpf/delay_tx.h (`dl_tx_slots`, `dl_tx_ctl`). Given these, a step with many due frames sends
   * them as XDP frames through that program (BPF_PROG_RUN, live frames) instead of the AF_XDP
   * socket: 4-5 times cheaper a frame. Needs egress ports that take XDP-redirected frames (a veth
   * whose peer has an XDP program or GRO, a NIC with ndo_xdp_xmit), as any XDP bridge does.
   * Without it, or for frames over 3072 bytes, the sockets transmit.
   */
  transmit?: DelayLineTransmit;
  /** Parameters of class 0, or of each class by index. Default: no delay. */
  params?: Partial<DelayParams> | readonly Partial<DelayParams>[];
  /** XSKMAP key of (ingress ifindex, class); default delayLineKey. */
  key?: (ifindex: number, classId: number) => number;
}

export interface DelayLineTransmit {
  program: { readonly fd: number; readonly type: string; readonly name: string };
  slots: { readonly fd: number; readonly type: string; readonly name: string };
  control: { readonly fd: number; readonly type: string; readonly name: string };
}

/** The names bpf/delay_tx.h gives the transmit arrays. */
export const DELAY_TX_MAPS = { slots: 'dl_tx_slots', control: 'dl_tx_ctl' } as const;

export interface LatenessBucket {
  lowNs: number;
  /** exclusive */
  highNs: number;
  count: number;
}

/** The line's counters (NativeDelayLineStats, documented there), the lateness histogram as buckets. */
export interface DelayLineStats extends Omit<NativeDelayLineStats, 'lateness'> {
  /** transmit time - due time of every transmitted frame (not those sent early by close()) */
  lateness: LatenessBucket[];
}

export interface DelaySamples {
  classes: Uint8Array;
  delaysNs: Float64Array;
}

/** What close() did with the frames the line held. */
export interface DelayLineCloseResult {
  /** held frames transmitted at once, in due order */
  readonly flushed: number;
  /** held frames that could not leave within the flush's 200 ms */
  readonly dropped: number;
}

/** Upper bound of the q-quantile (0..1) of a lateness histogram; undefined when it is empty. */
export function latenessQuantileNs(lateness: readonly LatenessBucket[], q: number): number | undefined {
  const total = lateness.reduce((n, b) => n + b.count, 0);
  if (total === 0) return undefined;
  let seen = 0;
  for (const b of lateness) {
    seen += b.count;
    if (seen >= q * total) return b.highNs;
  }
  return lateness[lateness.length - 1]!.highNs;
}

/** What a lateness histogram gained between two stats() of the same line (empty buckets left out). */
export function latenessSince(before: readonly LatenessBucket[], after: readonly LatenessBucket[]): LatenessBucket[] {
  const earlier = new Map(before.map((b) => [b.lowNs, b.count]));
  return after
    .map((b) => ({ ...b, count: b.count - (earlier.get(b.lowNs) ?? 0) }))
    .filter((b) => b.count > 0);
}

const TWO_32 = 2 ** 32;

function fail(message: string): never {
  throw new UsageError(`delay line: ${message}`);
}

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(`${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

function checkNumber(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    fail(`${name} must be a number from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

function checkSeed(v: unknown): bigint {
  if (typeof v === 'bigint' && v >= 0n && v < 1n << 64n) return v;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  fail(`seed must be an integer from 0 to 2^64-1, got ${String(v)}`);
}

const PARAM_KEYS = new Set(Object.keys(DEFAULT_DELAY_PARAMS));
const OPTION_KEYS = new Set([
  'xskMap', 'ports', 'classes', 'frames', 'frameSize', 'ringSize', 'maxInFlight', 'overflow', 'seed', 'spinUs', 'realtime', 'maxLateMs', 'cpu',
  'transmit', 'params', 'key',
]);

/** Merges `patch` into `base` after checking every field; throws before anything changes. */
export function checkDelayParams(patch: Partial<DelayParams>, base: DelayParams = { ...DEFAULT_DELAY_PARAMS }): DelayParams {
  if (patch === null || typeof patch !== 'object') fail(`params must be an object, got ${String(patch)}`);
  for (const k of Object.keys(patch)) if (!PARAM_KEYS.has(k)) fail(`unknown parameter '${k}'`);
  const p = { ...base, ...patch };
  checkNumber('delayMs', p.delayMs, 0, DELAY_MAX_MS);
  checkNumber('jitterMs', p.jitterMs, 0, DELAY_MAX_MS);
  if (!isJitterDistribution(p.distribution)) {
    fail(`distribution must be one of ${JITTER_DISTRIBUTIONS.join(', ')}, got ${String(p.distribution)}`);
  }
  // The longest draw of any distribution is mu + 4 sigma (netem's table clamp).
  if (p.delayMs + 4 * p.jitterMs > DELAY_MAX_MS) fail(`delayMs + 4 * jitterMs must not exceed ${DELAY_MAX_MS} ms`);
  for (const k of ['correlation', 'duplicate', 'duplicateCorrelation', 'reorder', 'reorderCorrelation'] as const) {
    checkNumber(k, p[k], 0, 1);
  }
  checkInt('reorderGap', p.reorderGap, 1, 0xffffffff);
  return p;
}

/** An addon call whose failure becomes a BpfError; `busy` explains EBUSY/EEXIST, which here mean "taken". */
function nativeCall<T>(object: string, fn: () => T, busy?: string): T {
  try {
    return datapathCall(object, fn);
  } catch (err) {
    if (busy !== undefined && err instanceof BpfError && (err.code === 'EBUSY' || err.code === 'EEXIST')) {
      const reason = err.message.slice(err.message.lastIndexOf(': ') + 2);
      const options: { object?: string; detail: string; cause: unknown } = { detail: `${busy} (${reason})`, cause: err };
      if (err.object !== undefined) options.object = err.object;
      throw new BpfError(err.op, err.errno, err.message, options);
    }
    throw err;
  }
}

/** Every network namespace's loopback device. */
const LOOPBACK_IFINDEX = 1;

function checkTransmit(t: DelayLineTransmit): DelayLineTransmit {
  if (t === null || typeof t !== 'object') fail('transmit must be { program, slots, control }');
  for (const k of Object.keys(t)) if (!['program', 'slots', 'control'].includes(k)) fail(`unknown transmit field '${k}'`);
  const { program, slots, control } = t;
  if (!program || typeof program.fd !== 'number' || program.type !== 'xdp') fail('transmit.program must be an XDP Program');
  if (program.fd < 0) fail(`transmit.program '${program.name}' is closed`);
  for (const [k, m, name] of [['slots', slots, DELAY_TX_MAPS.slots], ['control', control, DELAY_TX_MAPS.control]] as const) {
    if (!m || typeof m.fd !== 'number' || m.type !== 'array') fail(`transmit.${k} must be the array map ${name} of bpf/delay_tx.h`);
    if (m.fd < 0) fail(`transmit.${k} '${m.name}' is closed`);
  }
  return t;
}

const rho = (c: number) => Math.min(TWO_32 - 1, Math.round(c * TWO_32));
const threshold = (p: number) => Math.round(p * TWO_32);

export class DelayLine {
  /** Ports in the order the native side numbers them. */
  readonly ports: readonly { iface: string; ifindex: number; egress: string }[];
  readonly classes: number;
  readonly frames: number;
  readonly maxInFlight: number;
  readonly overflow: OverflowRule;
  #native: InstanceType<typeof NativeDelayLine>;
  #params: DelayParams[];
  #closing: Promise<DelayLineCloseResult> | undefined;

  /** Opens the sockets, inserts them into the XSKMAP and starts the thread. */
  constructor(options: DelayLineOptions) {
    if (options === null || typeof options !== 'object') fail('options must be an object');
    for (const k of Object.keys(options)) if (!OPTION_KEYS.has(k)) fail(`unknown option '${k}'`);
    const { xskMap } = options;
    if (!xskMap || typeof xskMap.fd !== 'number') fail('xskMap must be a BpfMap of type xskmap');
    if (xskMap.type !== 'xskmap') fail(`xskMap must be of type xskmap, '${xskMap.name}' is ${xskMap.type}`);
    if (xskMap.fd < 0) fail(`xskMap '${xskMap.name}' is closed`);

    const classes = checkInt('classes', options.classes ?? 1, 1, DELAY_CLASSES_MAX);
    const frameSize = options.frameSize ?? 2048;
    if (frameSize !== 2048 && frameSize !== 4096) fail(`frameSize must be 2048 or 4096, got ${String(frameSize)}`);
    const ringSize = checkInt('ringSize', options.ringSize ?? 2048, 64, 16384);
    if ((ringSize & (ringSize - 1)) !== 0) fail(`ringSize must be a power of two, got ${ringSize}`);

    const ports = this.#checkPorts(options.ports);
    const reserved = ports.length * 2 * ringSize; // fill and TX rings of every port
    const frames = checkInt('frames', options.frames ?? Math.max(16384, 2 * reserved), reserved + 1, 1 << 18);
    const maxInFlight = checkInt('maxInFlight', options.maxInFlight ?? frames - reserved, 1, frames - reserved);
    const overflow = options.overflow ?? 'drop';
    if (overflow !== 'drop' && overflow !== 'pass') fail(`overflow must be 'drop' or 'pass', got ${String(overflow)}`);
    const spinUs = checkNumber('spinUs', options.spinUs ?? 100, 0, 10_000);
    const realtime = options.realtime ?? true;
    if (typeof realtime !== 'boolean') fail(`realtime must be true or false, got ${String(realtime)}`);
    const maxLateMs = checkNumber('maxLateMs', options.maxLateMs ?? DEFAULT_MAX_LATE_MS, 0.001, DELAY_MAX_MS);
    const cpu = options.cpu === undefined ? -1 : checkInt('cpu', options.cpu, 0, os.cpus().length - 1);
    const seed = options.seed === undefined ? randomBytes(8).readBigUInt64LE() : checkSeed(options.seed);
    const transmit = options.transmit === undefined ? undefined : checkTransmit(options.transmit);

    const given = options.params === undefined ? [] : Array.isArray(options.params) ? options.params : [options.params];
    if (given.length > classes) fail(`params given for ${given.length} classes, but classes is ${classes}`);
    const params = Array.from({ length: classes }, (_, c) => checkDelayParams((given[c] ?? {}) as Partial<DelayParams>));

    const keyOf = options.key ?? delayLineKey;
    const resolved = ports.map((p) => ({ ...p, ifindex: nativeCall(p.iface, () => NativeDelayLine.ifindex(p.iface)) }));
    // The transmit program recognises its own runs by the loopback device as ingress.
    for (const p of resolved) if (p.ifindex === LOOPBACK_IFINDEX) fail(`${p.iface} is the loopback device, which cannot be a port`);
    const seen = new Set<number>();
    const nativePorts: NativeDelayLinePort[] = resolved.map((p) => {
      const keys = Array.from({ length: classes }, (_, c) => {
        const k = keyOf(p.ifindex, c);
        if (!Number.isInteger(k) || k < 0 || k >= xskMap.maxEntries) {
          fail(`XSKMAP key ${k} of ${p.iface} (ifindex ${p.ifindex}) class ${c} is outside '${xskMap.name}' (${xskMap.maxEntries} entries)`);
        }
        if (seen.has(k)) fail(`XSKMAP key ${k} is used twice`);
        seen.add(k);
        return k;
      });
      return { ifname: p.iface, egress: ports.findIndex((q) => q.iface === p.egress), keys };
    });

    this.ports = resolved.map(({ iface, ifindex, egress }) => ({ iface, ifindex, egress }));
    this.classes = classes;
    this.frames = frames;
    this.maxInFlight = maxInFlight;
    this.overflow = overflow;
    this.#params = params;
    const where = ports.map((p) => p.iface).join(',');
    this.#native = nativeCall(
      `delay line on ${where}`,
      () =>
        new NativeDelayLine({
          xskMapFd: xskMap.fd,
          ports: nativePorts,
          classes,
          frames,
          frameSize,
          ringSize,
          maxInFlight,
          overflowPass: overflow === 'pass',
          spinNs: Math.round(spinUs * 1000),
          realtime,
          maxLateNs: Math.round(maxLateMs * 1e6),
          ...(cpu >= 0 ? { cpu } : {}),
          ...(transmit ? { transmit: { programFd: transmit.program.fd, slotsFd: transmit.slots.fd, controlFd: transmit.control.fd } } : {}),
        }),
      'another AF_XDP socket (another delay line?) is bound to queue 0 of this port',
    );
    try {
      this.#native.setSeed(seed);
      params.forEach((p, c) => this.#push(c, p));
      nativeCall(`delay line on ${where}`, () => this.#native.start(), `the XSKMAP slot holds another delay line's socket`);
    } catch (err) {
      // Its sockets are out of the XSKMAP already; the native side releases them off this thread.
      void this.#native.close();
      throw err;
    }
  }

  #checkPorts(ports: DelayLineOptions['ports']): { iface: string; egress: string }[] {
    if (!Array.isArray(ports) || ports.length === 0) fail('ports must be a non-empty array of interface names or { iface, egress }');
    if (ports.length > DELAY_PORTS_MAX) fail(`at most ${DELAY_PORTS_MAX} ports, got ${ports.length}`);
    const list = (ports as readonly (string | DelayLinePort)[]).map((p) => (typeof p === 'string' ? { iface: p } : p));
    for (const p of list) {
      if (!p || typeof p.iface !== 'string' || !/^[^\s/]{1,15}$/.test(p.iface)) fail(`bad interface name ${JSON.stringify(p?.iface)}`);
    }
    const names = list.map((p) => p.iface);
    if (new Set(names).size !== names.length) fail(`a port is listed twice: ${names.join(', ')}`);
    return list.map((p, i) => {
      let egress = p.egress;
      if (egress === undefined) {
        if (list.length > 2) fail(`port ${p.iface} needs an egress: with more than two ports none is implied`);
        egress = list.length === 2 ? list[1 - i]!.iface : p.iface;
      }
      if (!names.includes(egress)) fail(`egress ${egress} of port ${p.iface} is not one of the ports`);
      return { iface: p.iface, egress };
    });
  }

  #push(classId: number, p: DelayParams): void {
    this.#native.setParams(
      classId,
      Math.round(p.delayMs * 1e6),
      Math.round(p.jitterMs * 1e6),
      DISTRIBUTION_CODES[p.distribution],
      rho(p.correlation),
      threshold(p.duplicate),
      rho(p.duplicateCorrelation),
      threshold(p.reorder),
      rho(p.reorderCorrelation),
      p.reorderGap,
    );
  }

  #open(op: string): InstanceType<typeof NativeDelayLine> {
    if (this.#closing !== undefined) throw new UsageError(`delay line: ${op} after close()`);
    return this.#native;
  }

  #checkClass(classId: number): number {
    return checkInt('classId', classId, 0, this.classes - 1);
  }

  /** true from the first close() on, before its promise settles */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** The parameters in force for a class. */
  params(classId = 0): DelayParams {
    return { ...this.#params[this.#checkClass(classId)]! };
  }

  /** Changes some parameters of a class while frames flow; the rest stay as they are. */
  setParams(patch: Partial<DelayParams>, classId = 0): DelayParams {
    this.#open('setParams');
    const c = this.#checkClass(classId);
    const next = checkDelayParams(patch, this.#params[c]);
    this.#push(c, next);
    this.#params[c] = next;
    return { ...next };
  }

  /** Restarts every class's random stream (and correlation and reorder state) from `seed`. */
  setSeed(seed: number | bigint): void {
    const s = checkSeed(seed);
    this.#open('setSeed').setSeed(s);
  }

  stats(): DelayLineStats {
    const s = this.#native.stats();
    return { ...s, lateness: s.lateness.map(([lowNs, highNs, count]) => ({ lowNs, highNs, count })) };
  }

  /** Keeps the delay drawn for each delayed frame from now on, at most `capacity` (0 stops). */
  recordDelays(capacity: number): void {
    this.#open('recordDelays').recordDelays(checkInt('capacity', capacity, 0, 10_000_000));
  }

  /** The delays recorded since recordDelays() or the last takeDelays(), in draw order. */
  takeDelays(): DelaySamples {
    return this.#open('takeDelays').takeDelays();
  }

  /**
   * Stops the line without blocking the event loop. The sockets leave the XSKMAP at once (frames
   * then take the XDP program's fallback); the line's thread then transmits every frame still
   * held, in due order (`flushed`), drops what cannot leave within 200 ms (`dropped`), and frees
   * the sockets and the UMEM; the promise resolves after that, and the ports can take a new line.
   * Every other method but stats() refuses from the call on. Safe twice: every call returns the
   * same promise. A line nobody closed is closed (waiting) when it is collected or when the
   * environment ends.
   */
  close(): Promise<DelayLineCloseResult> {
    this.#closing ??= this.#native.close().then(({ flushed, dropped }) => Object.freeze({ flushed, dropped }));
    return this.#closing;
  }

  /** `await using`: closes and waits for the flush. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close().then(() => undefined);
  }

  /** `using`: starts close() and returns at once (it cannot block); the flush ends later. */
  [Symbol.dispose](): void {
    void this.close();
  }
}
