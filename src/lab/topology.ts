// The inline lab: three network namespaces, client <-veth-> bae <-veth-> server. bae's two ports
// carry no addresses: bae is a transparent bump in the wire, so both end hosts sit in one IPv4 /24
// and one IPv6 /64, and nothing passes between them until something (bae, or a Linux bridge for
// comparison) forwards frames between the two ports.
import { existsSync } from 'node:fs';
import { LabError, NotRootError, UsageError } from '../errors';
import { inNetns, run, tryRun } from './run';

export const LAB_NODES = ['client', 'bae', 'server'] as const;
export type LabNode = (typeof LAB_NODES)[number];

export const DEFAULT_LAB_PREFIX = 'bae-';

/** Namespace names are files under /run/netns; keep the prefix to characters `ip netns` accepts
 *  everywhere and short enough to read in `ip netns list`. */
const PREFIX_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,23}$/;

export interface LabEndpoint {
  ns: string;
  iface: string;
  ipv4: string;
  ipv6: string;
}

export interface Lab {
  prefix: string;
  ns: Record<LabNode, string>;
  client: LabEndpoint & {
    /** A second IPv4 address on the client: a source that tests can leave unaffected. */
    ipv4Second: string;
  };
  server: LabEndpoint;
  bae: {
    ns: string;
    /** bae's port facing the client (peer of the client's iface). */
    clientPort: string;
    /** bae's port facing the server (peer of the server's iface). */
    serverPort: string;
  };
  ipv4PrefixLen: number;
  ipv6PrefixLen: number;
}

