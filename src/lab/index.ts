// The network-namespace lab: client <-> bae <-> server, for the demo, tests and benchmarks.
export {
  DEFAULT_LAB_PREFIX,
  LAB_NODES,
  checkLabPrefix,
  isLabNode,
  labDown,
  labExecArgv,
  labIsUp,
  labLinuxBridge,
  labStatus,
  labTopology,
  labUp,
  netnsExists,
} from './topology';
export type {
  Lab,
  LabDownResult,
  LabEndpoint,
  LabInterfaceStatus,
  LabNode,
  LabNodeStatus,
  LabStatus,
  LabUpResult,
} from './topology';
export { inNetns, run, tryRun } from './run';
export type { RunResult } from './run';
export { iperf3, ping, runOnNode, startOnNode, tcpTransfer } from './traffic';
export type { Iperf3Result, PingResult, ProcessResult, TransferResult } from './traffic';
