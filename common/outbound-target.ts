import { lookup, Resolver } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/** Addresses no public receiver has: private, loopback, link-local, CGNAT, documentation, multicast, reserved. */
const NOT_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) NOT_PUBLIC.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23], ['2001:db8::', 32],
  ['fc00::', 7], ['fe80::', 10], ['ff00::', 8],
] as const) NOT_PUBLIC.addSubnet(network, prefix, 'ipv6');

export function isPublicAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return isPublicAddress(mapped[1] as string);
  const family = isIP(address);
  if (family === 0) return false;
  return !NOT_PUBLIC.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

const DNS_TIMEOUT_MS = 3000;
// c-ares, not getaddrinfo: a name server that never answers cannot tie up libuv's small thread pool.
const resolver = new Resolver({ timeout: DNS_TIMEOUT_MS, tries: 2 });

/** Every address of a name, from DNS, or from the hosts file for names DNS does not know (localhost, local aliases). */
async function addressesOf(host: string): Promise<{ address: string; family: number }[]> {
  const answers = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
  const found = answers.flatMap((answer, i) => (answer.status === 'fulfilled' ? answer.value.map((address) => ({ address, family: i === 0 ? 4 : 6 })) : []));
  if (found.length > 0) return found;
  const unknown = answers.every((answer) => answer.status === 'rejected' && ['ENOTFOUND', 'ENODATA'].includes((answer.reason as NodeJS.ErrnoException).code ?? ''));
  if (!unknown) throw new Error('the name servers did not answer');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error('the lookup timed out')), DNS_TIMEOUT_MS)));
  try {
    return await Promise.race([lookup(host, { all: true, verbatim: true }), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface OutboundTarget {
  url: URL;
  /** The address every request of this attempt goes to (resolved once: no DNS rebinding). */
  address: string;
  family: 4 | 6;
}

/** Why a webhook URL is refused before anything resolves, or null. */
export function urlProblem(raw: string, allowPrivate: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.username || url.password) return 'must not carry credentials';
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) {
    return allowPrivate ? 'must be an http:// or https:// URL' : 'must be an https:// URL (http:// needs the webhook_allow_private_targets setting)';
  }
  if (!allowPrivate && url.port !== '' && url.port !== '443') return 'must use port 443 (other ports need the webhook_allow_private_targets setting)';
  return null;
}

/**
 * Resolves a webhook URL to the one address its requests will use. Every address the name
 * resolves to must be public unless private targets are allowed: one private answer among
 * public ones is how a rebinding attack starts.
 */
export async function resolveTarget(raw: string, allowPrivate: boolean): Promise<OutboundTarget> {
  const problem = urlProblem(raw, allowPrivate);
  if (problem) throw new Error(`the URL ${problem}`);
  const url = new URL(raw);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: { address: string; family: number }[];
  try {
    addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await addressesOf(host);
  } catch (error) {
    throw new Error(`${host} does not resolve (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const blocked = allowPrivate ? undefined : addresses.find((a) => !isPublicAddress(a.address));
  if (blocked) throw new Error(`${host} resolves to ${blocked.address}, which is not a public address (allowed only with the webhook_allow_private_targets setting)`);
  const [first] = addresses;
  if (!first) throw new Error(`${host} does not resolve`);
  return { url, address: first.address, family: first.family === 6 ? 6 : 4 };
}
