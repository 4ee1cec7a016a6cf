// `bae reconstruct [--policy NAME] [--since T] [--after DUR] [--rate PPS]`: the frames the
// policies removed and captured (`capture: { drops: true }`, stored by the agent) sent again,
// byte-exact, out of the port they were headed for, now or after a delay: packets "lost" to
// emulated trouble arrive late instead of never (docs/inject.md).
import { Command } from 'commander';
import { MAX_PACKET_EVENTS, reportPacketEvents, type PacketEvent } from '../agent';
import { status } from '../datapath';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { parseDuration } from '../policy';
import { DEFAULT_RECONSTRUCT_RATE, resendDropped, type PacketRecord } from '../reconstruct';
import { Store, frameAddresses } from '../store';
import { dbOption, parseSince, pinDirOf, wholeNumber } from './options';

/** Frames re-sent by one call at most (the store may hold millions). */
export const RECONSTRUCT_MAX = 1_000_000;

/**
 * The events the agent publishes for the frames sent (bae.events.<node>.reconstructed): one per
 * conversation, policy, reason and port, in the order of their first frame; past
 * MAX_PACKET_EVENTS groups the rest are one event with no addresses and reason 'mixed'.
 */
export function reconstructedEvents(sent: readonly PacketRecord[], portName: (ifindex: number) => string | null, now = new Date()): PacketEvent[] {
  const groups = new Map<string, PacketEvent>();
  const rest: PacketEvent = { kind: 'reconstructed', time: now.toISOString(), by: 'bae reconstruct', reason: 'mixed', policy: null, src: '', dst: '', sport: null, dport: null, proto: null, port: null, frames: 0 };
  for (const r of sent) {
    const ad = frameAddresses(r.data);
    const e = { src: ad?.src ?? '', dst: ad?.dst ?? '', policy: r.policy, reason: r.reason ?? 'dropped', port: portName(r.ifindex) };
    const key = [e.src, e.dst, e.policy ?? '', e.reason, e.port ?? ''].join('\u0000');
    const g = groups.get(key);
    if (g) g.frames++;
    else if (groups.size < MAX_PACKET_EVENTS - 1) groups.set(key, { kind: 'reconstructed', time: now.toISOString(), by: 'bae reconstruct', sport: null, dport: null, proto: null, ...e, frames: 1 });
    else rest.frames++;
  }
  return rest.frames ? [...groups.values(), rest] : [...groups.values()];
}

export function register(program: Command): void {
  program
    .command('reconstruct')
    .description('send the frames a policy dropped (and captured) again, byte for byte, now or after a delay')
    .option('--policy <name>', 'only the frames this policy removed')
    .option('--since <time>', 'only frames dropped at or after this time (ISO time, or a duration ago: 30s, 5m)')
    .option('--after <duration>', 'wait this long before sending (e.g. 2s): the lost frames arrive late', '0s')
    .option('--rate <pps>', 'frames per second at most', wholeNumber(1, 10_000_000), DEFAULT_RECONSTRUCT_RATE)
    .option('--limit <n>', `frames at most (default and maximum ${RECONSTRUCT_MAX})`, wholeNumber(1, RECONSTRUCT_MAX), RECONSTRUCT_MAX)
    .addOption(dbOption())
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
A policy keeps what it removes with \`capture: { drops: true, snaplen: 1536 }\`; the agent stores
those frames (kind dropped). bae reconstruct sends them again in the order they were dropped,
through BPF_PROG_RUN live frames out of the other port of an inline bae (towards where they
were going), and stores each frame it sent (kind reconstructed, same policy). Frames cut short
by a snaplen cannot be rebuilt and are skipped with their reason. Needs bae loaded inline.

Examples:
  sudo bae reconstruct --policy lossy-link --since 1m
  sudo bae reconstruct --policy lossy-link --after 2s --rate 1000 --json
  sudo bae export --pcap /tmp/r.pcapng --kind reconstructed`,
    )
    .action(async (opts: { policy?: string; since?: string; after: string; rate: number; limit: number; db: string; json?: boolean }, command: Command) => {
      const after = parseDuration(opts.after);
      if (typeof after === 'string') throw new UsageError(`--after ${opts.after}: ${after}`);
      const afterMs = Number(after / 1_000_000n);
      const sinceNs = opts.since === undefined ? undefined : parseSince(opts.since);
      const st = status({ pinDir: pinDirOf(command) });
      if (!st.loaded || st.mode !== 'inline' || st.ports.length !== 2) {
        throw new UsageError(`bae reconstruct needs bae loaded inline (two ports) at ${st.pinDir}: dropped frames leave by the port they were headed for`);
      }
      const [a, b] = st.ports as [(typeof st.ports)[0], (typeof st.ports)[0]];
      // A frame that arrived on one port was headed out of the other.
      const egress = (r: PacketRecord) => (r.ifindex === a.ifindex ? b.ifindex : a.ifindex);

      const store = Store.open(opts.db, { readonly: true });
      const records: PacketRecord[] = [];
      try {
        for (const p of store.packets({ kind: 'dropped', ...(opts.policy !== undefined ? { policy: opts.policy } : {}), ...(sinceNs !== undefined ? { sinceNs } : {}) })) {
          if (records.length >= opts.limit) break;
          records.push(p);
        }
      } finally {
        store.close();
      }
      const res = await resendDropped(records, { egress, afterMs, rate: opts.rate });
      if (res.sent.length) {
        const w = Store.open(opts.db);
        try {
          w.insertPackets(res.sent);
        } finally {
          w.close();
        }
      }
      // The agent of this pin directory, if one runs, puts them on its event stream (and the live view).
      await reportPacketEvents(pinDirOf(command), reconstructedEvents(res.sent, (i) => st.ports.find((p) => p.ifindex === i)?.iface ?? null));
      const out = { found: records.length, sent: res.sent.length, skipped: res.skipped.map((s) => ({ index: s.index, why: s.why })) };
      if (opts.json) process.stdout.write(toJson(out) + '\n');
      else {
        process.stdout.write(`${out.sent} of ${out.found} dropped frames sent again${afterMs ? ` after ${opts.after}` : ''}\n`);
        for (const s of out.skipped.slice(0, 10)) process.stdout.write(`  skipped frame ${s.index}: ${s.why}\n`);
        if (out.skipped.length > 10) process.stdout.write(`  ... and ${out.skipped.length - 10} more skipped\n`);
      }
    });
}
