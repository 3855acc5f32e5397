const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Registration policy for redirect URIs (OAuth 2.1 §2.3.1, RFC 8252 §7.3):
 * https anywhere, or http only on a loopback host; no fragment (RFC 6749
 * §3.1.2); no wildcards. Returns why a URI is refused, or undefined if fine.
 */
export function checkRedirectUri(uri: string): string | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return 'is not an absolute URL';
  }
  if (u.hash || uri.includes('#')) return 'must not contain a fragment';
  if (uri.includes('*')) return 'must not contain wildcards';
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:') return LOOPBACK.has(u.hostname) ? undefined : 'must use https unless the host is loopback (localhost, 127.0.0.1, [::1])';
  return `uses the scheme ${u.protocol.replace(/:$/, '')}, only https (or http on loopback) is allowed`;
}
