// Policy files (YAML or JSON) -> validated Policy objects. Every problem becomes a PolicyError at
// the line and column of the offending key or value. A file holds one or more YAML documents;
// each document is one policy, or a list of policies (which is also how a JSON array reads).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Document, isAlias, isMap, isScalar, isSeq, LineCounter, parseAllDocuments } from 'yaml';
import type { Node as YamlNode, Pair, Scalar, YAMLMap } from 'yaml';
import { ACTION_BY_KIND, ACTIONS, INJECT_NEEDS_TRIGGER, type ParamSpec } from './actions';
import { parseTcpFlagList, TCP_FLAG_BITS } from './actions-model';
import { PolicyError } from './errors';
import { METRIC_BY_NAME, METRICS } from './metrics';
import type { Policy, PolicyAction, PolicyMatch, PolicyTrigger, PortRange, TriggerScope } from './model';
import { parsePrefix, type Prefix } from './net';
import { formatDuration, parseDuration, policySpec } from './spec';
import { canonicalJson, idOfCanonical } from './stable-id';

export const API_VERSION = 'bae/v1';

/** Upper bounds of one policy (the maps have their own, checked by the compiler). */
export const LIMITS = {
  prefixesPerList: 1024,
  portsPerList: 256,
  protosPerList: 16,
  priorityMax: 65535,
  /** `within` between 1 ms and 1 day: the bucket (within/8) stays well above clock noise. */
  withinMinNs: 1_000_000n,
  withinMaxNs: 86_400_000_000_000n,
  forMaxNs: 365n * 86_400_000_000_000n,
  thresholdMax: (1n << 62n),
} as const;

const PROTO_NAMES: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58, 'ipv6-icmp': 58 };
const TCP = 6;
const UDP = 17;
const SCOPES: readonly TriggerScope[] = ['conversation', 'source', 'destination', 'policy'];
const NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;
const IFNAME_RE = /^[^\s/:]{1,15}$/;

type AnyNode = YamlNode | null | undefined;

/** Walks one policy's YAML nodes; every failure names file, line, column and policy. */
class Walker {
  constructor(
    readonly file: string,
    readonly lines: LineCounter,
    public policy: string,
  ) {}

  at(offset: number): { line: number; column: number } {
    const p = this.lines.linePos(offset);
    return { line: p.line, column: p.col };
  }

  fail(where: AnyNode | number, detail: string): never {
    const offset = typeof where === 'number' ? where : (where?.range?.[0] ?? 0);
    throw new PolicyError({ file: this.file, ...this.at(offset), policy: this.policy }, detail);
  }

  /** A mapping whose keys are all in `allowed`; returns key -> pair. */
  map(node: AnyNode, what: string, allowed: readonly string[], keyNode?: AnyNode): Map<string, Pair<Scalar, YamlNode | null>> {
    if (!isMap(node)) this.fail(node ?? keyNode, `${what} must be a mapping${describe(node)}`);
    const out = new Map<string, Pair<Scalar, YamlNode | null>>();
    for (const pair of (node as YAMLMap).items) {
      const key = pair.key as YamlNode | null;
      if (!isScalar(key) || typeof key.value !== 'string') this.fail(key ?? node, `${what} has a key that is not a string`);
      const name = key.value as string;
      if (!allowed.includes(name)) {
        this.fail(key, `unknown field '${name}' in ${what} (expected one of: ${allowed.join(', ')})`);
      }
      out.set(name, pair as Pair<Scalar, YamlNode | null>);
    }
    return out;
  }

  required(fields: Map<string, Pair<Scalar, YamlNode | null>>, name: string, what: string, container: AnyNode): Pair<Scalar, YamlNode | null> {
    const pair = fields.get(name);
    if (!pair) this.fail(container, `missing field '${name}' in ${what}`);
    return pair;
  }

  /** The value node of a pair, or a failure at the key when the value is empty. */
  value(pair: Pair<Scalar, YamlNode | null>, what: string): YamlNode {
    const v = pair.value;
    if (v === null || v === undefined || (isScalar(v) && v.value === null)) this.fail(pair.key, `${what} has no value`);
    return v;
  }

  string(node: YamlNode, what: string): string {
    if (!isScalar(node) || typeof node.value !== 'string') this.fail(node, `${what} must be a string${describe(node)}`);
    return node.value as string;
  }

