// Codecs of the policy stage's maps (bpf/policy.h, the policy section of bpf/bae.h), owned by
// the policy engine (src/policy/): built, like layout.ts, on the kernel ABI generated from the
// BTF of build/bpf/bae.o (abi.gen.ts), so no struct layout or enum value is restated here.
import { ENUMS } from './abi.gen';
import { LAYOUTS, checkSize, off, u64s, type AddressFamily } from './layout';
import { decodePolicyEscalate, writePolicyEscalate, type PolicyEscalate } from './block-layout';
import { writeU16, writeU32, writeU64 } from './words';

/** Map names of the policy stage (bpf/policy.h). */
export const POLICY_MAPS = {
  ctl: 'policy_ctl',
  prefixes: 'policy_prefixes',
  src: 'policy_src',
  dst: 'policy_dst',
  ports: 'policy_ports',
  v4: 'policy_v4',
  combos: 'policy_combos',
  rules: 'policy_rules',
  triggers: 'policy_triggers',
  counters: 'policy_counters',
  counterBase: 'policy_counter_base',
  blocklist: 'policy_blocklist',
  blockUsed: 'policy_block_used',
  blockPrefixes: 'policy_block_prefixes',
  protected: 'policy_protected',
  offences: 'policy_offences',
  stats: 'policy_stats',
  events: 'policy_events',
  actStates: 'policy_act_states',
} as const;

const PB = ENUMS.policy_bounds;
/** Bounds of bae.h's policy section (POLICY_*). */
export const POLICY = {
  maxRules: PB.POLICY_MAX_RULES,
  maxPrefixes: PB.POLICY_MAX_PREFIXES,
  maxCombos: PB.POLICY_MAX_COMBOS,
  maxCandidates: PB.POLICY_MAX_CANDIDATES,
  windowBuckets: PB.POLICY_WINDOW_BUCKETS,
  ports: PB.POLICY_PORTS,
  portsPerEntry: ENUMS.policy_ports_layout.POLICY_PORTS_PER_ENTRY,
  /** POLICY_PORT_USED: the bit on a port class that some combination has. */
  portUsed: ENUMS.policy_ports_layout.POLICY_PORT_USED,
  protoOther: PB.POLICY_PROTO_OTHER,
  /** enum policy_table: src, dst, ports, combos, rules. */
  tables: ENUMS.policy_table.POLICY_TABLES,
  /** POLICY_HASH_LENGTHS: a dimension with at most this many prefix lengths uses hash lookups. */
  hashLengths: ENUMS.policy_lookup_bounds.POLICY_HASH_LENGTHS,
  /** POLICY_V4_REGION: chunks of policy_v4 per (generation, dimension); the first 256 are the /16 level. */
  v4Region: ENUMS.policy_v4_layout.POLICY_V4_REGION,
  /** POLICY_V4_CHUNK: an entry of policy_v4 that names a chunk, not a class. */
  v4Chunk: 2 ** ENUMS.policy_v4_layout.POLICY_V4_CHUNK_BIT,
  /** POLICY_COMBO_WAYS: slots per bucket of the combination table. */
  comboWays: ENUMS.policy_combo_layout.POLICY_COMBO_WAYS,
  /** POLICY_COMBO_SLOTS: slots of one generation's combination table. */
  comboSlots: ENUMS.policy_combo_layout.POLICY_COMBO_SLOTS,
  /** POLICY_CORRUPT_BITS_MAX: bits one corrupt action flips in one packet. */
  corruptBitsMax: PB.POLICY_CORRUPT_BITS_MAX,
  /** POLICY_PROB_ONE: probabilities are fractions of 2^32. */
  probOne: 1n << BigInt(ENUMS.policy_prob.POLICY_PROB_BITS),
} as const;

export const PolicyEventKind = {
  fire: ENUMS.policy_event_kind.POLICY_EVENT_FIRE,
  block: ENUMS.policy_event_kind.POLICY_EVENT_BLOCK,
  match: ENUMS.policy_event_kind.POLICY_EVENT_MATCH,
} as const;

