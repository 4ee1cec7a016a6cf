// `bae capture [--follow] [--count N] [--json | --pcap FILE]`: the frames that policies with a
// `capture` action keep (bpf/capture.h), read from the kernel's capture ring.
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { CaptureReader, PcapWriter, type PacketRecord } from '../reconstruct';
import { pinDirOf, wholeNumber } from './options';

/** One line for a person: time, kind, policy, action (reason), interface, lengths. */
export function formatPacket(r: PacketRecord): string {
  const time = new Date(Number(r.tsNs / 1_000_000n)).toISOString();
  const why = r.reason ? ` (${r.reason})` : '';
  return `${time} ${r.kind.padEnd(8)} ${r.policy ?? '-'} ${r.action ?? '-'}${why} ifindex=${r.ifindex} ${r.data.length}/${r.origLen} bytes`;
}

/** The JSON of a record: bigints as decimal strings (src/json.ts), the bytes as hex. */
export function packetJson(r: PacketRecord): string {
  return toJson({ ...r, data: r.data.toString('hex') });
}

export function register(program: Command): void {
  program
    .command('capture')
    .description('print or save the frames that policies with a `capture` action keep')
    .option('--follow', 'keep reading new frames until interrupted (or until --count)')
    .option('--count <n>', 'with --follow: stop once n frames were written (a burst read at once is written whole)', wholeNumber(1, 2 ** 31))
    .option('--json', 'one JSON object per frame (data as hex)')
    .option('--pcap <file>', 'write the frames to a pcap file (nanosecond timestamps) instead of printing them')
    .addHelpText(
      'after',
      `
A policy keeps frames with \`capture: { snaplen: N, sample: R }\` (every matching frame, or the
seeded fraction R of them, first N bytes) or \`capture: { drops: true }\` (only the frames the same
policy's drop, block, loss or rate removes). Each frame is listed as captured (it matched) or
dropped (with the action that removed it and why), with its policy, arrival interface and
lengths (kept/on the wire). The kernel keeps frames in a ring buffer (4 MiB) until a reader
takes them; a full ring counts them as lost (bae status), it never waits. Without --follow, bae
capture takes what is waiting and exits.

Examples:
  sudo bae capture
  sudo bae capture --follow --json | jq 'select(.kind == "dropped") | .policy'
  sudo bae capture --follow --count 100 --pcap /tmp/dropped.pcap && tshark -r /tmp/dropped.pcap
  sudo bae lab exec bae -- bae capture --follow`,
    )
    .action(async (opts: { follow?: boolean; count?: number; json?: boolean; pcap?: string }, command: Command) => {
      if (opts.json && opts.pcap !== undefined) throw new UsageError('--json and --pcap: choose one (the pcap file holds the frames, stdout stays empty)');
      const pinDir = pinDirOf(command);
      if (opts.pcap !== undefined) {
        // Checked first, created once the ring is open (a bae not loaded leaves no empty file).
        try {
          fs.accessSync(path.dirname(path.resolve(opts.pcap)), fs.constants.W_OK);
        } catch (err) {
          throw new UsageError(`--pcap ${opts.pcap}: cannot write it (${(err as Error).message})`, { cause: err });
        }
      }
      let pcap: PcapWriter | undefined;
      let done: (() => void) | undefined;
      let seen = 0;
      // The ring hands over what it holds in one batch: a batch that crosses --count is written
      // whole, since what it delivered is gone from the ring.
      const reader = new CaptureReader({ pinDir }, (r) => {
        seen++;
        if (pcap) pcap.write(r);
        else process.stdout.write((opts.json ? packetJson(r) : formatPacket(r)) + '\n');
        if (opts.count !== undefined && seen >= opts.count) done?.();
      });
      try {
        if (opts.pcap !== undefined) {
          try {
            pcap = new PcapWriter(opts.pcap);
          } catch (err) {
            throw new UsageError(`--pcap ${opts.pcap}: cannot write it (${(err as Error).message})`, { cause: err });
          }
        }
        reader.consume();
        if (!opts.follow || (opts.count !== undefined && seen >= opts.count)) return;
        await new Promise<void>((resolve) => {
          done = resolve;
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
      } finally {
        reader.close();
        pcap?.close();
      }
    });
}
