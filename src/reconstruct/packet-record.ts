// The shared packet record (issue 15): the store (src/store/) owns the type; capture and
// injection produce values of it. Declared here until the branches are merged, word for word as
// agreed, so that the lead can replace this file by an import of the store's.

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
