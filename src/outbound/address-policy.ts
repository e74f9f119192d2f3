/**
 * Which IP addresses a delivery may connect to. Loopback, private, shared, link-local,
 * unspecified, multicast, documentation and reserved ranges are refused, and so are their
 * IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 forms, which would otherwise smuggle a
 * private IPv4 address past an IPv4-only check.
 */
import { BlockList, isIP } from 'node:net';

const blockedV4 = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // shared address space (carrier-grade NAT)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata lives here)
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and the broadcast address
] as const) {
  blockedV4.addSubnet(network, prefix, 'ipv4');
}

const blockedV6 = new BlockList();
for (const [network, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['100::', 64], // discard
  ['2001::', 23], // IETF protocol assignments (Teredo and others)
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation (RFC 9637)
  ['64:ff9b:1::', 48], // local-use NAT64
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  blockedV6.addSubnet(network, prefix, 'ipv6');
}

/** The 16 bytes of an IPv6 address, or null if it does not parse. */
export function parseIpv6(address: string): number[] | null {
  let text = address;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // A dotted IPv4 tail (::ffff:127.0.0.1) becomes its two hex groups first.
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    if (isIP(dotted[2]!) !== 4) return null;
    const [a, b, c, d] = dotted[2]!.split('.').map(Number) as [number, number, number, number];
    text = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  // Each group is 1..4 hex digits (RFC 4291). parseInt alone is lenient ("12zz" → 0x12,
  // "+1" → 1, "1.2.3" → 1), which let junk parse as an address; anything else is NaN here.
  const parse = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((h) => (/^[0-9a-f]{1,4}$/i.test(h) ? parseInt(h, 16) : Number.NaN));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const explicit = head.length + rest.length;
  if (halves.length === 1 ? explicit !== 8 : explicit > 7) return null;
  const groups = [...head, ...new Array<number>(8 - explicit).fill(0), ...rest];
  if (groups.some((g) => Number.isNaN(g) || g < 0 || g > 0xffff)) return null;
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

function v4FromBytes(bytes: number[], offset: number): string {
  return bytes.slice(offset, offset + 4).join('.');
}

/** The IPv4 address an IPv6 address stands for, if it is one of the embedding forms. */
function embeddedIpv4(bytes: number[]): string | null {
  const isZero = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated)
  if (isZero(0, 10) && ((bytes[10] === 0xff && bytes[11] === 0xff) || (bytes[10] === 0 && bytes[11] === 0))) {
    return v4FromBytes(bytes, 12);
  }
  // 64:ff9b::a.b.c.d (well-known NAT64 prefix)
  if (bytes[0] === 0 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && isZero(4, 12)) {
    return v4FromBytes(bytes, 12);
  }
  // 2002:AABB:CCDD::/48 (6to4) carries a.b.c.d in bits 16..48
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return v4FromBytes(bytes, 2);
  return null;
}

/** True if a delivery must not connect to this literal address. */
export function isBlockedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blockedV4.check(address, 'ipv4');
  if (family !== 6) return true; // not an address at all: refuse rather than guess
  const bytes = parseIpv6(address);
  if (!bytes) return true;
  const v4 = embeddedIpv4(bytes);
  if (v4 !== null) return blockedV4.check(v4, 'ipv4');
  // Only global unicast (2000::/3) is ever a public target; everything outside it is loopback,
  // unspecified, local, multicast, IPv4-translated (::ffff:0:a.b.c.d) or reserved for later.
  if ((bytes[0]! & 0xe0) !== 0x20) return true;
  const canonical = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16)).join(':');
  return blockedV6.check(canonical, 'ipv6');
}

/** The host of a URL as an address literal (brackets removed), or null if it is a name. */
export function literalAddress(hostname: string): string | null {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIP(host) === 0 ? null : host;
}

/** `10.0.0.0/8`, `fd00::/8`: an address and a prefix length valid for its family. */
export function isCidr(value: string): boolean {
  const [address, prefix, extra] = value.split('/');
  const family = isIP(address ?? '');
  return extra === undefined && family !== 0 && /^\d+$/.test(prefix ?? '') && Number(prefix) <= (family === 4 ? 32 : 128);
}

function parsedAllowList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address, prefix] = cidr.split('/') as [string, string];
    list.addSubnet(address, Number(prefix), isIP(address) === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/**
 * The rule a deployment applies: blocked ranges refused, unless private targets are allowed
 * outright (HELPDESK_ALLOW_PRIVATE_TARGETS) or the address falls in an allowed range
 * (HELPDESK_ALLOWED_TARGET_CIDRS, checked on the address and on the IPv4 address it embeds).
 */
export class TargetAddressPolicy {
  readonly #allowList: BlockList;

  constructor(
    readonly allowPrivate: boolean,
    readonly allowedCidrs: readonly string[] = [],
  ) {
    this.#allowList = parsedAllowList(allowedCidrs);
  }

  refuses(address: string): boolean {
    if (this.allowPrivate || !isBlockedAddress(address)) return false;
    if (this.allowedCidrs.length === 0) return true;
    const family = isIP(address);
    if (family === 4) return !this.#allowList.check(address, 'ipv4');
    const bytes = parseIpv6(address);
    const v4 = bytes ? embeddedIpv4(bytes) : null;
    if (v4 !== null && this.#allowList.check(v4, 'ipv4')) return false;
    return !this.#allowList.check(address.split('%')[0]!, 'ipv6');
  }
}