/** enum policy_lookup */
export const PolicyLookup = {
  none: ENUMS.policy_lookup.POLICY_LOOKUP_NONE,
  hash: ENUMS.policy_lookup.POLICY_LOOKUP_HASH,
  trie: ENUMS.policy_lookup.POLICY_LOOKUP_TRIE,
  v4: ENUMS.policy_lookup.POLICY_LOOKUP_V4,
} as const;

export interface PolicyDim {
  mode: number;
  /** Longest first, at most POLICY.hashLengths. */
  lens: number[];
}

export interface PolicyGenInfo {
  rules: number;
  /** Bit 0: some rule names source ports; bit 1: destination ports. */
  portDirs: number;
  /** Bit 0: some combination has source class 0; bit 1: destination class 0. */
  zeroClasses: number;
  /** [source, destination][IPv4, IPv6]. */
  dims: [[PolicyDim, PolicyDim], [PolicyDim, PolicyDim]];
  /** Four 64-bit words: bit p of the protocol bitmap is bit (p % 64) of word p / 64. */
  protoBits: [bigint, bigint, bigint, bigint];
  /** The same layout: proto classes some combination has. */
  comboProtos: [bigint, bigint, bigint, bigint];
  /** The combination table (src/policy/combo-table.ts): buckets - 1, hash seed, epoch of its slots. */
  comboMask: number;
  comboSeed: number;
  comboEpoch: number;
  /** Digest of each table's content for this generation (enum policy_table order), 0n: unknown. */
  digests: bigint[];
}

export interface PolicyCtl {
  gen: number;
  flipNs: bigint;
  g: [PolicyGenInfo, PolicyGenInfo];
}

export function encodePolicyCtl(ctl: PolicyCtl): Buffer {
  const buf = Buffer.alloc(LAYOUTS.policy_ctl!.size);
  buf.writeUInt32LE(ctl.gen, off('policy_ctl', 'gen'));
  buf.writeBigUInt64LE(ctl.flipNs, off('policy_ctl', 'flip_ns'));
  const g0 = off('policy_ctl', 'g');
  const gs = LAYOUTS.policy_gen_info!.size;
  ctl.g.forEach((g, i) => {
    buf.writeUInt32LE(g.rules, g0 + i * gs + off('policy_gen_info', 'rules'));
    buf[g0 + i * gs + off('policy_gen_info', 'port_dirs')] = g.portDirs;
    buf[g0 + i * gs + off('policy_gen_info', 'zero_classes')] = g.zeroClasses;
    g.dims.flat().forEach((d, k) => {
      const at = g0 + i * gs + off('policy_gen_info', 'dims') + k * LAYOUTS.policy_dim!.size;
      if (d.lens.length > POLICY.hashLengths) throw new RangeError(`policy_dim: ${d.lens.length} lengths, at most ${POLICY.hashLengths}`);
      buf[at + off('policy_dim', 'mode')] = d.mode;
      buf[at + off('policy_dim', 'count')] = d.lens.length;
      d.lens.forEach((len, j) => (buf[at + off('policy_dim', 'lens') + j] = len));
    });
    g.protoBits.forEach((w, k) => buf.writeBigUInt64LE(w, g0 + i * gs + off('policy_gen_info', 'proto_bits') + 8 * k));
    g.comboProtos.forEach((w, k) => buf.writeBigUInt64LE(w, g0 + i * gs + off('policy_gen_info', 'combo_protos') + 8 * k));
    buf.writeUInt32LE(g.comboMask, g0 + i * gs + off('policy_gen_info', 'combo_mask'));
    buf.writeUInt32LE(g.comboSeed, g0 + i * gs + off('policy_gen_info', 'combo_seed'));
    buf.writeUInt32LE(g.comboEpoch, g0 + i * gs + off('policy_gen_info', 'combo_epoch'));
    g.digests.forEach((d, k) => buf.writeBigUInt64LE(d, g0 + i * gs + off('policy_gen_info', 'digests') + 8 * k));
  });
  return buf;
}