  boolean(node: YamlNode, what: string): boolean {
    if (!isScalar(node) || typeof node.value !== 'boolean') this.fail(node, `${what} must be true or false${describe(node)}`);
    return node.value as boolean;
  }

  integer(node: YamlNode, what: string, min: number, max: number): number {
    if (!isScalar(node) || typeof node.value !== 'number') this.fail(node, `${what} must be a number${describe(node)}`);
    const v = node.value as number;
    if (!Number.isInteger(v)) this.fail(node, `${what} must be a whole number, not ${v}`);
    if (v < min || v > max) this.fail(node, `${what} ${v} is out of range (${min}..${max})`);
    return v;
  }

  duration(node: YamlNode, what: string, minNs: bigint, maxNs: bigint): bigint {
    if (!isScalar(node) || (typeof node.value !== 'string' && typeof node.value !== 'number')) {
      this.fail(node, `${what} must be a duration like 100ms, 10s or 5m${describe(node)}`);
    }
    const text = String(node.value);
    const ns = parseDuration(text);
    if (typeof ns === 'string') this.fail(node, `${what}: ${ns}`);
    if (ns < minNs || ns > maxNs) {
      this.fail(node, `${what} ${text} is out of range (${formatDuration(minNs)}..${formatDuration(maxNs)})`);
    }
    return ns;
  }

  /** A scalar or a non-empty list of scalars. */
  list(node: YamlNode, what: string, max: number): YamlNode[] {
    if (isSeq(node)) {
      const items = node.items as YamlNode[];
      if (items.length === 0) this.fail(node, `${what} is an empty list`);
      if (items.length > max) this.fail(items[max]!, `${what} has more than ${max} entries`);
      for (const item of items) {
        if (!isScalar(item)) this.fail(item, `${what} entries must be single values${describe(item)}`);
      }
      return items;
    }
    if (!isScalar(node)) this.fail(node, `${what} must be a value or a list of values${describe(node)}`);
    return [node];
  }
}

function describe(node: AnyNode): string {
  if (node === null || node === undefined) return '';
  if (isAlias(node)) return `, not an alias (*${node.source}); aliases are not supported`;
  if (isMap(node)) return ', not a mapping';
  if (isSeq(node)) return ', not a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return ', not empty';
    if (typeof v === 'string') return `, not the string '${v.length > 40 ? v.slice(0, 40) + '…' : v}'`;
    return `, not ${typeof v === 'number' ? 'the number' : typeof v} ${String(v)}`;
  }
  return '';
}

function parsePorts(w: Walker, node: YamlNode, what: string): PortRange[] {
  const out: PortRange[] = [];
  for (const item of w.list(node, what, LIMITS.portsPerList)) {
    const v = (item as Scalar).value;
    if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < 0 || v > 65535) w.fail(item, `${what}: port ${v} is not a whole number in 0..65535`);
      out.push({ lo: v, hi: v });
      continue;
    }
    if (typeof v !== 'string') w.fail(item, `${what} must be a port, a "lo-hi" range or a list of them${describe(item)}`);
    const m = /^\s*([0-9]{1,5})\s*(?:-\s*([0-9]{1,5})\s*)?$/.exec(v as string);
    if (!m) w.fail(item, `${what}: '${v}' is not a port or a "lo-hi" range`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo > 65535 || hi > 65535) w.fail(item, `${what}: '${v}' has a port above 65535`);
    if (lo > hi) w.fail(item, `${what}: range '${v}' runs backwards (${lo} > ${hi})`);
    out.push({ lo, hi });
  }
  return out;
}

function parsePrefixes(w: Walker, node: YamlNode, what: string): Prefix[] {
  const out: Prefix[] = [];
  for (const item of w.list(node, what, LIMITS.prefixesPerList)) {
    const text = w.string(item, `${what} entry`);
    const p = parsePrefix(text.trim());
    if (typeof p === 'string') w.fail(item, `${what}: ${p}`);
    out.push(p);
  }
  return out;
}

