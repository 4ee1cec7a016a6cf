// Trigger metrics: what one packet adds to a window. The ids are the kernel's
// enum policy_metric (bpf/policy_abi.h); contribution() is the reference model's copy of the
// kernel's policy_metric_value().

export interface PacketFacts {
  /** Frame length in bytes (what XDP sees: data_end - data). */
  length: number;
  proto: number;
  /** TCP flags byte (FIN=1, SYN=2, RST=4, PSH=8, ACK=16, URG=32, ECE=64, CWR=128). */
  tcpFlags: number;
  /** ICMP / ICMPv6 type, or -1 for other protocols. */
  icmpType: number;
  /** The datapath saw a retransmission (a TCP segment whose data it had already seen). */
  retransmit: boolean;
  /** The datapath saw a TCP segment beyond the next expected sequence number. */
  outOfOrder: boolean;
  /** This packet created a new conversation in the datapath's conversation table. */
  newConversation: boolean;
  /** Its TCP payload starts with an HTTP/1.x request line (on an HTTP port, bpf/l7.h). */
  httpRequest?: boolean;
  /** ... or with a status line: its code (100-999); absent or 0: none. */
  httpStatus?: number;
}

export interface MetricInfo {
  id: number;
  name: string;
  description: string;
}

export const METRICS: readonly MetricInfo[] = [
  { id: 1, name: 'packets', description: 'packets' },
  { id: 2, name: 'bytes', description: 'frame bytes' },
  { id: 3, name: 'tcp.syn', description: 'TCP segments with SYN set and ACK clear (connection attempts)' },
  { id: 4, name: 'tcp.rst', description: 'TCP segments with RST set' },
  { id: 5, name: 'tcp.fin', description: 'TCP segments with FIN set' },
  { id: 6, name: 'tcp.retransmits', description: 'TCP segments the datapath saw as retransmissions' },
  { id: 7, name: 'out_of_order', description: 'TCP segments beyond the next expected sequence number' },
  { id: 8, name: 'icmp.unreachable', description: 'ICMP destination unreachable (type 3) and ICMPv6 (type 1)' },
  { id: 9, name: 'new_conversations', description: 'packets that opened a new conversation (a source\'s fan-out)' },
  { id: 10, name: 'http.requests', description: 'HTTP/1.x request lines (at the start of a TCP payload on an HTTP port)' },
  { id: 11, name: 'http.responses', description: 'HTTP/1.x status lines, counted for the client (the response\'s destination)' },
  { id: 12, name: 'http.errors', description: 'HTTP/1.x responses with a 4xx or 5xx status, counted for the client' },
  { id: 13, name: 'http.5xx', description: 'HTTP/1.x responses with a 5xx status, counted for the client' },
];

/** Metrics that count for the response's destination (the client): a window's `source`, a
 * block and an event take the packet's addresses the other way round (the kernel's
 * policy_metric_reversed()). */
export function metricReversed(metricId: number): boolean {
  return metricId === 11 || metricId === 12 || metricId === 13;
}

export const METRIC_BY_NAME = new Map(METRICS.map((m) => [m.name, m]));

const TCP = 6;
const ICMP = 1;
const ICMPV6 = 58;
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;

/** What a packet adds to a metric's window (the kernel's policy_metric_value()). */
export function metricContribution(metricId: number, p: PacketFacts): number {
  switch (metricId) {
    case 1:
      return 1;
    case 2:
      return p.length;
    case 3:
      return p.proto === TCP && (p.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN ? 1 : 0;
    case 4:
      return p.proto === TCP && p.tcpFlags & TCP_RST ? 1 : 0;
    case 5:
      return p.proto === TCP && p.tcpFlags & TCP_FIN ? 1 : 0;
    case 6:
      return p.retransmit ? 1 : 0;
    case 7:
      return p.outOfOrder ? 1 : 0;
    case 8:
      return (p.proto === ICMP && p.icmpType === 3) || (p.proto === ICMPV6 && p.icmpType === 1) ? 1 : 0;
    case 9:
      return p.newConversation ? 1 : 0;
    // A retransmission repeats a line already counted (bpf/policy_trigger.h).
    case 10:
      return p.httpRequest && !p.retransmit ? 1 : 0;
    case 11:
      return p.httpStatus && !p.retransmit ? 1 : 0;
    case 12:
      return p.httpStatus !== undefined && p.httpStatus >= 400 && p.httpStatus <= 599 && !p.retransmit ? 1 : 0;
    case 13:
      return p.httpStatus !== undefined && p.httpStatus >= 500 && p.httpStatus <= 599 && !p.retransmit ? 1 : 0;
    default:
      return 0;
  }
}
