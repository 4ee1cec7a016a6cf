// The agent's store (docs/store.md): kernel events (handed in by the bus bridge, which is the
// ring's one reader), the frames policies capture (this bridge is the capture ring's reader), a
// profile snapshot every snapshotMs, and each policy set applied (its YAML, numbered by
// generation) go to the SQLite store through a StoreWriter, which batches them on
// its own thread. A store that fails (disk full) is counted and logged; the agent goes on.
import * as fs from 'node:fs';
import { stringify } from 'yaml';
import { MAPS, openLoadedMap, type BpfMap } from '../datapath';
import { toJson } from '../json';
import { moduleLogger } from '../log';
import { stateFile, type PolicyEventView, type StoredSet } from '../policy';
import { readProfiles } from '../profiles';
import { CaptureReader } from '../reconstruct';
import { Store, StoreWriter, type PacketRecord, type StoreWriterState } from '../store';

const log = moduleLogger('agent/store');

export const DEFAULT_SNAPSHOT_MS = 60_000;
/** How often the applied policy set is looked at for a new version. */
const POLICY_POLL_MS = 2000;

export interface StoreBridgeOptions {
  db: string;
  pinDir: string;
  /** Profile snapshot period (0: none). */
  snapshotMs?: number;
  retainDays?: number;
  retainMb?: number;
}

export interface StoreBridgeState extends StoreWriterState {
  snapshotMs: number;
  policyGeneration: number;
  /** Frames read from the capture ring and handed to the writer. */
  capturedFrames: number;
}

const nowNs = () => BigInt(Date.now()) * 1_000_000n;

export class StoreBridge {
  readonly db: string;
  readonly #writer: StoreWriter;
  readonly #pinDir: string;
  readonly #convs: BpfMap | undefined;
  readonly #snapshotMs: number;
  readonly #timers: NodeJS.Timeout[] = [];
  #generation: number;
  #lastYaml: string | undefined;
  #policyMtime = 0;
  #capture: CaptureReader | undefined;

  private constructor(o: StoreBridgeOptions, writer: StoreWriter, convs: BpfMap | undefined, last: { generation: number; yaml: string | undefined }) {
    this.db = o.db;
    this.#writer = writer;
    this.#pinDir = o.pinDir;
    this.#convs = convs;
    this.#snapshotMs = o.snapshotMs ?? DEFAULT_SNAPSHOT_MS;
    this.#generation = last.generation;
    this.#lastYaml = last.yaml;
    if (convs && this.#snapshotMs > 0) this.#timers.push(setInterval(() => this.snapshot(), this.#snapshotMs));
    this.#timers.push(setInterval(() => this.#pollPolicy(), POLICY_POLL_MS));
    this.#timers.forEach((t) => t.unref());
  }

  /** Opens the store (a StoreError when it cannot) and bae_convs for snapshots. */
  static async start(o: StoreBridgeOptions): Promise<StoreBridge> {
    const writer = await StoreWriter.open({ file: o.db, ...(o.retainDays ? { retainDays: o.retainDays } : {}), ...(o.retainMb ? { retainMb: o.retainMb } : {}) });
    try {
      // The last version stored, so that a restarted agent does not store the same set again.
      const r = Store.open(o.db, { readonly: true });
      const versions = r.policyVersions();
      r.close();
      const last = versions.at(-1);
      const convs = openLoadedMap(MAPS.convs, o.pinDir, 'bae agent');
      const bridge = new StoreBridge(o, writer, convs, { generation: last?.generation ?? 0, yaml: last?.yaml });
      bridge.#pollPolicy();
      // The capture ring has one reader: the agent, while it stores (bae capture then finds it
      // empty; bae export reads what was stored).
      try {
        bridge.#capture = new CaptureReader({ pinDir: o.pinDir }, (r) => bridge.#writer.writePacket(r));
        bridge.#capture.consume();
      } catch (err) {
        log.warn({ err }, 'the capture ring cannot be read: captured frames are not stored');
      }
      log.info({ db: o.db, snapshotMs: bridge.#snapshotMs }, 'storing events, captured frames, profile snapshots and policy versions');
      return bridge;
    } catch (err) {
      await writer.close();
      throw err;
    }
  }

  /** A kernel event, as the bus bridge viewed it. */
  /** Stores `v`; `json` is toJson(v) when the caller has it already. */
  event(v: PolicyEventView, json?: string): void {
    const ms = Date.parse(v.time);
    this.#writer.writeEvent({ tsNs: Number.isFinite(ms) ? BigInt(ms) * 1_000_000n : nowNs(), kind: v.kind, policy: v.policy, src: v.src || null, dst: v.dst || null, body: json ?? toJson(v) });
  }

  /** A packet the agent sent itself (an `inject` action's), to the packets table. */
  packet(r: PacketRecord): void {
    this.#writer.writePacket(r);
  }

  /** An event of the agent's own (an `inject` action's outcome), in the kernel events' shape, beside them. */
  agentEvent(kind: string, v: PolicyEventView): void {
    const ms = Date.parse(v.time);
    this.#writer.writeEvent({ tsNs: Number.isFinite(ms) ? BigInt(ms) * 1_000_000n : nowNs(), kind, policy: v.policy, src: v.src || null, dst: v.dst || null, body: toJson(v) });
  }

  /** Stores the conversation profiles as they are now. */
  snapshot(): void {
    if (!this.#convs) return;
    try {
      const profiles = readProfiles(this.#convs);
      this.#writer.writeSnapshot({ tsNs: nowNs(), conversations: profiles.length, body: toJson(profiles) });
    } catch (err) {
      log.warn({ err }, 'profile snapshot failed');
    }
  }

  #pollPolicy(): void {
    const file = stateFile(this.#pinDir);
    let mtime: number;
    try {
      mtime = fs.statSync(file).mtimeMs;
    } catch {
      return; // no set applied
    }
    if (mtime === this.#policyMtime) return;
    this.#policyMtime = mtime;
    try {
      const set = JSON.parse(fs.readFileSync(file, 'utf8')) as StoredSet;
      const yaml = set.policies
        .map((p) => {
          const { name, ...spec } = p.spec;
          return stringify({ apiVersion: 'bae/v1', kind: 'Policy', metadata: { name: name ?? p.name }, spec });
        })
        .join('---\n');
      if (yaml === this.#lastYaml) return;
      this.#lastYaml = yaml;
      this.#generation++;
      const ms = Date.parse(set.appliedAt);
      this.#writer.writePolicyVersion({ tsNs: Number.isFinite(ms) ? BigInt(ms) * 1_000_000n : nowNs(), generation: this.#generation, yaml });
      log.info({ generation: this.#generation, policies: set.policies.length }, 'policy version stored');
    } catch (err) {
      log.warn({ err, file }, 'the applied policy set could not be read');
    }
  }

  state(): StoreBridgeState {
    return { ...this.#writer.state(), snapshotMs: this.#snapshotMs, policyGeneration: this.#generation, capturedFrames: this.#capture?.records ?? 0 };
  }

  /** A last snapshot, then everything written and the store closed. */
  async stop(): Promise<void> {
    this.#timers.forEach((t) => clearInterval(t));
    this.#capture?.consume();
    this.#capture?.close();
    this.snapshot();
    this.#convs?.close();
    await this.#writer.close();
  }
}
