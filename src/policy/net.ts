// Addresses and prefixes as the kernel tables hold them: 16 bytes, IPv4 in the first four,
// with the family kept beside the address so that ::/0 never matches an IPv4 packet.

export type Family = 4 | 6;

export interface Prefix {
  family: Family;
  /** 16 bytes; an IPv4 address uses bytes 0..3, the rest are zero. */
  addr: Uint8Array;
  /** 0..32 for IPv4, 0..128 for IPv6. */
  len: number;
}

/** Parses a dotted IPv4 address; undefined when it is not one. */
export function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    out[i] = v;
  }
  return out;
}

/** Parses an IPv6 address (with :: and an optional trailing dotted IPv4); undefined when invalid. */
export function parseIPv6(text: string): Uint8Array | undefined {
  if (text.length === 0 || text.length > 45) return undefined;
  let head = text;
  let tail4: Uint8Array | undefined;
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.indexOf('.', lastColon) > lastColon) {
    tail4 = parseIPv4(text.slice(lastColon + 1));
    if (!tail4) return undefined;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const groups = s.split(':');
    const out: number[] = [];
    for (const g of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = parseGroups(halves[0]!);
  const right = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!left || !right) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - left.length - right.length;
    if (missing < 1) return undefined;
    groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  } else {
    groups = left;
  }
  if (groups.length !== 8) return undefined;
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i]! >> 8;
    out[2 * i + 1] = groups[i]! & 0xff;
  }
  if (tail4) out.set(tail4, 12);
  return out;
}

/** Parses an address as a 16-byte table address and its family. */
export function parseAddress(text: string): { family: Family; addr: Uint8Array } | undefined {
  const v4 = parseIPv4(text);
  if (v4) {
    const addr = new Uint8Array(16);
    addr.set(v4, 0);
    return { family: 4, addr };
  }
  const v6 = parseIPv6(text);
  return v6 ? { family: 6, addr: v6 } : undefined;
}

/**
 * Parses "addr" or "addr/len". Returns the prefix or a one-line reason why not; host bits set
 * under the mask are refused (they usually mean a typo in the length).
 */
export function parsePrefix(text: string): Prefix | string {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const parsed = parseAddress(addrText);
  if (!parsed) return `'${text}' is not an IPv4 or IPv6 address or prefix`;
  const max = parsed.family === 4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > max) {
      return `prefix length '${lenText}' in '${text}' is not between 0 and ${max}`;
    }
    len = Number(lenText);
  }
  const masked = maskAddress(parsed.addr, len);
  if (!bytesEqual(masked, parsed.addr)) {
    return `'${text}' has host bits set below /${len} (did you mean ${formatPrefix({ family: parsed.family, addr: masked, len })}?)`;
  }
  return { family: parsed.family, addr: masked, len };
}

export function maskAddress(addr: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, len - 8 * i));
    out[i] = addr[i]! & ((0xff00 >> bits) & 0xff);
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when `inner` lies inside `outer` (same family, at least as long, same leading bits). */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || inner.len < outer.len) return false;
  return bytesEqual(maskAddress(inner.addr, outer.len), outer.addr);
}

/** True when the address (16 bytes, same layout) of the given family lies inside the prefix. */
export function prefixContainsAddress(prefix: Prefix, family: Family, addr: Uint8Array): boolean {
  if (prefix.family !== family) return false;
  return bytesEqual(maskAddress(addr, prefix.len), prefix.addr);
}

export function formatAddress(family: Family, addr: Uint8Array): string {
  if (family === 4) return `${addr[0]}.${addr[1]}.${addr[2]}.${addr[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((addr[2 * i]! << 8) | addr[2 * i + 1]!);
  // Longest run of zero groups (at least two) becomes "::".
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

export function formatPrefix(p: Prefix): string {
  return `${formatAddress(p.family, p.addr)}/${p.len}`;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** A string key that identifies a prefix (family, length, the bytes that hold its bits). */
export function prefixKey(p: Prefix): string {
  let key = `${p.family}/${p.len}/`;
  const bytes = Math.ceil(p.len / 8);
  for (let i = 0; i < bytes; i++) key += HEX[p.addr[i]!];
  return key;
}