function parseProtos(w: Walker, node: YamlNode): number[] {
  const out: number[] = [];
  for (const item of w.list(node, 'match.proto', LIMITS.protosPerList)) {
    const v = (item as Scalar).value;
    let proto: number | undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 254) proto = v;
    else if (typeof v === 'string') proto = PROTO_NAMES[v.toLowerCase()];
    if (proto === undefined) {
      w.fail(item, `match.proto: '${String(v)}' is not a protocol (tcp, udp, icmp, icmpv6 or a number 0..254)`);
    }
    if (!out.includes(proto)) out.push(proto);
  }
  return out;
}

function parseTcpFlags(w: Walker, node: YamlNode): { mask: number; value: number } {
  let tokens: { text: string; node: YamlNode }[];
  if (isSeq(node)) {
    tokens = w.list(node, 'match.tcpFlags', 16).map((n) => ({ text: w.string(n, 'match.tcpFlags entry'), node: n }));
  } else {
    const text = w.string(node, 'match.tcpFlags');
    tokens = text.split(/[,\s]+/).filter((t) => t !== '').map((t) => ({ text: t, node }));
    if (tokens.length === 0) w.fail(node, 'match.tcpFlags is empty');
  }
  let mask = 0;
  let value = 0;
  for (const t of tokens) {
    const negated = t.text.startsWith('!');
    const name = (negated ? t.text.slice(1) : t.text).toUpperCase();
    const bit = TCP_FLAG_BITS[name];
    if (bit === undefined) w.fail(t.node, `match.tcpFlags: unknown flag '${t.text}' (flags: ${Object.keys(TCP_FLAG_BITS).join(' ')}, '!' for clear)`);
    if (mask & bit) w.fail(t.node, `match.tcpFlags: flag ${name} is named twice`);
    mask |= bit;
    if (!negated) value |= bit;
  }
  return { mask, value };
}

function parseMatch(w: Walker, node: YamlNode, keyNode: YamlNode): PolicyMatch {
  const fields = w.map(node, 'spec.match', ['src', 'dst', 'sport', 'dport', 'proto', 'tcpFlags', 'iface'], keyNode);
  // Every field present (undefined when absent): one object shape for all policies keeps the
  // compiler's property reads monomorphic (a 10k-policy compile is several times faster).
  const match: PolicyMatch = { src: undefined, dst: undefined, sport: undefined, dport: undefined, proto: undefined, tcpFlags: undefined, iface: undefined };
  const get = (name: string) => {
    const pair = fields.get(name);
    return pair ? w.value(pair, `match.${name}`) : undefined;
  };
  const src = get('src');
  if (src) match.src = parsePrefixes(w, src, 'match.src');
  const dst = get('dst');
  if (dst) match.dst = parsePrefixes(w, dst, 'match.dst');
  const proto = get('proto');
  if (proto) match.proto = parseProtos(w, proto);
  const sport = get('sport');
  if (sport) match.sport = parsePorts(w, sport, 'match.sport');
  const dport = get('dport');
  if (dport) match.dport = parsePorts(w, dport, 'match.dport');
  const flags = get('tcpFlags');
  if (flags) match.tcpFlags = parseTcpFlags(w, flags);
  const iface = get('iface');
  if (iface) {
    const name = w.string(iface, 'match.iface');
    if (!IFNAME_RE.test(name)) w.fail(iface, `match.iface: '${name}' is not an interface name (1-15 characters, no spaces, '/' or ':')`);
    match.iface = name;
  }
  // Ports need a protocol that has them; TCP flags need TCP. Unset proto is implied from them.
  const portNode = sport ?? dport;
  if (flags) {
    if (match.proto && match.proto.some((p) => p !== TCP)) w.fail(flags, 'match.tcpFlags needs proto tcp only');
    match.proto = [TCP];
  }
  if (portNode) {
    if (match.proto) {
      const bad = match.proto.find((p) => p !== TCP && p !== UDP);
      if (bad !== undefined) w.fail(portNode, `ports need proto tcp or udp; protocol ${bad} has no ports`);
    } else {
      match.proto = [TCP, UDP];
    }
  }
  return match;
}