export function decodePolicyCtl(buf: Buffer): PolicyCtl {
  checkSize('policy_ctl', buf, 0, LAYOUTS.policy_ctl!.size);
  const g0 = off('policy_ctl', 'g');
  const gs = LAYOUTS.policy_gen_info!.size;
  const gen = (i: number): PolicyGenInfo => {
    const at = g0 + i * gs;
    const bits = at + off('policy_gen_info', 'proto_bits');
    const dim = (k: number): PolicyDim => {
      const d = at + off('policy_gen_info', 'dims') + k * LAYOUTS.policy_dim!.size;
      const count = Math.min(buf[d + off('policy_dim', 'count')]!, POLICY.hashLengths);
      return { mode: buf[d + off('policy_dim', 'mode')]!, lens: [...buf.subarray(d + off('policy_dim', 'lens'), d + off('policy_dim', 'lens') + count)] };
    };
    return {
      rules: buf.readUInt32LE(at + off('policy_gen_info', 'rules')),
      portDirs: buf[at + off('policy_gen_info', 'port_dirs')]!,
      zeroClasses: buf[at + off('policy_gen_info', 'zero_classes')]!,
      dims: [
        [dim(0), dim(1)],
        [dim(2), dim(3)],
      ],
      protoBits: [0, 1, 2, 3].map((k) => buf.readBigUInt64LE(bits + 8 * k)) as PolicyGenInfo['protoBits'],
      comboProtos: [0, 1, 2, 3].map((k) => buf.readBigUInt64LE(at + off('policy_gen_info', 'combo_protos') + 8 * k)) as PolicyGenInfo['comboProtos'],
      comboMask: buf.readUInt32LE(at + off('policy_gen_info', 'combo_mask')),
      comboSeed: buf.readUInt32LE(at + off('policy_gen_info', 'combo_seed')),
      comboEpoch: buf.readUInt32LE(at + off('policy_gen_info', 'combo_epoch')),
      digests: Array.from({ length: POLICY.tables }, (_, k) => buf.readBigUInt64LE(at + off('policy_gen_info', 'digests') + 8 * k)),
    };
  };
  return { gen: buf.readUInt32LE(off('policy_ctl', 'gen')), flipNs: buf.readBigUInt64LE(off('policy_ctl', 'flip_ns')), g: [gen(0), gen(1)] };
}

export interface PolicyLpmKey {
  gen: number;
  family: AddressFamily;
  /** 16 bytes, IPv4 in the first 4. */
  addr: Uint8Array;
  /** Address prefix length (0..32 or 0..128), without the 16 bits of gen and family. */
  len: number;
}

export function encodePolicyLpmKey(k: PolicyLpmKey): Buffer {
  const buf = Buffer.alloc(LAYOUTS.policy_lpm_key!.size);
  buf.writeUInt32LE(16 + k.len, off('policy_lpm_key', 'prefixlen'));
  buf[off('policy_lpm_key', 'gen')] = k.gen;
  buf[off('policy_lpm_key', 'family')] = k.family;
  buf.set(k.addr, off('policy_lpm_key', 'addr'));
  return buf;
}

export function decodePolicyLpmKey(buf: Buffer): PolicyLpmKey {
  checkSize('policy_lpm_key', buf, 0, LAYOUTS.policy_lpm_key!.size);
  const a = off('policy_lpm_key', 'addr');
  return {
    gen: buf[off('policy_lpm_key', 'gen')]!,
    family: buf[off('policy_lpm_key', 'family')]! as AddressFamily,
    addr: Uint8Array.from(buf.subarray(a, a + 16)),
    len: buf.readUInt32LE(off('policy_lpm_key', 'prefixlen')) - 16,
  };
}

export interface PolicyPrefixKey {
  gen: number;
  /** 0 source, 1 destination. */
  dim: number;
  family: AddressFamily;
  len: number;
  /** 16 bytes, masked to len bits. */
  addr: Uint8Array;
}

export function encodePolicyPrefixKey(k: PolicyPrefixKey): Buffer {
  const buf = Buffer.alloc(LAYOUTS.policy_prefix_key!.size);
  buf[off('policy_prefix_key', 'gen')] = k.gen;
  buf[off('policy_prefix_key', 'dim')] = k.dim;
  buf[off('policy_prefix_key', 'family')] = k.family;
  buf[off('policy_prefix_key', 'len')] = k.len;
  buf.set(k.addr.subarray(0, 16), off('policy_prefix_key', 'addr'));
  return buf;
}

