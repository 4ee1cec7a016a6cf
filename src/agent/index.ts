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
