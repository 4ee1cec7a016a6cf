// The policy area: policy files -> validated Policy objects -> compiled map entries -> applied
// atomically to a loaded bae; counters, windows and blocklist read back; and the reference model.
export { PolicyError } from './errors';
export type { PolicyErrorWhere } from './errors';
export type { Policy, PolicyMatch, PolicyTrigger, PolicyAction, PortRange, TcpFlagMatch, TriggerScope, TriggerOp, SourcePosition } from './model';
export { MAX_CANDIDATES, WINDOW_BUCKETS, SCOPE_IDS } from './model';
export { API_VERSION, LIMITS, parsePolicyText, parsePolicyValues, parsePolicyFiles, expandPolicyPaths, checkUniqueNames } from './parse';
export { parseDuration, formatDuration, policySpec } from './spec';
export { ACTIONS, ACTION_BY_KIND, INJECT_ACTION_KINDS, INJECT_ACTION_LIMITS, INJECT_BIT } from './actions';
export type { ActionDef, ParamSpec } from './actions';
export { METRICS, METRIC_BY_NAME, metricContribution, metricReversed } from './metrics';
export type { MetricInfo, PacketFacts } from './metrics';
// Addresses themselves (parseAddress, formatAddress, IpVersion) are the datapath's: src/datapath.
export { parsePrefix, formatPrefix, prefixContains, prefixContainsAddress } from './net';
export type { Prefix } from './net';
export { comparePolicies, orderPolicies, specificity } from './order';
export { compilePolicies, summarize, DEFAULT_LIMITS } from './compile';
export type { CompileOptions, PolicyLimits } from './compile';
export type { CompiledSet, CompiledRule, CompiledCombo, CompiledPrefix, ComboTable } from './compiled-set';
export { assignDelayClasses } from './delay';
export type { DelayClass } from './delay';
export { applyCompiled, readCtl, setDigests, GRACE_NS, POLICY_TABLE_MAPS } from './apply';
export type { ApplyOptions, ApplyResult } from './apply';
export { policyMapsOf } from './maps';
export type { PolicyMaps, PolicyMapName } from './maps';
export { readCounters, readTriggers, readBlocklist, readOffences, readPolicyStats, readActStates } from './state';
export { blockPrefix, unblockPrefix, listBlockedPrefixes, protectPrefix, unprotectPrefix, setProtectedPrefixes, listProtectedPrefixes, protectedPrefixOf } from './prefix-blocks';
export type { BlockedPrefix } from './prefix-blocks';
// The reference model of the in-kernel emulation actions (bpf/actions.h), not the delay line.
export { compileEmul, ruleSeed, percentToProb, parseFrame, modifyFrame, nextRandom, freshState, lossDecide, rateTake, EMUL_BITS, PROB_ONE } from './actions-model';
export type { EmulState, FrameInfo } from './actions-model';
export { ReferenceModel } from './reference';
export type { RefPacket, RefDecision, RefEvent, RefEventKind, RefCounters, ReferenceOptions } from './reference';
export { applyPolicyFiles, deletePolicies, policyStatuses, openPolicyMaps, compileForApply, storedNames } from './service';
export type { ApplyOutcome, DelayLineStep, PolicyStatus, LoadedPolicyMaps, WriteOptions } from './service';
export { loadStoredSet, saveStoredSet, removeStoredSet, stateFile, policiesFromStored, withApplyLock } from './store';
export type { StoredPolicy, StoredSet } from './store';
export { canonicalJson, fnv1a32, policyId } from './stable-id';
export { Blocklist, MAX_BLOCK_TTL_NS, monotonicNs, parseBlockTarget } from './blocks';
export { escalatedTtl, offencesInMemory, recordOffence, blockEscalation, ESCALATE_DEFAULT_FORGET_NS, ESCALATE_DEFAULT_MAX_NS, ESCALATE_FACTOR_MAX, ESCALATE_FACTOR_MIN } from './escalate';
export type { Escalation } from './escalate';
export type { BlockEntry, BlockTarget } from './blocks';
export { EVENT_KINDS, viewEvent } from './events';
export type { PolicyEventView } from './events';
