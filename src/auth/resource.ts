/**
 * RFC 8707 resource indicators. This server is one protected resource with
 * two URLs: the Streamable HTTP endpoint (/mcp, the primary) and the legacy
 * SSE endpoint (/sse), since MCP clients check that the PRM `resource` names
 * the URL they connect to. Hydra ignores the `resource` parameter, so consent
 * reads it from the original authorization request and grants our URLs as
 * the token audience only when the request names one of them, or none.
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

export class ResourceSet {
  /** Canonical forms of our URLs, primary first. */
  readonly canonical: readonly string[];

  constructor(readonly urls: readonly URL[]) {
    if (urls.length === 0) throw new TypeError('ResourceSet needs at least one resource URL');
    this.canonical = urls.map((u) => {
      const c = canonicalResource(u);
      if (!c) throw new TypeError(`resource URL ${u.href} must be http(s)`);
      return c;
    });
  }

  /** The MCP endpoint URL. */
  get primary(): URL {
    return this.urls[0]!;
  }

  /** Our canonical URL that `value` names (trailing slash and default port ignored), if any. */
  match(value: string | URL): string | undefined {
    const c = canonicalResource(value);
    return c === undefined ? undefined : this.canonical.find((x) => x === c);
  }

  /**
   * The audience consent grants for an authorization request (`request_url`
   * as Hydra reports it). No `resource` (clients before MCP 2025-06-18): all
   * our URLs. Otherwise only those of ours it names; never anything else.
   */
  audienceFor(requestUrl: string | undefined): string[] {
    let requested: string[] = [];
    if (requestUrl) {
      try {
        requested = new URL(requestUrl, 'http://invalid.local').searchParams.getAll('resource');
      } catch {
        requested = [];
      }
    }
    if (requested.length === 0) return [...this.canonical];
    return [...new Set(requested.map((r) => this.match(r)).filter((x): x is string => x !== undefined))];
  }
}