function parseTrigger(w: Walker, node: YamlNode, keyNode: YamlNode): PolicyTrigger {
  const fields = w.map(node, 'spec.trigger', ['when', 'within', 'scope'], keyNode);
  const whenNode = w.value(w.required(fields, 'when', 'spec.trigger', node), 'trigger.when');
  const when = w.string(whenNode, 'trigger.when');
  const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(>=|<=|==|!=|>|<|=)\s*(\S+)\s*$/.exec(when);
  if (!m) w.fail(whenNode, `trigger.when: '${when}' is not '<metric> <op> <number>' (e.g. 'tcp.syn > 100')`);
  const metric = m[1]!;
  if (!METRIC_BY_NAME.has(metric)) {
    w.fail(whenNode, `trigger.when: unknown metric '${metric}' (metrics: ${METRICS.map((x) => x.name).join(', ')})`);
  }
  const op = m[2]!;
  if (op !== '>' && op !== '>=') {
    w.fail(whenNode, `trigger.when: operator '${op}' is not supported; a trigger fires when a count rises above a threshold: use > or >=`);
  }
  if (!/^[0-9]+$/.test(m[3]!)) w.fail(whenNode, `trigger.when: threshold '${m[3]}' is not a whole number >= 0`);
  const threshold = BigInt(m[3]!);
  if (threshold > LIMITS.thresholdMax) w.fail(whenNode, `trigger.when: threshold ${threshold} is too large (at most 2^62)`);
  const withinNode = w.value(w.required(fields, 'within', 'spec.trigger', node), 'trigger.within');
  const withinNs = w.duration(withinNode, 'trigger.within', LIMITS.withinMinNs, LIMITS.withinMaxNs);
  let scope: TriggerScope = 'source';
  const scopePair = fields.get('scope');
  if (scopePair) {
    const scopeNode = w.value(scopePair, 'trigger.scope');
    const s = w.string(scopeNode, 'trigger.scope');
    if (!SCOPES.includes(s as TriggerScope)) w.fail(scopeNode, `trigger.scope: '${s}' is not one of ${SCOPES.join(', ')}`);
    scope = s as TriggerScope;
  }
  return { metric, op, threshold, withinNs, scope };
}

function parseParam(w: Walker, node: YamlNode, what: string, spec: ParamSpec): bigint | number | string | boolean {
  switch (spec.type) {
    case 'boolean':
      return w.boolean(node, what);
    case 'duration':
      return w.duration(node, what, spec.minNs, spec.maxNs);
    case 'number': {
      if (!isScalar(node) || typeof node.value !== 'number') w.fail(node, `${what} must be a number${describe(node)}`);
      const v = node.value as number;
      if (spec.integer && !Number.isInteger(v)) w.fail(node, `${what} must be a whole number, not ${v}`);
      if (v < spec.min || v > spec.max) w.fail(node, `${what} ${v} is out of range (${spec.min}..${spec.max})`);
      return v;
    }
    case 'enum': {
      const v = w.string(node, what);
      if (!spec.values.includes(v)) w.fail(node, `${what}: '${v}' is not one of ${spec.values.join(', ')}`);
      return v;
    }
    case 'rate':
    case 'size': {
      const units = spec.type === 'rate' ? RATE_UNITS : SIZE_UNITS;
      const example = spec.type === 'rate' ? '10mbit' : '32kb';
      if (!isScalar(node) || (typeof node.value !== 'number' && typeof node.value !== 'string')) w.fail(node, `${what} must be a number or a value like ${example}${describe(node)}`);
      let v: number;
      if (typeof node.value === 'number') v = node.value;
      else {
        const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$/.exec(node.value as string);
        const unit = m ? units[m[2]!.toLowerCase()] : undefined;
        if (!m || unit === undefined) w.fail(node, `${what}: '${String(node.value)}' is not a value like ${example} (units: ${Object.keys(units).filter((u) => u).join(', ')})`);
        v = Number(m[1]) * unit;
      }
      if (!Number.isFinite(v) || Math.round(v) !== v) {
        if (!Number.isFinite(v) || Math.abs(Math.round(v) - v) > 1e-6 * Math.abs(v)) w.fail(node, `${what} must come to a whole number of ${spec.type === 'rate' ? 'bits per second' : 'bytes'}`);
        v = Math.round(v);
      }
      if (v < spec.min || v > spec.max) w.fail(node, `${what} ${String(node.value)} is out of range (${spec.min}..${spec.max} ${spec.type === 'rate' ? 'bits/s' : 'bytes'})`);
      return v;
    }
    case 'flags': {
      const text = w.string(node, what);
      const mask = parseTcpFlagList(text);
      if (typeof mask === 'string') w.fail(node, `${what}: ${mask}`);
      if (mask === 0) w.fail(node, `${what} names no flag`);
      // Canonical: the names in header bit order.
      return Object.entries(TCP_FLAG_BITS).filter(([, b]) => mask & b).map(([n]) => n).join(',');
    }
  }
}

