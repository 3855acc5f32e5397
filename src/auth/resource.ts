/**
 * RFC 8707 resource indicators. Hydra ignores the `resource` parameter, so the
 * consent step reads it from the original authorization request and grants
 * this server's URL as the token audience only when it names us.
 */

/** Canonical form for comparison: scheme + host (default port dropped) + path without trailing slash. */
export function canonicalResource(value: string | URL): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
  const path = u.pathname.replace(/\/+$/, '');
  return `${u.protocol}//${u.host}${path}`;
}

export function isSameResource(a: string | URL, b: string | URL): boolean {
  const ca = canonicalResource(a);
  return ca !== undefined && ca === canonicalResource(b);
}

/**
 * The audience consent grants for an authorization request. MCP clients send
 * `resource=<MCP URL>` (MCP 2025-06-18 "Resource Parameter Implementation");
 * older clients send none. We grant our own resource URL when the request
 * names it or names nothing, and never a resource that is not ours.
 */
export function audienceToGrant(requestUrl: string | undefined, resourceUrl: URL): string[] {
  let resources: string[] = [];
  if (requestUrl) {
    try {
      resources = new URL(requestUrl, 'http://invalid.local').searchParams.getAll('resource');
    } catch {
      resources = [];
    }
  }
  if (resources.length === 0) return [canonicalResource(resourceUrl)!];
  return resources.some((r) => isSameResource(r, resourceUrl)) ? [canonicalResource(resourceUrl)!] : [];
}
