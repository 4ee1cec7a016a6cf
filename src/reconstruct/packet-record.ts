// The shared packet record (issue 15) is the store's (src/store/packet-record.ts): capture and
// injection produce values of it.
export type { PacketKind, PacketRecord } from '../store';