const RATE_UNITS: Record<string, number> = { '': 1, bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12, bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9 };
const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

function parseActions(w: Walker, node: YamlNode): PolicyAction[] {
  if (!isSeq(node)) w.fail(node, `spec.actions must be a list${describe(node)}`);
  const items = node.items as YamlNode[];
  if (items.length === 0) w.fail(node, 'spec.actions is an empty list');
  const known = ACTIONS.map((a) => a.kind).join(', ');
  const out: PolicyAction[] = [];
  let verdictOf: { kind: string } | undefined;
  for (const item of items) {
    let kind: string;
    let kindNode: YamlNode = item;
    let paramsNode: YamlNode | null = null;
    if (isScalar(item) && typeof item.value === 'string') {
      kind = item.value;
    } else if (isMap(item) && item.items.length === 1) {
      const pair = item.items[0]!;
      const key = pair.key as YamlNode;
      if (!isScalar(key) || typeof key.value !== 'string') w.fail(key ?? item, 'an action name must be a string');
      kind = key.value as string;
      kindNode = key;
      paramsNode = (pair.value as YamlNode | null) ?? null;
      // `drop:`, `drop: null` and `drop: {}` all mean the action without parameters.
      if (isScalar(paramsNode) && paramsNode.value === null) paramsNode = null;
      if (isMap(paramsNode) && paramsNode.items.length === 0) paramsNode = null;
    } else {
      w.fail(item, `an action is a name (drop) or a mapping with one key (block: { ttl: 30s })${describe(item)}`);
    }
    const def = ACTION_BY_KIND.get(kind);
    if (!def) w.fail(kindNode, `unknown action '${kind}' (actions: ${known})`);
    if (out.some((a) => a.kind === kind)) w.fail(kindNode, `action '${kind}' is listed twice`);
    if (def.verdict !== null) {
      if (verdictOf) w.fail(kindNode, `actions '${verdictOf.kind}' and '${kind}' both decide the verdict; keep one`);
      verdictOf = { kind };
    }
    const params: Record<string, bigint | number | string | boolean> = {};
    const names = Object.keys(def.params);
    if (paramsNode !== null) {
      if (names.length === 0) w.fail(paramsNode, `action '${kind}' takes no parameters`);
      const fields = w.map(paramsNode, `action '${kind}'`, names);
      for (const [name, pair] of fields) params[name] = parseParam(w, w.value(pair, `${kind}.${name}`), `${kind}.${name}`, def.params[name]!);
    }
    for (const name of names) {
      if (def.params[name]!.required && !(name in params)) {
        w.fail(paramsNode ?? kindNode, `action '${kind}' needs '${name}'`);
      }
    }
    const problem = def.check?.(params);
    if (problem) {
      const at = problem.param && isMap(paramsNode) ? (paramsNode.items.find((pair) => isScalar(pair.key) && pair.key.value === problem.param)?.key as YamlNode | undefined) : undefined;
      w.fail(at ?? paramsNode ?? kindNode, problem.message);
    }
    out.push({ kind, params, source: { file: w.file, ...w.at(kindNode.range?.[0] ?? 0) } });
  }
  return out;
}

/** Reads metadata.name without validating, so that early errors can name the policy. */
function peekName(node: AnyNode): string | undefined {
  if (!isMap(node)) return undefined;
  const meta = node.get('metadata', true);
  if (!isMap(meta)) return undefined;
  const name = meta.get('name', true);
  return isScalar(name) && typeof name.value === 'string' ? name.value : undefined;
}