export function decodePolicyPrefixKey(buf: Buffer): PolicyPrefixKey {
  checkSize('policy_prefix_key', buf, 0, LAYOUTS.policy_prefix_key!.size);
  const a = off('policy_prefix_key', 'addr');
  return {
    gen: buf[off('policy_prefix_key', 'gen')]!,
    dim: buf[off('policy_prefix_key', 'dim')]!,
    family: buf[off('policy_prefix_key', 'family')]! as AddressFamily,
    len: buf[off('policy_prefix_key', 'len')]!,
    addr: Uint8Array.from(buf.subarray(a, a + 16)),
  };
}

export interface PolicyComboKey {
  gen: number;
  proto: number;
  sportClass: number;
  dportClass: number;
  srcClass: number;
  dstClass: number;
}

/** POLICY_COMBO_PLAIN: every candidate of the combination is plain (see bae.h). */
export const POLICY_COMBO_PLAIN = ENUMS.policy_combo_flag.POLICY_COMBO_PLAIN;

let comboSlotAt: { key: number; epoch: number; combo: number; k: Record<'gen' | 'proto' | 'sport_class' | 'dport_class' | 'src_class' | 'dst_class', number>; c: Record<'count' | 'flags' | 'slots', number> } | undefined;

/** Writes struct policy_combo_slot into `buf` at `at` (the bytes there must be zero: padding and unused candidates are not written). */
export function writePolicyComboSlot(buf: Buffer, at: number, key: PolicyComboKey, epoch: number, slots: readonly number[], flags = 0): void {
  if (slots.length > POLICY.maxCandidates) throw new RangeError(`policy_combo: ${slots.length} slots, at most ${POLICY.maxCandidates}`);
  checkSize('policy_combo_slot', buf, at, LAYOUTS.policy_combo_slot!.size);
  const o = (comboSlotAt ??= {
    ...offsetsOf('policy_combo_slot', ['key', 'epoch', 'combo'] as const),
    k: offsetsOf('policy_combo_key', ['gen', 'proto', 'sport_class', 'dport_class', 'src_class', 'dst_class'] as const),
    c: offsetsOf('policy_combo', ['count', 'flags', 'slots'] as const),
  });
  const k = at + o.key;
  buf[k + o.k.gen] = key.gen;
  buf[k + o.k.proto] = key.proto;
  writeU16(buf, k + o.k.sport_class, key.sportClass);
  writeU16(buf, k + o.k.dport_class, key.dportClass);
  writeU32(buf, k + o.k.src_class, key.srcClass);
  writeU32(buf, k + o.k.dst_class, key.dstClass);
  writeU32(buf, at + o.epoch, epoch);
  const c = at + o.combo;
  writeU16(buf, c + o.c.count, slots.length);
  writeU16(buf, c + o.c.flags, flags);
  for (let i = 0; i < slots.length; i++) writeU16(buf, c + o.c.slots + 2 * i, slots[i]!);
}

/** struct policy_emul: parameters of the emulation actions (probabilities in 2^-32 units). */
export interface PolicyEmul {
  seed: bigint;
  lossP: bigint;
  lossCorr: bigint;
  lossBad: bigint;
  lossGood: bigint;
  corruptP: bigint;
  rateBps: bigint;
  rateCap: bigint;
  rateFullNs: bigint;
  truncateLen: number;
  lossModel: number;
  corruptBits: number;
  corruptRegion: number;
  corruptFix: number;
  truncateMode: number;
  truncateFix: number;
  tcpSet: number;
  tcpClear: number;
  rateScope: number;
  /** Capture (bpf/capture.h): sample fraction (2^-32 units), its sequence's seed, snaplen, enum capture_flag. */
  captureP: bigint;
  captureSeed: bigint;
  captureSnaplen: number;
  captureFlags: number;
}

