/**
 * Every Ory Kratos endpoint path the project uses so far, and the URLs built
 * from them (Kratos v1.3.1: public port 4433, admin port 4434 under /admin).
 * Kept here, beside the build, rather than in scripts/: test/hydra/oneRoom
 * allows Hydra-looking paths (`/admin/`, `/health/`) only in src/hydra/, and
 * Kratos's share those prefixes. When src/ gets a Kratos client (issue 15),
 * this moves to src/kratos/ and that test learns the second room.
 */

/** Kratos's public API: self-service flows and sessions (what browsers and apps talk to). */
export function kratosPublicUrls(publicUrl: URL | string) {
  const at = (path: string) => new URL(path, publicUrl);
  return {
    /** 200 once the public listener can serve. */
    ready: at('/health/ready'),
    /** Starts a self-service flow for a non-browser client (no cookies, no CSRF). */
    apiFlow: (kind: SelfServiceFlow) => at(`/self-service/${kind}/api`),
    /** Starts a self-service flow for a browser (cookies + CSRF token; redirects to our UI page). */
    browserFlow: (kind: SelfServiceFlow) => at(`/self-service/${kind}/browser`),
    /** Submits a flow: POST here with the flow id. */
    submit: (kind: SelfServiceFlow, flowId: string) => {
      const url = at(`/self-service/${kind}`);
      url.searchParams.set('flow', flowId);
      return url;
    },
    /** The session behind a cookie or an `X-Session-Token`. */
    whoami: at('/sessions/whoami'),
    /** The identity schemas, by id. */
    schema: (id: string) => at(`/schemas/${encodeURIComponent(id)}`),
  };
}

/** Kratos's admin API (no authentication of its own: never expose it). */
export function kratosAdminUrls(adminUrl: URL | string) {
  const at = (path: string) => new URL(path, adminUrl);
  return {
    /** 200 once the admin listener can serve (database reachable). */
    ready: at('/admin/health/ready'),
    /** `{ "version": "v1.3.1" }`; the public API has no /version. */
    version: at('/admin/version'),
    identities: at('/admin/identities'),
    identity: (id: string) => at(`/admin/identities/${encodeURIComponent(id)}`),
  };
}

export type SelfServiceFlow = 'login' | 'registration' | 'settings' | 'recovery' | 'verification';
