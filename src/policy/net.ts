// Addresses and prefixes as the kernel tables hold them: 16 bytes, IPv4 in the first four,
// with the family kept beside the address so that ::/0 never matches an IPv4 packet. Addresses
// themselves are parsed and formatted by the datapath's address codec (src/datapath/address.ts).
import { formatAddress, parseAddress, type IpVersion } from '../datapath';

export interface Prefix {
  /** 4 or 6; the kernel's keys carry the address family instead (addressFamilyOf). */
  family: IpVersion;
  /** 16 bytes; an IPv4 address uses bytes 0..3, the rest are zero. */
  addr: Uint8Array;
  /** 0..32 for IPv4, 0..128 for IPv6. */
  len: number;
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
export function prefixContainsAddress(prefix: Prefix, family: IpVersion, addr: Uint8Array): boolean {
  if (prefix.family !== family) return false;
  return bytesEqual(maskAddress(addr, prefix.len), prefix.addr);
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
