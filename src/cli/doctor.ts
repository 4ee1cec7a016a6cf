// `bae doctor`: what this machine gives bae, what degrades and why, and whether bae.o passes
// this kernel's verifier. One line per check; exit code 0 when everything bae needs works
// (degraded is fine), 1 otherwise.
import { Command } from 'commander';
import { EXIT } from '../errors';
import { toJson } from '../json';
import {
  DEFAULT_OBJECT,
  VERIFIER_BUDGET,
  VERIFIER_LIMIT,
  checkIfaceName,
  checkInterface,
  checkObject,
  probeFeatures,
  type FeatureCheck,
  type KernelVersion,
  type ProgramVerification,
} from '../datapath';

export interface DoctorReport {
  /** Everything bae needs works (degraded checks are fine). */
  ok: boolean;
  kernel: KernelVersion | null;
  /** Kernel features were probed (root), not inferred from the kernel version. */
  probed: boolean;
  object: string;
  verifier: { budget: number; limit: number };
  checks: FeatureCheck[];
  /** bae.o's programs per mode with their verified instructions; empty when it did not load. */
  programs: ProgramVerification[];
}

export function doctor(opts: { iface?: string; object?: string } = {}): DoctorReport {
  const features = probeFeatures();
  const privileged = features.checks.find((c) => c.name === 'privileges')?.ok === true;
  const release = features.kernel?.release ?? 'unknown';
  // The interface is looked up first: a wrong name is an error before any output.
  const iface = opts.iface === undefined ? [] : checkInterface(opts.iface, { privileged });
  const object = opts.object ?? DEFAULT_OBJECT;
  const loaded = checkObject(object, { release, privileged });
  const checks = [...features.checks, ...iface, ...loaded.checks];
  return {
    ok: checks.every((c) => c.ok),
    kernel: features.kernel ?? null,
    probed: features.probed,
    object,
    verifier: { budget: VERIFIER_BUDGET, limit: VERIFIER_LIMIT },
    checks,
    programs: loaded.programs,
  };
}

function label(c: FeatureCheck): string {
  if (!c.ok) return 'FAIL';
  if (c.skipped) return 'skip';
  return c.degraded ? 'degraded' : 'ok';
}

export function renderDoctor(r: DoctorReport): string {
  const lines = r.checks.map((c) => `${label(c).padEnd(8)}  ${c.name}: ${c.detail}`);
  const failed = r.checks.filter((c) => !c.ok).map((c) => c.name);
  const degraded = r.checks.filter((c) => c.ok && c.degraded).length;
  lines.push(
    failed.length === 0
      ? `bae can run here${degraded ? ` (${degraded} degraded)` : ''}`
      : `bae cannot run here: ${failed.length} check${failed.length === 1 ? '' : 's'} failed (${failed.join(', ')})`,
  );
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check what this machine and kernel give bae, what degrades and why, and whether bae.o passes the verifier')
    .option('--iface <name>', 'also check that native XDP attaches and an AF_XDP socket binds on this interface', checkIfaceName)
    .option('--json', 'print the report as JSON (for scripts)')
    .addHelpText(
      'after',
      `
Checks root and capabilities, bpffs, the kernel's BTF, the kernel version (6.1 or newer) and every
kernel feature bae uses, probed where libbpf or one throwaway call can ask the kernel and read from
the version otherwise. With --iface, it attaches a do-nothing XDP program in native mode and
detaches it at once (an interface that already carries an XDP program is left alone), and binds an
AF_XDP socket to queue 0 and closes it. Last it loads build/bpf/bae.o (BAE_OBJECT overrides) in
each mode without attaching it and prints each program's verified instructions against bae's
budget of 250,000 and the kernel's limit of 1,000,000. Each line is ok, degraded (bae works with
less: the line says what), skip or FAIL. Exit code 0 when bae can run here, 1 otherwise.

Examples:
  sudo bae doctor
  sudo bae doctor --iface eth1
  sudo bae doctor --json | jq '.checks[] | select(.ok == false or .degraded)'
  sudo bae lab exec bae -- bae doctor --iface to-client`,
    )
    .action((opts: { iface?: string; json?: boolean }) => {
      const report = doctor(opts.iface === undefined ? {} : { iface: opts.iface });
      process.stdout.write(opts.json ? toJson(report, 2) + '\n' : renderDoctor(report) + '\n');
      // The report is the answer either way; "cannot run here" is its verdict, not an error of
      // the command, so it sets the exit code itself (EXIT.failure) rather than throwing.
      if (!report.ok) process.exitCode = EXIT.failure;
    });
}
