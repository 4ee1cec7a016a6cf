// Shared by the policy tests: the bae program under BPF_PROG_TEST_RUN with its policy maps, and
// policies and frames written in a line.
import { Bae } from '../bpf/harness';
import * as crypto from 'node:crypto';
import { applyCompiled, POLICY_TABLE_MAPS, type ApplyResult } from '../../src/policy/apply';
import { policyMapsOf, type PolicyMaps } from '../../src/policy/maps';
import { compilePolicies, type CompileOptions } from '../../src/policy/compile';
import { parsePolicyText } from '../../src/policy/parse';
import type { Policy } from '../../src/policy/model';
import { parseAddress } from '../../src/datapath/address';
import type { RefPacket } from '../../src/policy/reference';
import { buildPacket, type PacketSpec } from '../lib/packets';

export class PolicyBae extends Bae {
  readonly maps: PolicyMaps;
  constructor() {
    super();
    this.maps = policyMapsOf((n) => this.collection.map(n));
  }

  async apply(policies: readonly Policy[], options: CompileOptions = {}, beforeFlip?: () => void): Promise<ApplyResult> {
    return applyCompiled(this.maps, compilePolicies(policies, { requireKernelActions: true, ...options }), {
      // No packet runs concurrently with a test's apply: no grace period to wait for.
      sleep: async () => undefined,
      grace: async () => undefined,
      ...(beforeFlip ? { beforeFlip } : {}),
    });
  }
}

export function policies(yaml: string, file = 'test.yaml'): Policy[] {
  return parsePolicyText(yaml, file);
}

/** One policy document from its spec lines (indented under spec:). */
export function policyYaml(name: string, spec: string): string {
  return `apiVersion: bae/v1\nkind: Policy\nmetadata: { name: ${name} }\nspec:\n${spec
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => '  ' + l)
    .join('\n')}\n`;
}

export function frame(spec: PacketSpec): Buffer {
  return buildPacket(spec).frame;
}

/** The reference model's view of a frame built from `spec` (facts false: tests that use this
 * trigger on packets or bytes only), with its bytes for the emulation actions. */
export function refPacket(spec: PacketSpec, frameBytes: Buffer, timeNs: bigint, ifindex = 1): RefPacket {
  const src = parseAddress(spec.ip.src)!;
  const dst = parseAddress(spec.ip.dst)!;
  const l4 = spec.l4;
  const proto = typeof l4.proto === 'number' ? l4.proto : { tcp: 6, udp: 17, icmp: 1, icmpv6: 58 }[l4.proto];
  const ports = 'sport' in l4 ? { sport: l4.sport, dport: l4.dport } : { sport: 0, dport: 0 };
  return {
    timeNs,
    family: src.family,
    src: src.addr,
    dst: dst.addr,
    ...ports,
    proto,
    tcpFlags: l4.proto === 'tcp' ? (l4.flags ?? 0x10) : 0,
    icmpType: l4.proto === 'icmp' ? (l4.type ?? 8) : l4.proto === 'icmpv6' ? (l4.type ?? 128) : -1,
    length: frameBytes.length,
    ifindex,
    ip: true,
    retransmit: false,
    outOfOrder: false,
    newConversation: false,
    frame: new Uint8Array(frameBytes),
  };
}

/** A digest of every policy table's bytes (hash entries in key order, arrays in index order), to
 * show that a refused apply changed nothing. */
export function digestMaps(maps: PolicyMaps): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of POLICY_TABLE_MAPS) {
    const map = maps[name];
    if (map.type === 'array' || map.type === 'percpu_array') {
      // Index order is the order: the values alone, in one buffer (the combination table is 10 MB).
      out[name] = `${map.maxEntries}:${crypto.createHash('sha256').update(map.arrayValues()).digest('hex')}`;
      continue;
    }
    const { keys, values } = map.lookupBatch();
    const rows = keys.map((k, i) => Buffer.concat([k, values[i]!]));
    rows.sort(Buffer.compare);
    const h = crypto.createHash('sha256');
    for (const r of rows) h.update(r);
    out[name] = `${rows.length}:${h.digest('hex')}`;
  }
  return out;
}
