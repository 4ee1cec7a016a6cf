// The datapath area: typed wrapper of the native addon (objects, maps, programs, links, ring
// buffers) and, appended by their owners, the datapath's own modules.
export { loadCollection, Collection } from './collection';
export type { LoadOptions, StructLayout, StructMember } from './collection';
export { BpfMap, openPinnedMap, rcuGracePeriod } from './map';
export type { UpdateFlag, BatchResult } from './map';
export { Program, openPinnedProgram, openProgramById, XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT } from './program';
export type { TestOptions, TestResult } from './program';
export { BpfError, VerifierError, errnoName } from './errors';
export { numPossibleCpus, sumPerCpu, splitPerCpu, joinPerCpu, perCpuStride } from './percpu';
export { ensurePinDir } from './pin';
export { attachXdp, attachXdpLegacy, detachXdpLegacy, Link, openPinnedLink, resolveIfindex, xdpQuery } from './link';
export type { AttachXdpOptions, XdpMode, XdpAttachedMode, XdpStatus } from './link';
export { RingBuffer } from './ringbuf';
export type { RecordHandler } from './ringbuf';
// bae's own loader (load/unload/status of bae.o with its pins), as a namespace: loader.load(...).
export * as loader from './loader';
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