const EMUL_U64 = [['seed', 'seed'], ['lossP', 'loss_p'], ['lossCorr', 'loss_corr'], ['lossBad', 'loss_bad'], ['lossGood', 'loss_good'], ['corruptP', 'corrupt_p'], ['rateBps', 'rate_bps'], ['rateCap', 'rate_cap'], ['rateFullNs', 'rate_full_ns'], ['captureP', 'capture_p'], ['captureSeed', 'capture_seed']] as const;
const EMUL_U8 = [['lossModel', 'loss_model'], ['corruptBits', 'corrupt_bits'], ['corruptRegion', 'corrupt_region'], ['corruptFix', 'corrupt_fix'], ['truncateMode', 'truncate_mode'], ['truncateFix', 'truncate_fix'], ['tcpSet', 'tcp_set'], ['tcpClear', 'tcp_clear'], ['rateScope', 'rate_scope'], ['captureFlags', 'capture_flags']] as const;

export function emptyPolicyEmul(): PolicyEmul {
  return { seed: 0n, lossP: 0n, lossCorr: 0n, lossBad: 0n, lossGood: 0n, corruptP: 0n, rateBps: 0n, rateCap: 0n, rateFullNs: 0n, truncateLen: 0, lossModel: 0, corruptBits: 0, corruptRegion: 0, corruptFix: 0, truncateMode: 0, truncateFix: 0, tcpSet: 0, tcpClear: 0, rateScope: 0, captureP: 0n, captureSeed: 0n, captureSnaplen: 0, captureFlags: 0 };
}

/** Byte offsets of a struct's fields, looked up once (encoders of large tables call per entry). */
function offsetsOf<F extends string>(layout: string, fields: readonly F[]): Record<F, number> {
  return Object.fromEntries(fields.map((f) => [f, off(layout, f)])) as Record<F, number>;
}

let emulAt: Record<(typeof EMUL_U64)[number][1] | (typeof EMUL_U8)[number][1] | 'truncate_len' | 'capture_snaplen', number> | undefined;

/** Writes struct policy_emul into `buf` at `at` (the bytes there must be zero). */
function writePolicyEmul(buf: Buffer, at: number, e: PolicyEmul): void {
  const o = (emulAt ??= offsetsOf('policy_emul', [...EMUL_U64.map(([, f]) => f), ...EMUL_U8.map(([, f]) => f), 'truncate_len', 'capture_snaplen'] as const));
  // Field by field, not by a loop over names, and a call only for a non-zero field (most rules
  // have no emulation): encoders of 10k rules run mostly as cold code.
  if (e.seed !== 0n) writeU64(buf, at + o.seed, e.seed);
  if (e.lossP !== 0n) writeU64(buf, at + o.loss_p, e.lossP);
  if (e.lossCorr !== 0n) writeU64(buf, at + o.loss_corr, e.lossCorr);
  if (e.lossBad !== 0n) writeU64(buf, at + o.loss_bad, e.lossBad);
  if (e.lossGood !== 0n) writeU64(buf, at + o.loss_good, e.lossGood);
  if (e.corruptP !== 0n) writeU64(buf, at + o.corrupt_p, e.corruptP);
  if (e.rateBps !== 0n) writeU64(buf, at + o.rate_bps, e.rateBps);
  if (e.rateCap !== 0n) writeU64(buf, at + o.rate_cap, e.rateCap);
  if (e.rateFullNs !== 0n) writeU64(buf, at + o.rate_full_ns, e.rateFullNs);
  if (e.captureP !== 0n) writeU64(buf, at + o.capture_p, e.captureP);
  if (e.captureSeed !== 0n) writeU64(buf, at + o.capture_seed, e.captureSeed);
  writeU16(buf, at + o.capture_snaplen, e.captureSnaplen);
  writeU16(buf, at + o.truncate_len, e.truncateLen);
  buf[at + o.loss_model] = e.lossModel;
  buf[at + o.corrupt_bits] = e.corruptBits;
  buf[at + o.corrupt_region] = e.corruptRegion;
  buf[at + o.corrupt_fix] = e.corruptFix;
  buf[at + o.truncate_mode] = e.truncateMode;
  buf[at + o.truncate_fix] = e.truncateFix;
  buf[at + o.tcp_set] = e.tcpSet;
  buf[at + o.tcp_clear] = e.tcpClear;
  buf[at + o.rate_scope] = e.rateScope;
  buf[at + o.capture_flags] = e.captureFlags;
}

