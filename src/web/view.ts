// What the live view shows besides the conversation table, read from the loaded bae: the
// policies with their counters, the blocklist with expiries, the datapath counters. One LiveState
// per server, its maps opened once; each push reads them once for every client.
import { MAPS, openLoadedMap, sumStatsPerCpu, type BpfMap, type Stats } from '../datapath';
import { Blocklist, parseBlockTarget, policyStatuses, type BlockEntry, type PolicyStatus } from '../policy';
import { UsageError } from '../errors';
import { ConversationSource, type ConversationSnapshot } from './conversations';

/** What the agent hands the live view (it sits below the agent and imports none of it). */
export interface WebSources {
  pinDir: string;
  /** This node's name on the bus. */
  node?: string;
  /** The agent's status (delay line, bus, detector), read at each push; absent: none shown. */
  agentStatus?: () => unknown;
  /**
   * Rows of the stored history between two times (ms since the epoch); absent until the store
   * is wired in (then /api/history answers with no rows and says so).
   */
  history?: (q: { fromMs: number; toMs: number; kind?: string; limit: number }) => unknown[] | Promise<unknown[]>;
}

export interface SharedView {
  /** CLOCK_MONOTONIC ns of this view. */
  nowNs: bigint;
  time: string;
  node: string | null;
  datapath: Stats | null;
  policies: PolicyStatus[];
  blocks: BlockEntry[];
  agent: unknown;
}

export class LiveState {
  readonly sources: WebSources;
  readonly conversations: ConversationSource;
  #blocklist: Blocklist | undefined;
  #stats: BpfMap | undefined;

  constructor(sources: WebSources) {
    this.sources = sources;
    this.conversations = new ConversationSource(() => openLoadedMap(MAPS.convs, sources.pinDir, 'bae agent --http'));
  }

  /** The last complete walk of the conversations. */
  snapshot(): ConversationSnapshot {
    return this.conversations.latest();
  }

  get blocklist(): Blocklist {
    this.#blocklist ??= Blocklist.open(this.sources.pinDir, 'bae agent --http');
    return this.#blocklist;
  }

  blocks(): BlockEntry[] {
    return this.blocklist.list();
  }

  datapath(): Stats | null {
    this.#stats ??= openLoadedMap(MAPS.stats, this.sources.pinDir, 'bae agent --http');
    const perCpu = this.#stats.lookupPerCpu(Buffer.alloc(4));
    return perCpu ? sumStatsPerCpu(perCpu) : null;
  }

  policies(): PolicyStatus[] {
    return policyStatuses(this.sources.pinDir);
  }

  shared(): SharedView {
    return {
      nowNs: process.hrtime.bigint(),
      time: new Date().toISOString(),
      node: this.sources.node ?? null,
      datapath: this.datapath(),
      policies: this.policies(),
      blocks: this.blocks(),
      agent: this.sources.agentStatus ? this.sources.agentStatus() : null,
    };
  }

  /** Lifts a block (an address or prefix exactly as listed); whether there was one. */
  unblock(address: unknown): { address: string; removed: boolean } {
    if (typeof address !== 'string') throw new UsageError('unblock: the body must be {"address": "ADDR or PREFIX"}');
    const target = parseBlockTarget(address);
    if (typeof target === 'string') throw new UsageError(`unblock: ${target}`);
    return { address: target.address, removed: this.blocklist.unblock(target) };
  }

  close(): void {
    this.conversations.close();
    this.#blocklist?.close();
    this.#stats?.close();
    this.#blocklist = undefined;
    this.#stats = undefined;
  }
}
