// The shared packet record (agreed between the helpers of issue 15; the store owns the type).
// Capture, injection, reconstruction and `bae import` produce values of it; the store keeps them
// as rows of its packets table and exports them to pcapng.

export const PACKET_KINDS = ['captured', 'dropped', 'injected', 'reconstructed', 'imported'] as const;
export type PacketKind = (typeof PACKET_KINDS)[number];

export interface PacketRecord {
  /** Wall-clock time, ns since the Unix epoch (bigint). */
  tsNs: bigint;
  /** Interface the frame arrived on (captured/dropped) or left by (injected/reconstructed); 0 unknown. */
  ifindex: number;
  kind: PacketKind;
  /** Policy name (null: none, e.g. a `bae inject` from the CLI). */
  policy: string | null;
  /** What was done: 'capture', 'loss', 'drop', 'block', 'inject', 'reconstruct', ... */
  action: string | null;
  /** Why: the malformed kind for injections ('tcp-bad-checksum'), 'seeded loss', ... */
  reason: string | null;
  /** Length of the frame on the wire (data may be shorter: snaplen). */
  origLen: number;
  /** The frame's bytes from the Ethernet header on. */
  data: Buffer;
}

/** A stored packet: the record, its row id and the scenario it belongs to (imports). */
export interface StoredPacket extends PacketRecord {
  id: number;
  scenarioId: number | null;
}

export function isPacketKind(value: string): value is PacketKind {
  return (PACKET_KINDS as readonly string[]).includes(value);
}
