// The datapath area: typed wrapper of the native addon (objects, maps, programs, links, ring
// buffers) and, appended by their owners, the datapath's own modules.
export { loadCollection, Collection } from './collection';
export type { LoadOptions, StructLayout, StructMember } from './collection';
export { BpfMap, openPinnedMap, rcuGracePeriod } from './map';
export type { UpdateFlag, BatchResult } from './map';
export { Program, openPinnedProgram, openProgramById, XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT } from './program';
export type { TestOptions, TestResult } from './program';
export { BpfError, VerifierError, errnoName, nativeCall } from './errors';
// The native addon itself, for the one other area that wraps a part of it (emulation's
// DelayLine); everything else of the addon is wrapped here.
export { native } from './native';
// The kernel ABI generated from bae.o's BTF (scripts/gen-abi.mjs): struct layouts and enums.
export { ENUMS, STRUCTS } from './abi.gen';
export type { AbiEnum, AbiField, AbiStruct } from './abi-types';
export { numPossibleCpus, sumPerCpu, splitPerCpu, joinPerCpu, perCpuStride } from './percpu';
export { ensurePinDir } from './pin';
export { attachXdp, attachXdpLegacy, detachXdpLegacy, Link, openPinnedLink, resolveIfindex, xdpQuery } from './link';
export type { AttachXdpOptions, XdpMode, XdpAttachedMode, XdpStatus } from './link';
export { RingBuffer } from './ringbuf';
export type { RecordHandler } from './ringbuf';
// bae's own loader (load/unload/status of bae.o with its pins), as a namespace: loader.load(...),
// and by name for the other areas.
export * as loader from './loader';
export {
  DEFAULT_OBJECT,
  DEFAULT_PIN_DIR,
  MAX_CONVERSATIONS_LIMIT,
  checkIfaceName,
  checkPinDir,
  fillHttpPorts,
  ifindexOf,
  load,
  openLoadedMap,
  status,
  unload,
} from './loader';
export type { LoadedState, Status } from './loader';
// IP addresses: the one parser and formatter (policy prefixes and kernel keys alike).
export { formatAddress, parseAddress, parseIPv4, parseIPv6 } from './address';
export type { IpVersion } from './address';
// Codecs of the values the XDP program shares with user space (what the other areas use of them):
// the datapath's own maps (layout.ts), the policy stage's (policy-layout.ts) and the delay-class
// actions' (delay-layout.ts).
export {
  AF_INET,
  AF_INET6,
  CONSTANTS,
  Clock,
  DEFAULT_HTTP_PORTS,
  IAT_BUCKETS,
  IAT_BUCKET_EDGES_NS,
  LAYOUTS,
  MAPS,
  Mode,
  PARSE_OUTCOMES,
  PROGRAM,
  SIZE_BUCKETS,
  TCP_FLAG_NAMES,
  VERDICT_NAMES,
  addressFamilyOf,
  decodeAddress,
  decodeConvKey,
  decodeHttpPorts,
  encodeAddress,
  encodeHttpPorts,
  mergeConvPerCpu,
  sumStatsPerCpu,
} from './layout';
export type { AddressFamily, ConvDir, Stats } from './layout';
// The TCP flow state (seq/ack/window per direction), for forged segments that fit a live flow.
export { decodeFlowKey, decodeTcpFlow } from './layout';
export type { FlowKey, TcpHalf } from './layout';
export { DELAY_MAPS, POLICY_DELAY_CLASSES, sumPolicyDelayStatsPerCpu } from './delay-layout';
export type { PolicyDelayStats } from './delay-layout';
export { CAPTURE, CAPTURE_MAPS, decodeCaptureRecord } from './capture-layout';
export type { CaptureRecord } from './capture-layout';
export { HOST_LE } from './words';
export {
  POLICY,
  POLICY_COMBO_PLAIN,
  POLICY_MAPS,
  POLICY_RULE_MONITOR,
  PolicyLookup,
  decodePolicyActState,
  decodePolicyCtl,
  decodePolicyEvent,
  decodePolicyLpmKey,
  decodePolicyPrefixKey,
  decodePolicyRule,
  decodePolicyTrigger,
  decodePolicyTriggerKey,
  emptyPolicyEmul,
  encodePolicyCounters,
  encodePolicyCtl,
  encodePolicyLpmKey,
  encodePolicyPrefixKey,
  encodePolicyRule,
  sumPolicyCountersPerCpu,
  sumPolicyStatsPerCpu,
  writePolicyComboSlot,
  writePolicyRule,
} from './policy-layout';
// The blocklist stage's maps (block-layout.ts): addresses, prefixes, protected prefixes.
export { POLICY_BLOCK_FLAGS, decodePolicyBlockKey, decodePolicyBlockLpmKey, encodePolicyBlockKey, encodePolicyBlockLpmKey } from './block-layout';
// Escalation of blocks for repeat offenders: a rule's parameters and an address's history.
export { decodePolicyEscalate, decodePolicyOffence, encodePolicyOffence, writePolicyEscalate } from './block-layout';
export type { PolicyEscalate, PolicyOffence } from './block-layout';
export type {
  PolicyActState,
  PolicyCountersValue,
  PolicyCtl,
  PolicyDim,
  PolicyEmul,
  PolicyEventRecord,
  PolicyRuleValue,
  PolicyStatsValue,
  PolicyTriggerKey,
  PolicyTriggerState,
} from './policy-layout';
// The verifier's limit and bae's budget under it (`bae status`, `bae doctor`).
export { VERIFIER_BUDGET, VERIFIER_LIMIT } from './verifier-cost';
// What this kernel gives bae (probed once per process), and `bae doctor`'s checks that act.
export {
  DELAY_LINE_FEATURES,
  OLDEST_KERNEL,
  KERNEL_FEATURES,
  assessFeatures,
  degradations,
  hostFacts,
  nativeProbes,
  parseKernelRelease,
  probeFeatures,
  requireSupportedKernel,
} from './features';
export type { FeatureCheck, FeatureReport, HostFacts, KernelFeature, KernelLine, KernelProbes, KernelVersion } from './features';
export { XDP_PASS_OBJECT, checkInterface, checkObject } from './doctor';
export type { ObjectCheck, ProgramVerification } from './doctor';