export function encodePolicyEmul(e: PolicyEmul): Buffer {
  const buf = Buffer.alloc(LAYOUTS.policy_emul!.size);
  writePolicyEmul(buf, 0, e);
  return buf;
}

export function decodePolicyEmul(buf: Buffer): PolicyEmul {
  const L = 'policy_emul';
  checkSize(L, buf, 0, LAYOUTS.policy_emul!.size);
  const e = emptyPolicyEmul();
  for (const [k, f] of EMUL_U64) e[k] = buf.readBigUInt64LE(off(L, f));
  e.truncateLen = buf.readUInt16LE(off(L, 'truncate_len'));
  e.captureSnaplen = buf.readUInt16LE(off(L, 'capture_snaplen'));
  for (const [k, f] of EMUL_U8) e[k] = buf[off(L, f)]!;
  return e;
}

/** struct policy_act_state (map policy_act_states, keyed by a policy_trigger_key). */
export interface PolicyActState {
  prng: bigint;
  credit: bigint;
  lastNs: bigint;
  lossLast: number;
  geBad: number;
}

export function decodePolicyActState(buf: Buffer): PolicyActState {
  const L = 'policy_act_state';
  checkSize(L, buf, 0, LAYOUTS.policy_act_state!.size);
  return {
    prng: buf.readBigUInt64LE(off(L, 'prng')),
    credit: buf.readBigUInt64LE(off(L, 'credit')),
    lastNs: buf.readBigUInt64LE(off(L, 'last_ns')),
    lossLast: buf[off(L, 'loss_last')]!,
    geBad: buf[off(L, 'ge_bad')]!,
  };
}

/** struct policy_rule: one policy as the kernel holds it (bpf/bae.h). */
export interface PolicyRuleValue {
  id: number;
  actionMask: number;
  /** 0: any interface. */
  ifindex: number;
  /** ACTION_VERDICT_*: what the policy decides when it applies. */
  verdict: number;
  tcpFlagsMask: number;
  tcpFlagsValue: number;
  /** 0: no trigger (the policy applies to every matching packet). */
  metric: number;
  op: number;
  scope: number;
  threshold: bigint;
  bucketNs: bigint;
  /** 0: until the policy is removed. */
  forNs: bigint;
  cooldownNs: bigint;
  blockTtlNs: bigint;
  /** Emulation actions (bpf/actions.h); absent: all zero. */
  emul?: PolicyEmul;
  /** Delay-class actions: the delay line's class, 0 none (absent: 0). */
  delayClass?: number;
  /** enum policy_rule_flag (POLICY_RULE_MONITOR: counts and events only); absent: 0. */
  flags?: number;
  /** Escalation of the block action; absent: none. */
  escalate?: PolicyEscalate;
}

const RULE_FIELDS = ['id', 'action_mask', 'ifindex', 'verdict', 'tcp_flags_mask', 'tcp_flags_value', 'metric', 'op', 'scope', 'delay_class', 'flags', 'threshold', 'bucket_ns', 'for_ns', 'cooldown_ns', 'block_ttl_ns', 'emul', 'escalate'] as const;
let ruleAt: Record<(typeof RULE_FIELDS)[number], number> | undefined;

/** Writes struct policy_rule into `buf` at `at` (the bytes there must be zero: padding is not written). */
export function writePolicyRule(buf: Buffer, at: number, r: PolicyRuleValue): void {
  const o = (ruleAt ??= offsetsOf('policy_rule', RULE_FIELDS));
  checkSize('policy_rule', buf, at, LAYOUTS.policy_rule!.size);
  writeU32(buf, at + o.id, r.id);
  writeU32(buf, at + o.action_mask, r.actionMask);
  writeU32(buf, at + o.ifindex, r.ifindex);
  buf[at + o.verdict] = r.verdict;
  buf[at + o.tcp_flags_mask] = r.tcpFlagsMask;
  buf[at + o.tcp_flags_value] = r.tcpFlagsValue;
  buf[at + o.metric] = r.metric;
  buf[at + o.op] = r.op;
  buf[at + o.scope] = r.scope;
  buf[at + o.delay_class] = r.delayClass ?? 0;
  buf[at + o.flags] = r.flags ?? 0;
  // The bytes are zero already: rules without a trigger or ban leave these 0.
  if (r.threshold !== 0n) writeU64(buf, at + o.threshold, r.threshold);
  if (r.bucketNs !== 0n) writeU64(buf, at + o.bucket_ns, r.bucketNs);
  if (r.forNs !== 0n) writeU64(buf, at + o.for_ns, r.forNs);
  if (r.cooldownNs !== 0n) writeU64(buf, at + o.cooldown_ns, r.cooldownNs);
  if (r.blockTtlNs !== 0n) writeU64(buf, at + o.block_ttl_ns, r.blockTtlNs);
  if (r.emul) writePolicyEmul(buf, at + o.emul, r.emul);
  if (r.escalate) writePolicyEscalate(buf, at + o.escalate, r.escalate);
}

