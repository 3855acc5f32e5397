/**
 * Every Ory Kratos endpoint path the project uses, and the URLs built from
 * them (Kratos v1.3.1: public port 4433, admin port 4434 under /admin).
 * src/kratos/ is Kratos's one room, as src/hydra/ is Hydra's
 * (test/hydra/oneRoom.test.ts checks both).
 */

/** Kratos's public API: self-service flows and sessions (what browsers and apps talk to). */
export function kratosPublicUrls(publicUrl: URL | string) {
  const at = (path: string) => new URL(path, publicUrl);
  return {
    /** 200 once the public listener can serve. */
    ready: at('/health/ready'),
    /** Starts a self-service flow for a non-browser client (no cookies, no CSRF). */
    apiFlow: (kind: SelfServiceKind) => at(`/self-service/${kind}/api`),
    /**
     * Starts a self-service flow for a browser (cookies + CSRF token; redirects to our UI page).
     * `returnTo`: where Kratos sends the browser when the flow succeeds (checked against its allowed_return_urls).
     */
    browserFlow: (kind: SelfServiceKind, returnTo?: string, opts: { refresh?: boolean } = {}) => {
      const url = at(`/self-service/${kind}/browser`);
      if (returnTo) url.searchParams.set('return_to', returnTo);
      // A login flow with refresh=true asks for the password even when a session exists (prompt=login, max_age).
      if (opts.refresh) url.searchParams.set('refresh', 'true');
      return url;
    },
    /** A flow, by id (a browser flow only with the browser's CSRF cookie). */
    flow: (kind: SelfServiceKind, flowId: string) => {
      const url = at(`/self-service/${kind}/flows`);
      url.searchParams.set('id', flowId);
      return url;
    },
    /** An error Kratos stored for its error UI, by id. */
    error: (errorId: string) => {
      const url = at('/self-service/errors');
      url.searchParams.set('id', errorId);
      return url;
    },
    /** Submits a flow: POST here with the flow id. */
    submit: (kind: SelfServiceKind, flowId: string) => {
      const url = at(`/self-service/${kind}`);
      url.searchParams.set('flow', flowId);
      return url;
    },
    /**
     * Starts a browser's logout flow (with its session cookie): Kratos answers
     * the `logout_url` to send the browser to, which ends the session, clears
     * the cookie and goes on to `returnTo` (checked against allowed_return_urls).
     */
    logoutFlow: (returnTo: string) => {
      const url = at('/self-service/logout/browser');
      url.searchParams.set('return_to', returnTo);
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
    /** Every session of an identity (DELETE revokes them all). */
    identitySessions: (id: string) => at(`/admin/identities/${encodeURIComponent(id)}/sessions`),
  };
}

export type SelfServiceKind = 'login' | 'registration' | 'settings' | 'recovery' | 'verification';
