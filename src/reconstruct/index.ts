// The reconstruct area: capture of frames the policies keep or remove (bpf/capture.h) as
// PacketRecords, forged packets (the malformed catalogue), injection through live frames, and the
// sender that re-sends dropped frames (`bae reconstruct`).
export type { PacketKind, PacketRecord } from './packet-record';
export { CaptureReader, captureClockNow, packetRecordOf } from './capture';
export type { CaptureClock, CaptureReaderOptions, PacketSink } from './capture';
export { PcapWriter } from './pcap';
export { FORGE_KINDS, FORGE_KIND_NAMES, MAX_FRAME, forgeKind } from './forge-catalogue';
export type { ForgeContext, ForgeKind, ForgeLayer, TcpState } from './forge-catalogue';
export { formatMac, internetChecksum, parseMac, wrongChecksum } from './forge';
export type { Endpoints } from './forge';
export { forgeRng } from './forge-rng';
export type { ForgeRng } from './forge-rng';
export {
  INJECT_MAX_COUNT,
  INJECT_MAX_RATE,
  INJECT_MAX_SECONDS,
  INJECT_OBJECT,
  Injector,
  requireLiveFrames,
  sendFrames,
} from './inject-send';
export type { FrameSender, OutFrame, SendOptions, SendReport } from './inject-send';
export { DEFAULT_INJECT_RATE, NoConversationError, drawFrameSize, flowsBetween, inject, neighbourEntry, planInjection, spacingFromProfile } from './inject';
export type { InjectPlan, InjectRequest, InjectResult } from './inject';
export { DEFAULT_RECONSTRUCT_RATE, resendDropped, unsendable } from './inject-replay';
export type { ResendOptions, ResendResult } from './inject-replay';