export function encodePolicyRule(r: PolicyRuleValue): Buffer {
  const buf = Buffer.alloc(LAYOUTS.policy_rule!.size);
  writePolicyRule(buf, 0, r);
  return buf;
}

export function decodePolicyRule(buf: Buffer): PolicyRuleValue {
  const L = 'policy_rule';
  checkSize(L, buf, 0, LAYOUTS.policy_rule!.size);
  return {
    id: buf.readUInt32LE(off(L, 'id')),
    actionMask: buf.readUInt32LE(off(L, 'action_mask')),
    ifindex: buf.readUInt32LE(off(L, 'ifindex')),
    verdict: buf[off(L, 'verdict')]!,
    tcpFlagsMask: buf[off(L, 'tcp_flags_mask')]!,
    tcpFlagsValue: buf[off(L, 'tcp_flags_value')]!,
    metric: buf[off(L, 'metric')]!,
    op: buf[off(L, 'op')]!,
    scope: buf[off(L, 'scope')]!,
    delayClass: buf[off(L, 'delay_class')]!,
    flags: buf[off(L, 'flags')]!,
    threshold: buf.readBigUInt64LE(off(L, 'threshold')),
    bucketNs: buf.readBigUInt64LE(off(L, 'bucket_ns')),
    forNs: buf.readBigUInt64LE(off(L, 'for_ns')),
    cooldownNs: buf.readBigUInt64LE(off(L, 'cooldown_ns')),
    blockTtlNs: buf.readBigUInt64LE(off(L, 'block_ttl_ns')),
    emul: decodePolicyEmul(buf.subarray(off(L, 'emul'), off(L, 'emul') + LAYOUTS.policy_emul!.size)),
    escalate: decodePolicyEscalate(buf, off(L, 'escalate')),
  };
}

export interface PolicyTriggerKey {
  id: number;
  scope: number;
  family: number;
  addrA: Buffer;
  addrB: Buffer;
}

export function decodePolicyTriggerKey(buf: Buffer): PolicyTriggerKey {
  const L = 'policy_trigger_key';
  checkSize(L, buf, 0, LAYOUTS.policy_trigger_key!.size);
  const a = off(L, 'addr_a');
  const b = off(L, 'addr_b');
  return {
    id: buf.readUInt32LE(off(L, 'id')),
    scope: buf[off(L, 'scope')]!,
    family: buf[off(L, 'family')]!,
    addrA: Buffer.from(buf.subarray(a, a + 16)),
    addrB: Buffer.from(buf.subarray(b, b + 16)),
  };
}

export interface PolicyTriggerState {
  bucketBase: bigint;
  firedUntil: bigint;
  cooldownUntil: bigint;
  counts: bigint[];
}

export function decodePolicyTrigger(buf: Buffer): PolicyTriggerState {
  const L = 'policy_trigger';
  checkSize(L, buf, 0, LAYOUTS.policy_trigger!.size);
  return {
    bucketBase: buf.readBigUInt64LE(off(L, 'bucket_base')),
    firedUntil: buf.readBigUInt64LE(off(L, 'fired_until')),
    cooldownUntil: buf.readBigUInt64LE(off(L, 'cooldown_until')),
    counts: u64s(buf, off(L, 'counts'), POLICY.windowBuckets),
  };
}

