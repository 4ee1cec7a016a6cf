// Scenarios: recorded traffic, policies and seeds, replayed through the same policies so that an
// experiment is repeated and its decisions compared (docs/scenarios.md).
export { compareDecisions, replayFrames } from './replay';
export type { Decision, DecisionDifference, ReplayFrame, ReplayOptions, ReplayResult } from './replay';