function parseOne(w: Walker, node: YamlNode): Policy {
  const top = w.map(node, 'policy', ['apiVersion', 'kind', 'metadata', 'spec']);
  const apiNode = w.value(w.required(top, 'apiVersion', 'policy', node), 'apiVersion');
  const api = w.string(apiNode, 'apiVersion');
  if (api !== API_VERSION) w.fail(apiNode, `apiVersion '${api}' is not supported (expected ${API_VERSION})`);
  const kindNode = w.value(w.required(top, 'kind', 'policy', node), 'kind');
  const kind = w.string(kindNode, 'kind');
  if (kind !== 'Policy') w.fail(kindNode, `kind '${kind}' is not supported (expected Policy)`);
  const metaPair = w.required(top, 'metadata', 'policy', node);
  const metaNode = w.value(metaPair, 'metadata');
  const meta = w.map(metaNode, 'metadata', ['name', 'description', 'labels']);
  const nameNode = w.value(w.required(meta, 'name', 'metadata', metaNode), 'metadata.name');
  const name = w.string(nameNode, 'metadata.name');
  if (!NAME_RE.test(name)) {
    w.fail(nameNode, `metadata.name '${name}' must be 1-63 lower-case letters, digits, '-' or '.', starting and ending with a letter or digit`);
  }
  w.policy = name;
  const desc = meta.get('description');
  if (desc) w.string(w.value(desc, 'metadata.description'), 'metadata.description');
  const labels = meta.get('labels');
  if (labels) {
    const labelsNode = w.value(labels, 'metadata.labels');
    if (!isMap(labelsNode)) w.fail(labelsNode, `metadata.labels must be a mapping${describe(labelsNode)}`);
    for (const pair of labelsNode.items) w.string(pair.value as YamlNode, `label '${String((pair.key as Scalar).value)}'`);
  }

  const specPair = w.required(top, 'spec', 'policy', node);
  const specNode = w.value(specPair, 'spec');
  const spec = w.map(specNode, 'spec', ['priority', 'match', 'trigger', 'for', 'cooldown', 'seed', 'monitor', 'actions']);
  let priority = 0;
  const prioPair = spec.get('priority');
  if (prioPair) priority = w.integer(w.value(prioPair, 'spec.priority'), 'spec.priority', 0, LIMITS.priorityMax);
  let match: PolicyMatch = { src: undefined, dst: undefined, sport: undefined, dport: undefined, proto: undefined, tcpFlags: undefined, iface: undefined };
  const matchPair = spec.get('match');
  if (matchPair && matchPair.value !== null && !(isScalar(matchPair.value) && matchPair.value.value === null)) {
    match = parseMatch(w, matchPair.value as YamlNode, matchPair.key);
  }
  let trigger: PolicyTrigger | undefined;
  const trigPair = spec.get('trigger');
  if (trigPair) trigger = parseTrigger(w, w.value(trigPair, 'spec.trigger'), trigPair.key);
  let forNs: bigint | undefined;
  const forPair = spec.get('for');
  if (forPair) {
    if (!trigger) w.fail(forPair.key, "spec.for needs a trigger (without one the actions apply to every matching packet)");
    forNs = w.duration(w.value(forPair, 'spec.for'), 'spec.for', 1_000_000n, LIMITS.forMaxNs);
  }
  let cooldownNs = 0n;
  const coolPair = spec.get('cooldown');
  if (coolPair) {
    if (!trigger) w.fail(coolPair.key, 'spec.cooldown needs a trigger');
    if (forNs === undefined) w.fail(coolPair.key, 'spec.cooldown needs spec.for (a trigger without for stays on until the policy is removed)');
    cooldownNs = w.duration(w.value(coolPair, 'spec.cooldown'), 'spec.cooldown', 0n, LIMITS.forMaxNs);
  }
  let seed: bigint | undefined;
  const seedPair = spec.get('seed');
  if (seedPair) seed = BigInt(w.integer(w.value(seedPair, 'spec.seed'), 'spec.seed', 0, Number.MAX_SAFE_INTEGER));
  const monitorPair = spec.get('monitor');
  const monitor = monitorPair ? w.boolean(w.value(monitorPair, 'spec.monitor'), 'spec.monitor') : false;
  const actionsPair = w.required(spec, 'actions', 'spec', specNode);
  const actions = parseActions(w, w.value(actionsPair, 'spec.actions'));
  const inject = actions.find((a) => a.kind === 'inject');
  if (inject && !trigger) throw new PolicyError({ ...inject.source!, policy: name }, INJECT_NEEDS_TRIGGER);

  const policy: Policy = {
    name,
    priority,
    match,
    trigger,
    forNs,
    cooldownNs,
    actions,
    seed,
    ...(monitor ? { monitor } : {}),
    id: 0,
    source: { file: w.file, ...w.at(node.range?.[0] ?? 0) },
    spec: undefined,
  };
  // One canonical text for both (a 10k-policy file spends a good part of its parse here).
  const canonical = canonicalJson(policySpec(policy));
  policy.id = idOfCanonical(canonical);
  policy.spec = JSON.parse(canonical) as unknown;
  return policy;
}

