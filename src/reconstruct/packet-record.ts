// The shared packet record of issue 15 (capture, store, injection): the store owns the type
// (src/store/ when it arrives); until the branches are merged, capture and injection each
// declare the same interface in their area, and the lead unifies them.

export type PacketKind = 'captured' | 'dropped' | 'injected' | 'reconstructed' | 'imported';

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
