const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Schemes a browser would run, render or hand to something other than the
 * client app: never a place to send an authorization code. `ws(s)` and `ftp`
 * are network schemes no browser navigates to; `intent` and `view-source`
 * are browser-internal.
 */
const REFUSED_SCHEMES = new Set([
  'javascript',
  'data',
  'file',
  'vbscript',
  'blob',
  'about',
  'ws',
  'wss',
  'ftp',
  'filesystem',
  'view-source',
  'intent',
  'chrome',
  'mailto',
  'tel',
  'sms',
]);

/** RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). */
const SCHEME = /^[a-z][a-z0-9+.-]*$/;

/**
 * Registration policy for redirect URIs (OAuth 2.1 §2.3.1, RFC 8252 §7):
 * - https anywhere;
 * - http only on a loopback host (RFC 8252 §7.3; any port, see HydraClientsStore);
 * - a native app's private-use scheme (RFC 8252 §7.1): reverse-DNS
 *   (`com.example.app:/cb`) and the short schemes real clients register
 *   (`cursor://`, `claude://`, `vscode://`); the OS hands them to the app;
 * - never a fragment (RFC 6749 §3.1.2), a wildcard, userinfo (`https://a@b`,
 *   which reads as one host and goes to another), or a scheme in REFUSED_SCHEMES.
 * Returns why a URI is refused, or undefined if it is fine.
 */
export function checkRedirectUri(uri: string): string | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return 'is not an absolute URL';
  }
  const scheme = u.protocol.replace(/:$/, '');
  if (!SCHEME.test(scheme)) return `has an invalid scheme ${JSON.stringify(scheme)}`;
  if (REFUSED_SCHEMES.has(scheme)) return `uses the scheme ${scheme}, which is not allowed for redirects`;
  if (u.hash || uri.includes('#')) return 'must not contain a fragment';
  if (uri.includes('*')) return 'must not contain wildcards';
  if (u.username || u.password || hasUserinfo(uri)) return 'must not contain user credentials (user@host)';
  if (scheme === 'https') return u.hostname ? undefined : 'must name a host';
  if (scheme === 'http') {
    return LOOPBACK.has(u.hostname) ? undefined : 'must use https unless the host is loopback (localhost, 127.0.0.1, [::1])';
  }
  // A private-use scheme: the app owns everything after it; an empty one redirects nowhere.
  return uri.length > scheme.length + 1 ? undefined : 'names a scheme but no path';
}

/** `scheme://user@host`: WHATWG URL drops an empty userinfo (`https://@host`), so look at the raw authority too. */
function hasUserinfo(uri: string): boolean {
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(uri)?.[1];
  return authority !== undefined && authority.includes('@');
}

/**
 * Whether a redirect URI an authorization request names matches one the
 * client registered (RFC 6749 §3.1.2.3: simple string comparison), except
 * that on a loopback host the port may differ: RFC 8252 §7.3 says the server
 * "MUST allow any port to be specified at the time of the request for
 * loopback IP redirect URIs", since native apps get an ephemeral port.
 * Scheme, host (written the same way: localhost is not 127.0.0.1), path and
 * query must still be equal.
 */
export function matchesRegisteredRedirectUri(requested: string, registered: string): boolean {
  if (requested === registered) return true;
  if (!URL.canParse(requested) || !URL.canParse(registered)) return false;
  const a = new URL(requested);
  const b = new URL(registered);
  if (!LOOPBACK.has(a.hostname) || !LOOPBACK.has(b.hostname)) return false;
  return a.protocol === b.protocol && a.hostname === b.hostname && a.pathname === b.pathname && a.search === b.search;
}
