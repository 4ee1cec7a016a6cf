// The store (docs/store.md): SQLite in WAL mode with a versioned schema, a batched writer on a
// worker thread, retention, and pcapng export / pcap and pcapng import.
export { DEFAULT_DB, Store, MIGRATIONS, SCHEMA_VERSION } from './store';
export type { EventRow, PacketFilter, PolicyVersionRow, RetentionLimits, RetentionResult, Scenario, ScenarioInput, SnapshotRow, StoredEvent, StoreInfo } from './store';
export { migrate, schemaVersion } from './schema';
export { StoreError, describeSqliteCode, storeErrorOf } from './errors';
export { PACKET_KINDS, isPacketKind } from './packet-record';
export type { PacketKind, PacketRecord, StoredPacket } from './packet-record';
export { StoreWriter } from './writer';
export type { StoreWriterOptions, StoreWriterState } from './writer';
export type { WriterTable } from './writer-protocol';
export { PacketBatchBuilder, unpackPackets } from './batch';
export { LINKTYPE_ETHERNET, interfaceBlock, packetBlock, readCapture, sectionHeader } from './pcapng';
export type { CaptureFile, CapturedFrame } from './pcapng';
export { exportPcapng, frameAddresses, hostIfaceName, importCapture, packetComment, parseConversation } from './export';
export type { ExportOptions } from './export';
