// Scenarios: recorded traffic, policies and seeds, replayed through the same policies so that an
// experiment is repeated and its decisions compared (docs/scenarios.md).
export { compareDecisions, replayFrames } from './replay';
export type { Decision, DecisionDifference, ReplayFrame, ReplayOptions, ReplayResult } from './replay';
export { policiesFromYaml, policiesToYaml, readKernelSeeds, seedsByName, withSeeds } from './seeds';
export { decisionsFromJson, decisionsToJson, loadScenario, saveBaseline, saveRecording, scenarioFrames } from './scenario-store';
export type { ScenarioData } from './scenario-store';
export { MAX_RECORD_MS, RECORD_POLICY, RECORD_SNAPLEN, recordScenario } from './record';
export type { RecordOptions, RecordResult } from './record';
