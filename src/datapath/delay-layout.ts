// Codecs of the delay-class actions' maps (bpf/policy.h, the delay section of bpf/bae.h), owned
// by the agent (src/agent/): built on the kernel ABI generated from bae.o's BTF (abi.gen.ts).
import { ENUMS } from './abi.gen';
import { LAYOUTS, checkSize, off } from './layout';

/** Maps of the delay-class actions (bpf/policy.h). */
export const DELAY_MAPS = { xsks: 'bae_xsks', stats: 'policy_delay_stats' } as const;

/** XSKMAP slots per port (bae.h POLICY_DELAY_CLASSES); class 0 is "no delay". */
export const POLICY_DELAY_CLASSES = ENUMS.policy_delay_bounds.POLICY_DELAY_CLASSES;

export interface PolicyDelayStats {
  redirected: bigint;
  noSocket: bigint;
}

export function sumPolicyDelayStatsPerCpu(values: readonly Buffer[]): PolicyDelayStats {
  const L = 'policy_delay_stats';
  const total: PolicyDelayStats = { redirected: 0n, noSocket: 0n };
  for (const buf of values) {
    checkSize(L, buf, 0, LAYOUTS.policy_delay_stats!.size);
    total.redirected += buf.readBigUInt64LE(off(L, 'redirected'));
    total.noSocket += buf.readBigUInt64LE(off(L, 'no_socket'));
  }
  return total;
}
