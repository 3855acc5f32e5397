import { KratosError, kratosErrorFrom } from './errors.js';
import { kratosPublicUrls } from './endpoints.js';
import type { ErrorContainer, SelfServiceFlow, Session } from './models.js';
import type { KratosTransport } from './transport.js';

/** The browser-facing flows our pages render. */
export type BrowserFlowKind = 'login' | 'registration' | 'settings';

/** Kratos's public API as our pages use it, on behalf of the person's browser. */
export interface KratosPublic {
  /** Where to send a browser to start a flow; Kratos sends it to `returnTo` once the flow succeeds. */
  browserFlowUrl(kind: BrowserFlowKind, returnTo?: string, opts?: { refresh?: boolean }): URL;
  /**
   * The active session behind the browser's Cookie header, or undefined when
   * there is none (Kratos's 401, or 403 when it asks for a stronger factor).
   * Asked even without a cookie, so an unreachable Kratos shows up here.
   */
  whoami(cookie: string | undefined): Promise<Session | undefined>;
  /**
   * Kratos's logout URL for the browser behind this Cookie header, returning to
   * `returnTo` once the session is over; undefined when the browser has no
   * Kratos session (Kratos's 401): nothing to end.
   */
  browserLogoutUrl(cookie: string | undefined, returnTo: string): Promise<URL | undefined>;
  /** A flow to render, with the browser's cookie (Kratos checks a browser flow's CSRF cookie). */
  getFlow(kind: BrowserFlowKind, id: string, cookie: string | undefined): Promise<SelfServiceFlow>;
  /** An error Kratos sent the browser to our error page with. */
  getError(id: string): Promise<ErrorContainer>;
  /** Resolves when Kratos's public listener says ready. */
  ready(): Promise<void>;
}

export function kratosPublicClient({ publicUrl, transport }: { publicUrl: URL; transport: KratosTransport }): KratosPublic {
  const urls = kratosPublicUrls(publicUrl);
  const withCookie = (cookie: string | undefined) => (cookie ? { cookie } : undefined);
  return {
    browserFlowUrl: (kind, returnTo, opts) => urls.browserFlow(kind, returnTo, opts),
    async whoami(cookie) {
      const res = await transport.send('GET', urls.whoami, undefined, withCookie(cookie));
      if (res.status === 401 || res.status === 403) {
        await res.arrayBuffer();
        return undefined;
      }
      if (!res.ok) {
        await res.arrayBuffer();
        throw new KratosError(res.status, 'whoami_failed', `whoami answered ${res.status}`);
      }
      const session = (await res.json()) as Session;
      return session.active ? session : undefined;
    },
    async browserLogoutUrl(cookie, returnTo) {
      const res = await transport.send('GET', urls.logoutFlow(returnTo), undefined, withCookie(cookie));
      if (res.status === 401) {
        await res.arrayBuffer();
        return undefined;
      }
      if (!res.ok) throw await kratosErrorFrom(res);
      const { logout_url: logoutUrl } = (await res.json()) as { logout_url?: string };
      if (!logoutUrl || !URL.canParse(logoutUrl)) throw new KratosError(0, 'unavailable', 'Kratos answered a logout flow without a logout_url');
      return new URL(logoutUrl);
    },
    getFlow: (kind, id, cookie) => transport.json<SelfServiceFlow>('GET', urls.flow(kind, id), undefined, withCookie(cookie)),
    getError: (id) => transport.json<ErrorContainer>('GET', urls.error(id)),
    async ready() {
      const res = await transport.send('GET', urls.ready);
      await res.arrayBuffer();
      if (!res.ok) throw new KratosError(res.status, 'not_ready', `${urls.ready.pathname} answered ${res.status}`);
    },
  };
}
