import ipaddr from 'ipaddr.js';

/** What Express's `trust proxy` setting takes: off/on, a hop count, or addresses, CIDR ranges and proxy-addr's range names. */
export type TrustProxy = boolean | number | string[];

// proxy-addr's (Express's) names for address ranges.
const RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** One entry of a list: a range name, an IP address, or address/prefix (checked by ipaddr.js, which proxy-addr itself uses). */
function validEntry(entry: string): boolean {
  if (RANGE_NAMES.has(entry)) return true;
  const [address, prefix, extra] = entry.split('/');
  if (extra !== undefined || !address || !ipaddr.isValid(address)) return false;
  // ipaddr.isValid also takes "10" or "0x7f.1": only the usual dotted quad or an IPv6 literal.
  if (!address.includes(':') && !/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (ipaddr.parse(address).kind() === 'ipv6' ? 128 : 32);
}

/**
 * TRUST_PROXY as Express's `trust proxy`: "false" (default: the peer address
 * is the client), "true" (trust every X-Forwarded-For hop: only when nothing
 * but the proxy can reach this server), a number of proxy hops, or a
 * comma-separated list of range names (loopback, linklocal, uniquelocal),
 * addresses and CIDR ranges of the proxies. Throws a message for the variable.
 */
export function parseTrustProxy(raw: string): TrustProxy {
  const value = raw.trim();
  if (value === '' || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops > 32) throw new Error(`must be a hop count from 0 to 32, not ${value}`);
    return hops;
  }
  const entries = value.split(',').map((e) => e.trim());
  const bad = entries.filter((e) => !validEntry(e));
  if (bad.length) {
    throw new Error(
      `must be false, true, a number of proxy hops, or a comma-separated list of loopback, linklocal, uniquelocal, IP addresses and CIDR ranges; not understood: ${bad.map((b) => JSON.stringify(b)).join(', ')}`,
    );
  }
  return entries;
}