export function checkLabPrefix(prefix: string): string {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new UsageError(
      `bad lab prefix '${prefix}': use 1-24 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return prefix;
}

/** Names and addresses of the lab with this prefix (pure: nothing is created). */
export function labTopology(prefix: string = DEFAULT_LAB_PREFIX): Lab {
  checkLabPrefix(prefix);
  const ns = { client: `${prefix}client`, bae: `${prefix}bae`, server: `${prefix}server` };
  return {
    prefix,
    ns,
    client: { ns: ns.client, iface: 'eth0', ipv4: '10.199.0.1', ipv4Second: '10.199.0.3', ipv6: 'fd00:bae::1' },
    server: { ns: ns.server, iface: 'eth0', ipv4: '10.199.0.2', ipv6: 'fd00:bae::2' },
    bae: { ns: ns.bae, clientPort: 'to-client', serverPort: 'to-server' },
    ipv4PrefixLen: 24,
    ipv6PrefixLen: 64,
  };
}

export function netnsExists(ns: string): boolean {
  return existsSync(`/run/netns/${ns}`);
}

function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new NotRootError(what);
}

interface IpLink {
  ifname: string;
  flags?: string[];
  mtu?: number;
  operstate?: string;
  xdp?: { mode?: number; prog?: { id?: number }; attached?: Array<{ mode?: number; prog?: { id?: number } }> };
  addr_info?: Array<{ family: string; local: string; prefixlen: number; scope?: string }>;
}

function ipAddrJson(ns: string): IpLink[] {
  const res = tryRun(['ip', '-n', ns, '-j', 'addr', 'show']);
  if (res.status !== 0) return [];
  try {
    return JSON.parse(res.stdout) as IpLink[];
  } catch {
    return [];
  }
}

/** The endpoint addresses each namespace must have, as `ip addr` prints them. */
function expectedState(lab: Lab): Array<{ ns: string; iface: string; addresses: string[] }> {
  const v4 = (a: string) => `${a}/${lab.ipv4PrefixLen}`;
  const v6 = (a: string) => `${a}/${lab.ipv6PrefixLen}`;
  return [
    {
      ns: lab.client.ns,
      iface: lab.client.iface,
      addresses: [v4(lab.client.ipv4), v4(lab.client.ipv4Second), v6(lab.client.ipv6)],
    },
    { ns: lab.server.ns, iface: lab.server.iface, addresses: [v4(lab.server.ipv4), v6(lab.server.ipv6)] },
    { ns: lab.bae.ns, iface: lab.bae.clientPort, addresses: [] },
    { ns: lab.bae.ns, iface: lab.bae.serverPort, addresses: [] },
  ];
}

/** True when every namespace, interface and address of the lab is there and up. */
export function labIsUp(lab: Lab): boolean {
  for (const want of expectedState(lab)) {
    if (!netnsExists(want.ns)) return false;
    const link = ipAddrJson(want.ns).find((l) => l.ifname === want.iface);
    if (!link || !(link.flags ?? []).includes('UP')) return false;
    const have = new Set((link.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
    if (!want.addresses.every((a) => have.has(a))) return false;
  }
  return true;
}

export interface LabUpResult {
  lab: Lab;
  /** The lab was complete before the call, and was left as it was. */
  alreadyUp: boolean;
}

/**
 * Builds the lab. Idempotent: a complete lab is left alone; the leftovers of a partial one are
 * removed first. A failing step removes everything this call made before it throws.
 */
export function labUp(prefix: string = DEFAULT_LAB_PREFIX): LabUpResult {
  const lab = labTopology(prefix);
  requireRoot('bae lab up');
  if (labIsUp(lab)) return { lab, alreadyUp: true };
  labDown(prefix);
  try {
    build(lab);
  } catch (err) {
    labDown(prefix);
    throw err;
  }
  return { lab, alreadyUp: false };
}

function build(lab: Lab): void {
  const { client, server, bae } = lab;
  for (const node of LAB_NODES) run(['ip', 'netns', 'add', lab.ns[node]]);

  // bae's ports must not speak for themselves (no IPv6 link-local, no router solicitations or
  // MLD reports): set before the interfaces are created in its namespace, so they inherit it.
  run(inNetns(bae.ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']));
  run(inNetns(bae.ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']));

  // Create each veth pair straight into its two namespaces: no name ever touches the host's.
  run(['ip', '-n', bae.ns, 'link', 'add', bae.clientPort, 'type', 'veth', 'peer', 'name', client.iface, 'netns', client.ns]);
  run(['ip', '-n', bae.ns, 'link', 'add', bae.serverPort, 'type', 'veth', 'peer', 'name', server.iface, 'netns', server.ns]);

  for (const ep of [client, server]) {
    // Addresses only on the endpoints; nodad so the IPv6 address is usable at once.
    const v4s = ep === client ? [client.ipv4, client.ipv4Second] : [ep.ipv4];
    for (const a of v4s) run(['ip', '-n', ep.ns, 'addr', 'add', `${a}/${lab.ipv4PrefixLen}`, 'dev', ep.iface]);
    run(['ip', '-n', ep.ns, 'addr', 'add', `${ep.ipv6}/${lab.ipv6PrefixLen}`, 'dev', ep.iface, 'nodad']);
    // Endpoints compute their own checksums (a CHECKSUM_PARTIAL skb redirected by XDP arrives with
    // a bad checksum and TCP stalls) and keep GRO on, which gives the veth NAPI: without NAPI or
    // an XDP program a frame XDP_REDIRECTed into it is silently lost.
    run(inNetns(ep.ns, ['ethtool', '-K', ep.iface, 'tx', 'off', 'gro', 'on']));
  }
  for (const node of LAB_NODES) run(['ip', '-n', lab.ns[node], 'link', 'set', 'lo', 'up']);
  for (const [ns, iface] of [
    [client.ns, client.iface],
    [server.ns, server.iface],
    [bae.ns, bae.clientPort],
    [bae.ns, bae.serverPort],
  ]) {
    run(['ip', '-n', ns, 'link', 'set', iface, 'up']);
  }
  if (!labIsUp(lab)) throw new LabError(`lab '${lab.prefix}' is not complete after set-up`);
}

export interface LabDownResult {
  lab: Lab;
  removed: string[];
}

/** Removes the lab's namespaces (their veths go with them). Fine to call on a partial lab or none. */
export function labDown(prefix: string = DEFAULT_LAB_PREFIX): LabDownResult {
  const lab = labTopology(prefix);
  const removed: string[] = [];
  const errors: string[] = [];
  for (const node of LAB_NODES) {
    const ns = lab.ns[node];
    if (!netnsExists(ns)) continue;
    requireRoot('bae lab down');
    const res = tryRun(['ip', 'netns', 'del', ns]);
    if (res.status === 0) removed.push(ns);
    else errors.push(`${ns}: ${res.stderr.trim().split('\n')[0]}`);
  }
  if (errors.length) throw new LabError(`could not remove lab namespaces: ${errors.join('; ')}`);
  return { lab, removed };
}

export interface LabInterfaceStatus {
  name: string;
  up: boolean;
  mtu: number;
  addresses: string[];
  /** XDP program attached to the interface, if any. */
  xdp?: { progId: number; mode: 'native' | 'generic' | 'offload' | 'multi' | 'unknown' };
}

export interface LabNodeStatus {
  node: LabNode;
  ns: string;
  exists: boolean;
  interfaces: LabInterfaceStatus[];
}

export interface LabStatus {
  prefix: string;
  up: boolean;
  nodes: LabNodeStatus[];
}

// iproute2 prints the XDP attach mode as the kernel's XDP_ATTACHED_* number.
const XDP_MODES: Record<number, NonNullable<LabInterfaceStatus['xdp']>['mode']> = {
  1: 'native',
  2: 'generic',
  3: 'offload',
  4: 'multi',
};

export function labStatus(prefix: string = DEFAULT_LAB_PREFIX): LabStatus {
  const lab = labTopology(prefix);
  const nodes = LAB_NODES.map((node): LabNodeStatus => {
    const ns = lab.ns[node];
    const exists = netnsExists(ns);
    const interfaces = exists
      ? ipAddrJson(ns)
          .filter((l) => l.ifname !== 'lo')
          .map((l): LabInterfaceStatus => {
            const st: LabInterfaceStatus = {
              name: l.ifname,
              up: (l.flags ?? []).includes('UP'),
              mtu: l.mtu ?? 0,
              addresses: (l.addr_info ?? [])
                .filter((a) => a.scope !== 'link')
                .map((a) => `${a.local}/${a.prefixlen}`),
            };
            const progId = l.xdp?.prog?.id ?? l.xdp?.attached?.[0]?.prog?.id;
            if (l.xdp && progId !== undefined) {
              st.xdp = { progId, mode: XDP_MODES[l.xdp.mode ?? 0] ?? 'unknown' };
            }
            return st;
          })
      : [];
    return { node, ns, exists, interfaces };
  });
  return { prefix, up: labIsUp(lab), nodes };
}

/** The argv that runs `cmd` on a lab node (host mount namespace kept: pins stay visible). */
export function labExecArgv(lab: Lab, node: LabNode, cmd: readonly string[]): string[] {
  if (!netnsExists(lab.ns[node])) {
    throw new LabError(`lab '${lab.prefix}' has no namespace ${lab.ns[node]}; run \`bae lab up\` first`);
  }
  return inNetns(lab.ns[node], cmd);
}

/** Linux bridge between bae's two ports: the baseline that bae's inline mode is measured against. */
export function labLinuxBridge(lab: Lab, on: boolean, name = 'br0'): void {
  const ns = lab.bae.ns;
  if (on) {
    run(['ip', '-n', ns, 'link', 'add', name, 'type', 'bridge']);
    for (const port of [lab.bae.clientPort, lab.bae.serverPort]) {
      run(['ip', '-n', ns, 'link', 'set', port, 'master', name]);
    }
    run(['ip', '-n', ns, 'link', 'set', name, 'up']);
  } else {
    tryRun(['ip', '-n', ns, 'link', 'del', name]);
  }
}

export function isLabNode(s: string): s is LabNode {
  return (LAB_NODES as readonly string[]).includes(s);
}
