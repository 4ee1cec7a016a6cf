// The checks of `bae doctor` that do something for a moment and undo it before they return:
// attach a do-nothing XDP program to an interface and detach it, bind an AF_XDP socket to it and
// close it, load bae.o into the kernel (nothing attached, nothing pinned) and close it. The checks
// that only look are in features.ts.
import fs from 'node:fs';
import path from 'node:path';
import { loadCollection, type Collection } from './collection';
import { BpfError, VerifierError, errnoName, lastMeaningful } from './errors';
import type { FeatureCheck } from './features';
import { CONSTANTS, Mode } from './layout';
import { attachXdp, xdpQuery, type Link, type XdpMode } from './link';
import { ifindexOf } from './loader';
import { native } from './native';
import type { Program } from './program';
import { VERIFIER_BUDGET, VERIFIER_LIMIT } from './verifier-cost';

/** The do-nothing program attached for a moment by checkInterface (dist/src/datapath -> <repo>). */
export const XDP_PASS_OBJECT = path.resolve(__dirname, '../../../build/bpf/test/xdp_pass.o');
const XDP_PASS_PROGRAM = 'xdp_pass';
/** The queue the delay line binds its sockets to (addon/delay_line/xsk.cc). */
const XSK_QUEUE = 0;

const fmt = (n: number): string => n.toLocaleString('en-US');
const EBUSY = 16;

