/**
 * The address guard of docs/delivery.md ("Outbound safety"): which literal addresses a delivery may never connect to, and the
 * IPv6 parser it relies on to see through the IPv4-mapped, NAT64 and 6to4 forms.
 */
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isBlockedAddress, literalAddress, parseIpv6 } from '../../../src/outbound/address-policy.js';

/** [address, why it is refused] */
const BLOCKED: [string, string][] = [
  // IPv4
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', '"this network" 0/8'],
  ['10.0.0.1', 'RFC 1918 10/8'],
  ['10.255.255.255', 'RFC 1918 10/8, last address'],
  ['100.64.0.1', 'shared 100.64/10'],
  ['100.127.255.255', 'shared 100.64/10, last address'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback 127/8'],
  ['169.254.0.1', 'link-local'],
  ['169.254.169.254', 'link-local (cloud metadata)'],
  ['172.16.0.1', 'RFC 1918 172.16/12, first'],
  ['172.31.255.255', 'RFC 1918 172.16/12, last'],
  ['192.168.1.1', 'RFC 1918 192.168/16'],
  ['192.0.0.8', 'IETF protocol assignments'],
  ['192.0.2.1', 'documentation'],
  ['198.18.0.1', 'benchmarking'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.9', 'documentation'],
  ['224.0.0.1', 'multicast, first'],
  ['239.255.255.250', 'multicast (SSDP)'],
  ['240.0.0.1', 'reserved 240/4'],
  ['255.255.255.255', 'broadcast'],
  // IPv6
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback, uncompressed'],
  ['0000:0000:0000:0000:0000:0000:0000:0001', 'loopback, zero-padded'],
  ['fe80::1', 'link-local'],
  ['FE80::1', 'link-local, upper case'],
  ['febf:ffff::1', 'link-local fe80::/10, last block'],
  ['fc00::1', 'unique local fc00::/7'],
  ['fd12::1', 'unique local fd00::/8'],
  ['fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'unique local, last address'],
  ['ff02::1', 'multicast, link scope'],
  ['ff0e::1', 'multicast, global scope'],
  ['2001:db8::1', 'documentation'],
  ['100::1', 'discard'],
  // IPv4-mapped
  ['::ffff:10.0.0.1', 'IPv4-mapped RFC 1918, dotted'],
  ['::ffff:7f00:1', 'IPv4-mapped loopback, hex'],
  ['::ffff:127.0.0.1', 'IPv4-mapped loopback, dotted'],
  ['::FFFF:7F00:1', 'IPv4-mapped loopback, upper case'],
  ['0:0:0:0:0:ffff:7f00:1', 'IPv4-mapped loopback, uncompressed'],
  ['::ffff:a9fe:a9fe', 'IPv4-mapped link-local (metadata)'],
  ['::ffff:0.0.0.0', 'IPv4-mapped unspecified'],
  ['::ffff:c0a8:101', 'IPv4-mapped 192.168.1.1'],
  // IPv4-compatible (deprecated, still an embedding)
  ['::127.0.0.1', 'IPv4-compatible loopback'],
  ['::a00:1', 'IPv4-compatible 10.0.0.1'],
  // NAT64 well-known prefix
  ['64:ff9b::7f00:1', 'NAT64 loopback'],
  ['64:ff9b::10.0.0.1', 'NAT64 RFC 1918, dotted'],
  ['64:ff9b::a9fe:a9fe', 'NAT64 link-local'],
  ['64:ff9b::c0a8:101', 'NAT64 192.168.1.1'],
  // 6to4
  ['2002:7f00:1::1', '6to4 loopback'],
  ['2002:a00:1::', '6to4 10.0.0.1'],
  ['2002:a9fe:a9fe::1', '6to4 link-local'],
  ['2002:c0a8:101:1::1', '6to4 192.168.1.1'],
];

const ALLOWED: [string, string][] = [
  ['8.8.8.8', 'public'],
  ['1.1.1.1', 'public'],
  ['9.255.255.255', 'just below 10/8'],
  ['11.0.0.0', 'just above 10/8'],
  ['172.15.255.255', 'just below 172.16/12'],
  ['172.32.0.1', 'just above 172.16/12'],
  ['100.63.255.255', 'just below 100.64/10'],
  ['100.128.0.1', 'just above 100.64/10'],
  ['169.253.255.255', 'just below 169.254/16'],
  ['169.255.0.1', 'just above 169.254/16'],
  ['192.167.255.255', 'just below 192.168/16'],
  ['192.169.0.1', 'just above 192.168/16'],
  ['126.255.255.255', 'just below 127/8'],
  ['128.0.0.1', 'just above 127/8'],
  ['223.255.255.255', 'just below multicast'],
  ['2606:4700::1111', 'public IPv6'],
  ['2001:4860:4860::8888', 'public IPv6 (outside 2001::/23)'],
  ['2a00:1450:4001::1', 'public IPv6'],
  ['::ffff:8.8.8.8', 'IPv4-mapped public, dotted'],
  ['::ffff:808:808', 'IPv4-mapped public, hex'],
  ['64:ff9b::808:808', 'NAT64 public'],
  ['64:ff9b::8.8.8.8', 'NAT64 public, dotted'],
  ['2002:808:808::1', '6to4 public'],
];

describe('isBlockedAddress', () => {
  it.each(BLOCKED)('refuses %s (%s)', (address) => {
    expect(isBlockedAddress(address)).toBe(true);
  });

  it.each(ALLOWED)('allows %s (%s)', (address) => {
    expect(isBlockedAddress(address)).toBe(false);
  });

  it('the tables are made of real addresses (a typo would make a test pass for the wrong reason)', () => {
    for (const [address] of [...BLOCKED, ...ALLOWED]) expect(isIP(address), address).not.toBe(0);
  });

  it.each(['', 'localhost', 'example.com', '1.2.3', '256.1.1.1', '1.2.3.4.5', ':::', '1::2::3', 'not an address'])(
    'refuses %j, which is not an address, rather than guess',
    (text) => {
      expect(isBlockedAddress(text)).toBe(true);
    },
  );

  it('refuses a link-local address with a zone id', () => {
    expect(isBlockedAddress('fe80::1%eth0')).toBe(true);
  });
});

function bytes(...groups: number[]): number[] {
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

describe('parseIpv6', () => {
  it.each<[string, number[]]>([
    ['::', bytes(0, 0, 0, 0, 0, 0, 0, 0)],
    ['::1', bytes(0, 0, 0, 0, 0, 0, 0, 1)],
    ['1::', bytes(1, 0, 0, 0, 0, 0, 0, 0)],
    ['fe80::1', bytes(0xfe80, 0, 0, 0, 0, 0, 0, 1)],
    ['FE80::AbCd', bytes(0xfe80, 0, 0, 0, 0, 0, 0, 0xabcd)],
    ['2001:db8:0:0:1:0:0:1', bytes(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1)],
    ['2001:db8::1:0:0:1', bytes(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1)],
    ['1:2:3:4:5:6:7:8', bytes(1, 2, 3, 4, 5, 6, 7, 8)],
    ['1::3:4:5:6:7:8', bytes(1, 0, 3, 4, 5, 6, 7, 8)],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', new Array<number>(16).fill(0xff)],
    ['::ffff:127.0.0.1', bytes(0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001)],
    ['::ffff:7f00:1', bytes(0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001)],
    ['64:ff9b::192.168.1.1', bytes(0x64, 0xff9b, 0, 0, 0, 0, 0xc0a8, 0x0101)],
    ['1:2:3:4:5:6:1.2.3.4', bytes(1, 2, 3, 4, 5, 6, 0x0102, 0x0304)],
    ['fe80::1%eth0', bytes(0xfe80, 0, 0, 0, 0, 0, 0, 1)],
  ])('parses %s into its 16 bytes', (text, expected) => {
    const parsed = parseIpv6(text);
    expect(parsed).toEqual(expected);
    expect(parsed).toHaveLength(16);
  });

  it.each([
    '',
    ':',
    ':::',
    '1::2::3',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    '1::2:3:4:5:6:7:8',
    ':1::2',
    '1::2:',
    '1:::2',
    '12345::',
    'g::1',
    '::12zz',
    '::00001',
    '::-1',
    '::+1',
    '::ffff:256.0.0.1',
    '::ffff:1.2.3',
    '1.2.3.4',
    'localhost',
  ])('returns null for %j', (text) => {
    expect(parseIpv6(text)).toBeNull();
  });

  it('agrees with node:net on what is an IPv6 address', () => {
    const samples = ['::1', '::12zz', '::00001', '1::2::3', '1:2:3:4:5:6:7:8', '::ffff:1.2.3.4', '0::0', 'abcd::ef01', '::-1', '::+1', '1:2:3:4:5:6:7'];
    for (const sample of samples) expect(parseIpv6(sample) !== null, sample).toBe(isIP(sample) === 6);
  });
});

describe('literalAddress', () => {
  it.each<[string, string | null]>([
    ['127.0.0.1', '127.0.0.1'],
    ['[::1]', '::1'],
    ['[::ffff:7f00:1]', '::ffff:7f00:1'],
    ['localhost', null],
    ['example.com', null],
    ['[not-an-address]', null],
  ])('%s → %s', (hostname, expected) => {
    expect(literalAddress(hostname)).toBe(expected);
  });
});
