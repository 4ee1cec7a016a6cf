// `bae nodes --nats URL [--json] [--all]`: the agents of the fleet, from their heartbeats
// (bae.heartbeat.<node>; the node stream BAE_NODES keeps the newest of each). A node is live while
// its last heartbeat is younger than 3 of its periods and did not say it stopped.
import { Command } from 'commander';
import { BusError, LIVE_PERIODS, NatsBus, openBus, viewNodes, type NodeView } from '../bus';
import { UsageError } from '../errors';
import { toJson } from '../json';
import { addNatsOptions, natsAuthOf, type NatsAuthOpts } from './options';

// The liveness rule is the bus area's (src/bus/heartbeat.ts), shared with the live view.
export { LIVE_PERIODS, viewNodes } from '../bus';
export type { NodeView } from '../bus';

function line(n: NodeView): string {
  const lag = n.bus.kind === 'nats' ? `bus ${n.bus.connected ? 'connected' : 'DISCONNECTED'}, ${n.bus.buffered} events buffered, ${n.bus.dropped} dropped${n.bus.rttMs !== null ? `, rtt ${n.bus.rttMs.toFixed(1)} ms` : ''}` : 'in-process bus';
  const state = n.live ? 'live' : n.state === 'stopped' ? 'stopped' : 'silent';
  return `${n.node.padEnd(16)} ${state.padEnd(7)} ${n.mode.padEnd(7)} ${n.ifaces.join(',').padEnd(20)} gen ${String(n.generation ?? '-').padEnd(4)} up ${(n.uptimeMs / 1000).toFixed(0)}s, seen ${(n.ageMs / 1000).toFixed(1)}s ago, ${lag} (${n.host} pid ${n.pid})`;
}

export function register(program: Command): void {
  const nodes = program
    .command('nodes')
    .description('list the live agents of the fleet, from their heartbeats on NATS')
    .option('--all', 'also nodes that stopped or went silent (their last heartbeat is kept a day)')
    .option('--json', 'print as JSON (every field of the heartbeat, ageMs, live)')
    .addHelpText(
      'after',
      `
Every \`bae agent\` publishes a heartbeat on bae.heartbeat.<node> (every 2 s, --heartbeat): its
mode and ports, the policy generation in its kernel, its uptime and how far behind its bus is
(events waiting for the stream, dropped, the round trip to the server). The stream BAE_NODES
keeps the newest heartbeat of each node; a node is live while that one is younger than ${LIVE_PERIODS}
periods and did not say it stopped. Needs a server with JetStream.

Examples:
  bae nodes --nats nats://10.0.0.1:4222
  bae nodes --nats nats://10.0.0.1:4222,nats://10.0.0.2:4222 --json | jq -r '.[].node'
  bae nodes --nats tls://nats.example:4222 --nats-tls-ca ca.pem --nats-creds bae.creds --all`,
    )
    .action(async (opts: { nats?: string; all?: boolean; json?: boolean } & NatsAuthOpts) => {
      if (opts.nats === undefined) throw new UsageError('bae nodes needs --nats URL (the fleet\'s NATS server)');
      const bus = await openBus({ url: opts.nats, auth: natsAuthOf(opts), name: 'bae-cli' });
      try {
        if (!(bus instanceof NatsBus)) throw new BusError('bae nodes needs a NATS bus');
        const views = viewNodes(await bus.lastHeartbeats(), Date.now()).filter((n) => opts.all || n.live);
        if (opts.json) process.stdout.write(toJson(views, 2) + '\n');
        else process.stdout.write(views.length ? views.map(line).join('\n') + '\n' : `no live agent on ${bus.url}\n`);
      } finally {
        await bus.close();
      }
    });
  addNatsOptions(nodes, 'where the agents publish their heartbeats');
}