function reason(err: unknown): string {
  if (err instanceof BpfError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

// ---- an interface ------------------------------------------------------------------------------

/** Attaches `program` in `mode` and detaches it at once; the failure's reason, or undefined. */
function attachOnce(program: Program, ifindex: number, mode: XdpMode): string | undefined {
  let link: Link | undefined;
  try {
    link = attachXdp({ program, iface: ifindex, mode });
    return undefined;
  } catch (err) {
    return reason(err);
  } finally {
    link?.close(); // an unpinned link detaches when closed
  }
}

function xdpCheck(iface: string, ifindex: number, passObject: string): FeatureCheck {
  const name = `${iface}: native XDP`;
  const current = xdpQuery(ifindex);
  if (current.progId !== undefined) {
    const what = `XDP program ${current.progName ? `'${current.progName}' ` : ''}(id ${current.progId}, ${current.mode ?? 'unknown'} mode)`;
    return current.mode === 'native'
      ? { name, ok: true, detail: `works: ${iface} carries ${what}; not touched` }
      : { name, ok: true, skipped: true, detail: `not tested: ${iface} already carries ${what}, which doctor leaves alone` };
  }
  let coll: Collection | undefined;
  try {
    coll = loadCollection(passObject);
    const program = coll.program(XDP_PASS_PROGRAM);
    const native = attachOnce(program, ifindex, 'native');
    const generic = native === undefined ? undefined : attachOnce(program, ifindex, 'generic');
    // A guard: whatever happened above, nothing of ours may stay on the interface.
    if (xdpQuery(ifindex).progId === program.id) {
      return { name, ok: false, detail: `${XDP_PASS_PROGRAM} (id ${program.id}) is still attached to ${iface}: detach it with \`ip link set dev ${iface} xdp off\`` };
    }
    if (native === undefined) return { name, ok: true, detail: `attaches (${XDP_PASS_PROGRAM} attached in native mode and detached again)` };
    if (generic === undefined) {
      return { name, ok: true, degraded: true, detail: `refused (${native}); generic mode attaches: \`bae load --mode generic\` works here, slower` };
    }
    return { name, ok: false, detail: `refused in native mode (${native}) and in generic mode (${generic})` };
  } catch (err) {
    return { name, ok: false, detail: `could not be tested: ${reason(err)}` };
  } finally {
    coll?.close();
  }
}

function afXdpCheck(iface: string, ifindex: number): FeatureCheck {
  const name = `${iface}: AF_XDP`;
  const r = native.xskBindProbe(ifindex, XSK_QUEUE);
  if (r.errno === 0) return { name, ok: true, detail: `a socket binds to queue ${XSK_QUEUE} in copy mode, as the delay line's do (closed again)` };
  if (r.errno === EBUSY && r.step === 'xsk_bind') {
    return { name, ok: true, skipped: true, detail: `not tested: queue ${XSK_QUEUE} already has an AF_XDP socket (a running \`bae agent\`?)` };
  }
  return {
    name,
    ok: true,
    degraded: true,
    detail: `a socket cannot bind to queue ${XSK_QUEUE} (${r.step}: ${errnoName(r.errno)}): \`bae agent\` cannot hold a delay line on ${iface}`,
  };
}

/**
 * Whether native XDP attaches on `iface` (an interface that already carries a program is left
 * alone) and whether an AF_XDP socket binds to it. NoInterfaceError when there is no such
 * interface in this network namespace; `privileged` false skips both (they need root).
 */
export function checkInterface(iface: string, opts: { privileged: boolean; passObject?: string }): FeatureCheck[] {
  const ifindex = ifindexOf(iface);
  if (!opts.privileged) {
    return [`${iface}: native XDP`, `${iface}: AF_XDP`].map((name) => ({ name, ok: true, skipped: true, detail: 'not tested: needs root' }));
  }
  return [xdpCheck(iface, ifindex, opts.passObject ?? XDP_PASS_OBJECT), afXdpCheck(iface, ifindex)];
}

// ---- bae.o ------------------------------------------------------------------------------------

export interface ProgramVerification {
  program: string;
  /** bae_mode the object was loaded with; '' for an object without that knob. */
  mode: string;
  /** Instructions the verifier processed to accept it (bpf_prog_info.verified_insns). */
  verifiedInsns: number;
}

export interface ObjectCheck {
  checks: FeatureCheck[];
  programs: ProgramVerification[];
}

// bae_mode decides which code the verifier walks: each mode bae loads in is checked.
const MODES: [string, number][] = [
  ['ingress', Mode.ingress],
  ['inline', Mode.inline],
];

/** "the verifier refused program 'bae_xdp' of bae.o on Linux 6.18.44 after 1,000,001 instructions (limit 1,000,000): ..." */
function refusal(err: VerifierError, objectPath: string, release: string, mode: string): string {
  const figure = err.log.map((l) => /^processed (\d+) insns \(limit (\d+)\)/.exec(l)).find((m) => m !== null);
  const after = figure ? ` after ${fmt(Number(figure[1]))} instructions (limit ${fmt(Number(figure[2]))})` : '';
  const program = err.program !== undefined ? `program '${err.program}'` : 'a program';
  const inMode = mode ? ` in ${mode} mode` : '';
  const why = err.log.length > 0 ? lastMeaningful(err.log) : err.message;
  return `the verifier refused ${program} of ${objectPath}${inMode} on Linux ${release}${after}: ${why}`;
}

function isMissingConstant(err: unknown): boolean {
  return err instanceof BpfError && err.code === 'EINVAL' && /no constant named/.test(err.message);
}

function programCheck(name: string, runs: ProgramVerification[]): FeatureCheck {
  const max = Math.max(...runs.map((r) => r.verifiedInsns));
  const each = runs.length > 1 || runs[0]!.mode ? ` (${runs.map((r) => `${r.mode} ${fmt(r.verifiedInsns)}`).join(', ')})` : '';
  const check = { name: `program ${name}` };
  if (max === 0) return { ...check, ok: true, skipped: true, detail: 'accepted; this kernel does not report verified instructions (5.16+)' };
  const share = `${((100 * max) / VERIFIER_BUDGET).toFixed(0)}% of bae's budget of ${fmt(VERIFIER_BUDGET)}`;
  if (max <= VERIFIER_BUDGET) {
    return { ...check, ok: true, detail: `${fmt(max)} instructions verified${each}: ${share}, the kernel's limit is ${fmt(VERIFIER_LIMIT)}` };
  }
  return {
    ...check,
    ok: true,
    degraded: true,
    detail: `${fmt(max)} instructions verified${each}: over bae's budget of ${fmt(VERIFIER_BUDGET)} (the kernel refuses a program at ${fmt(VERIFIER_LIMIT)}): another kernel's verifier may refuse it`,
  };
}

/** Loads the object, reads each program's verified instructions, and closes it again. */
function loadAndClose(objectPath: string, mode: string, constants?: Record<string, number>): ProgramVerification[] {
  const coll = loadCollection(objectPath, constants ? { constants } : {});
  try {
    return [...coll.programs.values()].map((p) => ({ program: p.name, mode, verifiedInsns: p.verifiedInsns }));
  } finally {
    coll.close();
  }
}

/**
 * Loads `objectPath` once per bae_mode (nothing attached, nothing pinned, closed at once) and
 * reports whether the kernel accepts it and each program's verified instructions against bae's
 * budget and the kernel's limit. A refusal names the program, the kernel and the verifier's figure.
 */
export function checkObject(objectPath: string, opts: { release: string; privileged: boolean }): ObjectCheck {
  const name = path.basename(objectPath);
  const programs: ProgramVerification[] = [];
  if (!fs.existsSync(objectPath)) {
    return { checks: [{ name, ok: false, detail: `${objectPath} is missing; build it with \`make\`` }], programs };
  }
  if (!opts.privileged) return { checks: [{ name, ok: true, skipped: true, detail: 'not loaded: needs root' }], programs };
  let mode = '';
  try {
    for (const [m, value] of MODES) {
      mode = m;
      try {
        programs.push(...loadAndClose(objectPath, mode, { [CONSTANTS.mode]: value }));
      } catch (err) {
        if (programs.length > 0 || !isMissingConstant(err)) throw err;
        // An object without bae's mode knob (a test fixture) is loaded once, as it is.
        mode = '';
        programs.push(...loadAndClose(objectPath, mode));
        break;
      }
    }
  } catch (err) {
    const inMode = mode ? ` in ${mode} mode` : '';
    const detail = err instanceof VerifierError ? refusal(err, objectPath, opts.release, mode) : `${objectPath} does not load${inMode} on Linux ${opts.release}: ${reason(err)}`;
    return { checks: [{ name, ok: false, detail }], programs: [] };
  }
  const names = [...new Set(programs.map((p) => p.program))];
  const modes = [...new Set(programs.map((p) => p.mode))].filter((m) => m);
  const inModes = modes.length ? ` in ${modes.join(' and ')} mode` : '';
  const checks: FeatureCheck[] = [
    { name, ok: true, detail: `${objectPath} loads on Linux ${opts.release}${inModes} (${names.length} program${names.length === 1 ? '' : 's'}; unloaded again)` },
    ...names.map((n) => programCheck(n, programs.filter((p) => p.program === n))),
  ];
  return { checks, programs };
}
