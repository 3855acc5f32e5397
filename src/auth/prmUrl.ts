/**
 * RFC 9728 §3.1: the protected resource metadata of a resource identifier
 * lives at `/.well-known/oauth-protected-resource` inserted between its host
 * and its path (https://example.com/mcp → https://example.com/.well-known/oauth-protected-resource/mcp);
 * a resource at the root has no path to append.
 */
const WELL_KNOWN = '/.well-known/oauth-protected-resource';

/** The metadata URL for `resource`, as named in `WWW-Authenticate: Bearer resource_metadata=…` (RFC 9728 §5.1). */
export function protectedResourceMetadataUrl(resource: URL): string {
  const path = resource.pathname === '/' ? '' : resource.pathname;
  return new URL(WELL_KNOWN + path, resource).href;
}

/** The path that metadata is served at, for mounting its route. */
export function protectedResourceMetadataPath(resource: URL): string {
  return new URL(protectedResourceMetadataUrl(resource)).pathname;
}