/** Parses the text of one file (YAML or JSON). Throws a PolicyError at the first problem. */
export function parsePolicyText(text: string, file: string): Policy[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true });
  const w = new Walker(file, lines, '#1');
  const policies: Policy[] = [];
  for (const doc of docs) {
    const first = doc.errors[0];
    if (first) {
      let offset = first.pos[0];
      let msg = first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      // The parser reports an unclosed quote where the text ends; the quote that opened it is
      // the last one of its kind before that (a string running to the end has none inside).
      const quote = first.code === 'MISSING_CHAR' ? /Missing closing (["'])quote/.exec(msg)?.[1] : undefined;
      if (quote) {
        const open = text.lastIndexOf(quote, first.pos[0] - 1);
        if (open >= 0) {
          offset = open;
          msg = `the string opened by this ${quote} is never closed`;
        }
      }
      const pos = lines.linePos(offset);
      throw new PolicyError({ file, line: pos.line, column: pos.col, policy: peekName(doc.contents as AnyNode) ?? `#${policies.length + 1}` }, `YAML: ${msg}`);
    }
    const content = doc.contents as AnyNode;
    if (content === null || content === undefined || (isScalar(content) && content.value === null)) continue;
    const items = isSeq(content) ? (content.items as YamlNode[]) : [content];
    for (const item of items) {
      w.policy = peekName(item) ?? `#${policies.length + 1}`;
      if (!isMap(item)) w.fail(item, `a policy must be a mapping with apiVersion, kind, metadata and spec${describe(item)}`);
      policies.push(parseOne(w, item));
    }
  }
  if (policies.length === 0) throw new PolicyError({ file, line: 1, column: 1 }, 'the file holds no policy');
  return policies;
}

/**
 * Policies given as plain values (what `policySpec` wrote, e.g. the applied set kept on disk),
 * validated by the same code as files but without YAML text to parse. Errors name `file`, 1:1.
 */
export function parsePolicyValues(values: readonly unknown[], file: string): Policy[] {
  const lines = new LineCounter();
  lines.addNewLine(0);
  const w = new Walker(file, lines, '#1');
  return values.map((value, i) => {
    const node = new Document(value).contents as AnyNode;
    w.policy = peekName(node) ?? `#${i + 1}`;
    if (!isMap(node)) w.fail(node, `a policy must be a mapping with apiVersion, kind, metadata and spec${describe(node)}`);
    return parseOne(w, node as YamlNode);
  });
}

/** Files named on the command line: a directory stands for its *.yaml, *.yml and *.json files, sorted. */
export function expandPolicyPaths(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      throw new PolicyError({ file: p, line: 1, column: 1 }, 'no such file or directory');
    }
    if (st.isDirectory()) {
      const names = fs.readdirSync(p).filter((n) => /\.(ya?ml|json)$/.test(n)).sort();
      out.push(...names.map((n) => path.join(p, n)));
    } else {
      out.push(p);
    }
  }
  return out;
}

/** Reads and parses files; names must be unique across all of them. */
export function parsePolicyFiles(paths: readonly string[]): Policy[] {
  const all: Policy[] = [];
  for (const file of expandPolicyPaths(paths)) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new PolicyError({ file, line: 1, column: 1 }, `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
    all.push(...parsePolicyText(text, file));
  }
  checkUniqueNames(all);
  return all;
}

export function checkUniqueNames(policies: readonly Policy[]): void {
  const seen = new Map<string, Policy>();
  for (const p of policies) {
    const prev = seen.get(p.name);
    if (prev) {
      throw new PolicyError(
        { ...p.source, policy: p.name },
        `a policy named '${p.name}' is already defined at ${prev.source.file}:${prev.source.line}:${prev.source.column}`,
      );
    }
    seen.set(p.name, p);
  }
}
