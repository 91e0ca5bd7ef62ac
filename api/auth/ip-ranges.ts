import { BlockList, isIP } from 'node:net';

/** An address or CIDR range, parsed: `10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`. */
export interface IpRange {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** `::ffff:192.0.2.7` (how a dual-stack socket reports an IPv4 peer) is `192.0.2.7`. */
export function plainAddress(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped?.[1] ?? ip;
}

export function parseIpRange(text: string): IpRange | null {
  const [address = '', prefixText, ...rest] = text.trim().split('/');
  if (rest.length > 0) return null;
  const plain = plainAddress(address);
  const version = isIP(plain);
  if (version === 0) return null;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  const bits = version === 4 ? 32 : 128;
  if (prefixText === undefined) return { address: plain, prefix: bits, family };
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) return null;
  return { address: plain, prefix: Number(prefixText), family };
}

function listOf(ranges: readonly IpRange[]): BlockList {
  const list = new BlockList();
  for (const range of ranges) list.addSubnet(range.address, range.prefix, range.family);
  return list;
}

/** Whether `ip` falls in one of `ranges` (given as text; unparseable entries match nothing). */
export function ipAllowed(ip: string, ranges: readonly string[]): boolean {
  const address = plainAddress(ip);
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  return listOf(ranges.map(parseIpRange).filter((r): r is IpRange => r !== null)).check(address, family);
}

/** Whether every address of `inner` lies in `outer` (CIDR ranges are nested or disjoint). */
export function rangeWithin(inner: IpRange, outer: IpRange): boolean {
  return inner.family === outer.family && inner.prefix >= outer.prefix && listOf([outer]).check(inner.address, inner.family);
}
