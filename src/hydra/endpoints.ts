/**
 * Every Hydra endpoint path this server uses, and the URLs built from them.
 * The one place outside Hydra's own docs where its routes are spelled out
 * (Hydra v2 API: public port 4444, admin port 4445 under /admin).
 */

/** Hydra's public port, as this server (not a browser) reaches it. */
export function hydraPublicUrls(publicUrl: URL | string) {
  const at = (path: string) => new URL(path, publicUrl);
  return {
    /** RFC 6749 §3.2 token endpoint; token requests are forwarded here. */
    token: at('/oauth2/token'),
    /** RFC 7009 revocation endpoint. */
    revoke: at('/oauth2/revoke'),
    /** The key set JWT access tokens are signed with. */
    jwks: at('/.well-known/jwks.json'),
    /** OpenID Connect discovery (v2.3 has no RFC 8414 path). */
    discovery: at('/.well-known/openid-configuration'),
  };
}

/**
 * Hydra's authorization endpoint as a browser reaches it. Resolved relative to
 * the issuer's path too (an issuer may be https://host/hydra), unlike the
 * server-side URLs above.
 */
export function hydraAuthorizationUrl(browserUrl: URL): URL {
  const base = new URL(browserUrl.href.endsWith('/') ? browserUrl.href : `${browserUrl.href}/`);
  return new URL('oauth2/auth', base);
}

/** Hydra's admin port (no authentication of its own: never expose it). */
export function hydraAdminUrls(adminUrl: URL | string) {
  const at = (path: string) => new URL(path, adminUrl);
  return {
    /** 200 once Hydra can serve (database reachable). */
    ready: at('/health/ready'),
    version: at('/version'),
    clients: at('/admin/clients'),
    client: (id: string) => at(`/admin/clients/${encodeURIComponent(id)}`),
    introspect: at('/admin/oauth2/introspect'),
    flow: (kind: FlowKind, step?: 'accept' | 'reject') => at(`/admin/oauth2/auth/requests/${kind}${step ? `/${step}` : ''}`),
    loginSessions: at('/admin/oauth2/auth/sessions/login'),
    consentSessions: at('/admin/oauth2/auth/sessions/consent'),
  };
}

export type FlowKind = 'login' | 'consent' | 'logout';

/** A metric label for a call: the path with client ids replaced by a placeholder (bounded label values). */
export function callName(method: string, url: URL): string {
  return `${method} ${url.pathname.replace(/\/clients\/[^/]+/, '/clients/:id')}`;
}
