// The policy area: policy files -> validated Policy objects -> compiled map entries -> applied
// atomically to a loaded bae; counters, windows and blocklist read back; and the reference model.
export { PolicyError } from './errors';
export type { PolicyErrorWhere } from './errors';
export type { Policy, PolicyMatch, PolicyTrigger, PolicyAction, PortRange, TcpFlagMatch, TriggerScope, TriggerOp, SourcePosition } from './model';
export { MAX_CANDIDATES, WINDOW_BUCKETS, SCOPE_IDS } from './model';
export { API_VERSION, LIMITS, parsePolicyText, parsePolicyValues, parsePolicyFiles, expandPolicyPaths, checkUniqueNames, parseDuration, formatDuration, policySpec } from './parse';
export { ACTIONS, ACTION_BY_KIND } from './actions';
export type { ActionDef, ParamSpec } from './actions';
export { METRICS, METRIC_BY_NAME, metricContribution } from './metrics';
export type { MetricInfo, PacketFacts } from './metrics';
export { parsePrefix, parseAddress, formatPrefix, formatAddress, prefixContains, prefixContainsAddress } from './net';
export type { Prefix, Family } from './net';
export { comparePolicies, orderPolicies, specificity } from './order';
export { compilePolicies, summarize, DEFAULT_LIMITS } from './compile';
export type { CompiledSet, CompiledRule, CompiledCombo, CompiledPrefix, CompileOptions, PolicyLimits } from './compile';
export { applyCompiled, policyMapsOf, readCtl, setDigests, GRACE_NS, POLICY_TABLE_MAPS } from './apply';
export type { PolicyMaps, PolicyMapName, ApplyOptions, ApplyResult } from './apply';
export { readCounters, readTriggers, readBlocklist, readPolicyStats, readActStates } from './state';
export { compileEmul, ruleSeed, percentToProb, parseFrame, modifyFrame, nextRandom, freshState, lossDecide, rateTake, EMUL_BITS, PROB_ONE } from './emulation';
export type { EmulState, FrameInfo } from './emulation';
export { ReferenceModel } from './reference';
export type { RefPacket, RefDecision, RefEvent, RefEventKind, RefCounters, ReferenceOptions } from './reference';
export { applyPolicyFiles, deletePolicies, policyStatuses, openPolicyMaps, compileForApply, storedNames } from './service';
export type { ApplyOutcome, PolicyStatus, LoadedPolicyMaps } from './service';
export { loadStoredSet, saveStoredSet, removeStoredSet, stateFile, policiesFromStored, withApplyLock } from './store';
export type { StoredPolicy, StoredSet } from './store';
export { canonicalJson, fnv1a32, policyId } from './stable-id';
