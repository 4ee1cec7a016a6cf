// The reconstruct area: capture of frames the policies keep or remove (bpf/capture.h) as
// PacketRecords; re-injection and forged packets come here too (issue 15).
export type { PacketKind, PacketRecord } from './packet-record';
export { CaptureReader, captureClockNow, packetRecordOf } from './capture';
export type { CaptureClock, CaptureReaderOptions, PacketSink } from './capture';
export { PcapWriter } from './pcap';