export interface PolicyCountersValue {
  matched: bigint;
  applied: bigint;
  fired: bigint;
  blocks: bigint;
}

export function encodePolicyCounters(c: PolicyCountersValue): Buffer {
  const L = 'policy_counters';
  const buf = Buffer.alloc(LAYOUTS.policy_counters!.size);
  buf.writeBigUInt64LE(c.matched, off(L, 'matched'));
  buf.writeBigUInt64LE(c.applied, off(L, 'applied'));
  buf.writeBigUInt64LE(c.fired, off(L, 'fired'));
  buf.writeBigUInt64LE(c.blocks, off(L, 'blocks'));
  return buf;
}

/** policy_counters as lookupPerCpu returns it (one Buffer per CPU), summed; also one plain value. */
export function sumPolicyCountersPerCpu(values: readonly Buffer[]): PolicyCountersValue {
  const L = 'policy_counters';
  const total: PolicyCountersValue = { matched: 0n, applied: 0n, fired: 0n, blocks: 0n };
  for (const buf of values) {
    checkSize(L, buf, 0, LAYOUTS.policy_counters!.size);
    total.matched += buf.readBigUInt64LE(off(L, 'matched'));
    total.applied += buf.readBigUInt64LE(off(L, 'applied'));
    total.fired += buf.readBigUInt64LE(off(L, 'fired'));
    total.blocks += buf.readBigUInt64LE(off(L, 'blocks'));
  }
  return total;
}

export interface PolicyStatsValue {
  blocklistDrops: bigint;
  eventsLost: bigint;
  triggerFull: bigint;
  actStateFull: bigint;
  /** Blocks of a protected address that were refused. */
  blockRefused: bigint;
  /** Capture records written to the bae_capture ring, and those it had no room for. */
  captured: bigint;
  captureLost: bigint;
}

export function sumPolicyStatsPerCpu(values: readonly Buffer[]): PolicyStatsValue {
  const L = 'policy_stats';
  const total: PolicyStatsValue = { blocklistDrops: 0n, eventsLost: 0n, triggerFull: 0n, actStateFull: 0n, blockRefused: 0n, captured: 0n, captureLost: 0n };
  for (const buf of values) {
    checkSize(L, buf, 0, LAYOUTS.policy_stats!.size);
    total.blocklistDrops += buf.readBigUInt64LE(off(L, 'blocklist_drops'));
    total.eventsLost += buf.readBigUInt64LE(off(L, 'events_lost'));
    total.triggerFull += buf.readBigUInt64LE(off(L, 'trigger_full'));
    total.actStateFull += buf.readBigUInt64LE(off(L, 'act_state_full'));
    total.blockRefused += buf.readBigUInt64LE(off(L, 'block_refused'));
    total.captured += buf.readBigUInt64LE(off(L, 'captured'));
    total.captureLost += buf.readBigUInt64LE(off(L, 'capture_lost'));
  }
  return total;
}

export interface PolicyEventRecord {
  timeNs: bigint;
  value: bigint;
  policyId: number;
  kind: number;
  scope: number;
  family: number;
  addrA: Buffer;
  addrB: Buffer;
}

export function decodePolicyEvent(buf: Buffer): PolicyEventRecord {
  const L = 'policy_event';
  checkSize(L, buf, 0, LAYOUTS.policy_event!.size);
  const a = off(L, 'addr_a');
  const b = off(L, 'addr_b');
  return {
    timeNs: buf.readBigUInt64LE(off(L, 'time_ns')),
    value: buf.readBigUInt64LE(off(L, 'value')),
    policyId: buf.readUInt32LE(off(L, 'policy_id')),
    kind: buf[off(L, 'kind')]!,
    scope: buf[off(L, 'scope')]!,
    family: buf[off(L, 'family')]!,
    addrA: Buffer.from(buf.subarray(a, a + 16)),
    addrB: Buffer.from(buf.subarray(b, b + 16)),
  };
}
// ==== end of the policy engine section ==========================================================

/** policy_rule.flags (enum policy_rule_flag). */
export const POLICY_RULE_MONITOR = ENUMS.policy_rule_flag.POLICY_RULE_MONITOR;
