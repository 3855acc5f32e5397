import { lookup as dnsLookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/** One resolved address, as `dns.lookup(host, { all: true })` gives it. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to all its addresses (the seam tests replace: no real DNS offline). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
  );

/** Benchmarking 198.18.0.0/15 (RFC 2544) is missing from ipaddr.js's IPv4 special ranges. */
const BENCHMARKING = ipaddr.parseCIDR('198.18.0.0/15') as [ipaddr.IPv4, number];

/**
 * Why `address` must not be fetched from, or undefined for a public unicast
 * address. An allow-list: only ipaddr.js's `unicast` range passes, so
 * loopback, RFC 1918 private, ULA fc00::/7, link-local (169.254.169.254, the
 * cloud metadata service), multicast, unspecified, CGNAT 100.64/10, reserved,
 * and the IPv6 forms that embed an IPv4 address (mapped ::ffff:0:0/96, NAT64,
 * 6to4, Teredo) are all refused. IPv4-mapped IPv6 is judged as the IPv4
 * address it carries.
 */
export function blockedRange(address: string, opts: { allowLoopback?: boolean } = {}): string | undefined {
  if (!ipaddr.isValid(address)) return 'is not an IP address';
  const ip = ipaddr.process(address);
  const range = ip.range();
  if (range === 'loopback' && opts.allowLoopback) return undefined;
  if (ip.kind() === 'ipv4' && (ip as ipaddr.IPv4).match(BENCHMARKING)) return 'a reserved address';
  if (range === 'unicast') return undefined;
  return RANGE_NAMES[range] ?? `a ${range} address`;
}

const RANGE_NAMES: Record<string, string> = {
  loopback: 'a loopback address',
  private: 'a private address',
  uniqueLocal: 'a private address',
  linkLocal: 'a link-local address',
  multicast: 'a multicast address',
  broadcast: 'a broadcast address',
  unspecified: 'an unspecified address',
  carrierGradeNat: 'a shared (CGNAT) address',
  reserved: 'a reserved address',
};

/** Thrown by the guarded lookup; the message is safe to show a client. */
export class BlockedAddressError extends Error {
  override name = 'BlockedAddressError';
}

/**
 * A `lookup` for `https.request` that resolves, then refuses the connection
 * if any address is not public. The socket connects to an address this
 * function returned, so a DNS answer cannot change between the check and the
 * connection (no rebinding gap). Refusing when any one address is bad is
 * stricter than picking a good one, and harder to game.
 */
export function guardedLookup(opts: { resolver: Resolver; allowLoopback: boolean }): LookupFunction {
  return (hostname, options, callback) => {
    opts.resolver(hostname).then(
      (addresses) => {
        const family = typeof options === 'object' && options ? options.family : undefined;
        const usable = addresses.filter((a) => !family || family === a.family || (family as unknown) === `IPv${a.family}`);
        if (usable.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
        for (const a of usable) {
          const why = blockedRange(a.address, opts);
          if (why) return callback(new BlockedAddressError(`resolves to ${why}`), '', 0);
        }
        if (typeof options === 'object' && options?.all) return (callback as unknown as AllCallback)(null, usable);
        return callback(null, usable[0]!.address, usable[0]!.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}

type AllCallback = (err: NodeJS.ErrnoException | null, addresses: ResolvedAddress[]) => void;

/** For a URL whose host is an IP literal (no lookup happens for those): why it is refused, or undefined. */
export function blockedLiteral(hostname: string, opts: { allowLoopback?: boolean } = {}): string | undefined {
  const bare = hostname.replace(/^\[|\]$/g, '');
  if (!isIP(bare)) return undefined;
  const why = blockedRange(bare, opts);
  return why ? `is ${why}` : undefined;
}
