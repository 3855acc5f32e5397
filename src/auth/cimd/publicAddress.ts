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

/**
 * IPv6 global unicast (RFC 4291 §2.4, IANA's IPv6 address space registry):
 * everything outside it is refused, so a range ipaddr.js does not yet name
 * (as 5f00::/16 once was) cannot pass as "unicast".
 */
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3') as [ipaddr.IPv6, number];

/**
 * Why `address` must not be fetched from, or undefined for a public unicast
 * address. An allow-list: only ipaddr.js's `unicast` range passes (its list
 * follows IANA's special-purpose registries: loopback, RFC 1918 private, ULA
 * fc00::/7, link-local (169.254.169.254, the cloud metadata service),
 * multicast, unspecified, CGNAT 100.64/10, documentation, benchmarking,
 * AS112, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4, Teredo, site-local
 * fec0::/10, SRv6 5f00::/16, reserved), and an IPv6 address must also be
 * global unicast. IPv4-mapped IPv6 is judged as the IPv4 address it carries.
 */
export function blockedRange(address: string, opts: { allowLoopback?: boolean } = {}): string | undefined {
  if (!ipaddr.isValid(address)) return 'is not an IP address';
  const ip = ipaddr.process(address);
  const range = ip.range();
  if (range === 'loopback' && opts.allowLoopback) return undefined;
  if (range !== 'unicast') return RANGE_NAMES[range] ?? `a ${range} address`;
  if (ip.kind() === 'ipv6' && !(ip as ipaddr.IPv6).match(GLOBAL_UNICAST_V6)) return 'not a global unicast address';
  return undefined;
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
  deprecatedSiteLocal: 'a site-local address',
  segmentRouting: 'a segment routing (SRv6) address',
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
