// The agent area: the daemon that holds the delay line, and its control socket.
export { Agent } from './agent';
export type { AgentOptions, AgentStatus, AgentStopResult } from './agent';
export { agentDelayLineStep, agentRequest, agentSocketPath, configureAgentDelayClasses, loadedInline, prepareDelayLine, AgentError, AgentNotRunningError, NoAgentError } from './client';
export type { AgentRequest, DelayClassConfig } from './client';
export { AgentMetrics } from './metrics';
export type { AgentMetricsOptions, DelayLineCounters } from './metrics';
export { MetricsServer, parseMetricsListen } from './metrics-server';
export type { MetricsListen } from './metrics-server';
export { DetectLoop, DEFAULT_DETECT_INTERVAL_MS, RECENT_ANOMALIES } from './detect';
export type { DetectOptions, DetectStatus } from './detect';
export { BusBridge, DEFAULT_TELEMETRY_MS, DEFAULT_HEARTBEAT_MS } from './bus-bridge';
export type { BusBridgeOptions, BusBridgeState, CommandReply, Heartbeat } from './bus-bridge';
export { ALL_NODES, checkPolicyRequest } from './bus-policy';
export { feedBusMetrics } from './bus-metrics';
export type { PolicyReply, PolicyRequest } from './bus-policy';
export { DEFAULT_SNAPSHOT_MS, StoreBridge } from './store-bridge';
export type { StoreBridgeOptions, StoreBridgeState } from './store-bridge';
