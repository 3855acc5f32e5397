import { HydraError, hydraErrorFrom } from './errors.js';
import { type FlowKind, hydraAdminUrls } from './endpoints.js';
import type {
  AcceptConsent,
  AcceptLogin,
  ConsentRequest,
  ConsentSession,
  HydraClient,
  Introspection,
  LoginRequest,
  LogoutRequest,
  RedirectTo,
  RejectRequest,
} from './models.js';
import type { HydraTransport } from './transport.js';

/**
 * A narrow client of Hydra's admin API (port 4445). The admin API has no
 * authentication of its own, so it must only ever be reachable from this
 * server. Every method maps one endpoint; errors become HydraError.
 */
export interface HydraAdmin {
  getClient(clientId: string): Promise<HydraClient | undefined>;
  /** Replace a client's redirect URIs (a JSON Patch on the client). */
  setRedirectUris(clientId: string, uris: string[]): Promise<HydraClient>;
  /** Create a client with an id of our choosing ; an existing id is a HydraError with status 409. */
  createClient(client: Record<string, unknown>): Promise<HydraClient>;
  /** Replace a client whole (PUT); a `client_secret` in the body becomes its secret, none keeps the old one. */
  setClient(clientId: string, client: Record<string, unknown>): Promise<HydraClient>;
  /**
   * Every client whose `owner` is exactly `owner`, following Hydra's `Link:
   * <…>; rel="next"` pages (for operator listings, e.g. machine clients).
   */
  listClientsByOwner(owner: string): Promise<HydraClient[]>;
  /** Delete a client (Hydra deletes its tokens with it); false when there was no such client. */
  deleteClient(clientId: string): Promise<boolean>;
  introspect(token: string): Promise<Introspection>;
  getLoginRequest(challenge: string): Promise<LoginRequest>;
  acceptLoginRequest(challenge: string, body: AcceptLogin): Promise<RedirectTo>;
  rejectLoginRequest(challenge: string, body: RejectRequest): Promise<RedirectTo>;
  getConsentRequest(challenge: string): Promise<ConsentRequest>;
  acceptConsentRequest(challenge: string, body: AcceptConsent): Promise<RedirectTo>;
  rejectConsentRequest(challenge: string, body: RejectRequest): Promise<RedirectTo>;
  getLogoutRequest(challenge: string): Promise<LogoutRequest>;
  acceptLogoutRequest(challenge: string): Promise<RedirectTo>;
  rejectLogoutRequest(challenge: string): Promise<void>;
  /** Every consent `subject` granted, newest first. */
  listConsentSessions(subject: string): Promise<ConsentSession[]>;
  /** Withdraw consent for one client (or all): Hydra also revokes their tokens. */
  revokeConsentSessions(subject: string, clientId?: string): Promise<void>;
  /** End every remembered login of `subject` (sign out everywhere). */
  revokeLoginSessions(subject: string): Promise<void>;
}

export interface HydraAdminOptions {
  /** Base URL of Hydra's admin port, e.g. http://127.0.0.1:4445. */
  adminUrl: URL;
  /** The shared transport: injected fetch, timeout policy, call metrics. */
  transport: HydraTransport;
}

export function hydraAdminClient({ adminUrl, transport }: HydraAdminOptions): HydraAdmin {
  const urls = hydraAdminUrls(adminUrl);
  const withQuery = (u: URL, query: Record<string, string>) => {
    const out = new URL(u);
    for (const [k, v] of Object.entries(query)) out.searchParams.set(k, v);
    return out;
  };
  const call = transport.json;

  const flow = (kind: FlowKind) => {
    const q = (challenge: string) => ({ [`${kind}_challenge`]: challenge });
    return {
      get: <T>(challenge: string) => call<T>('GET', withQuery(urls.flow(kind), q(challenge))),
      accept: (challenge: string, json: unknown) => call<RedirectTo>('PUT', withQuery(urls.flow(kind, 'accept'), q(challenge)), { json }),
      reject: <T>(challenge: string, json: unknown) => call<T>('PUT', withQuery(urls.flow(kind, 'reject'), q(challenge)), { json }),
    };
  };
  const login = flow('login');
  const consent = flow('consent');
  const logout = flow('logout');

  return {
    async getClient(clientId) {
      try {
        return await call<HydraClient>('GET', urls.client(clientId));
      } catch (e) {
        // Hydra answers 401 ("Unable to locate the resource") for unknown ids as well as 404.
        if (e instanceof HydraError && (e.status === 404 || e.status === 401)) return undefined;
        throw e;
      }
    },
    setRedirectUris: (clientId, uris) =>
      call<HydraClient>('PATCH', urls.client(clientId), { json: [{ op: 'replace', path: '/redirect_uris', value: uris }] }),
    createClient: (client) => call<HydraClient>('POST', urls.clients, { json: client }),
    setClient: (clientId, client) => call<HydraClient>('PUT', urls.client(clientId), { json: client }),
    async listClientsByOwner(owner) {
      const all: HydraClient[] = [];
      let next: URL | undefined = withQuery(urls.clients, { owner, page_size: '500' });
      // Bounded: 200 pages of 500 is far beyond any operator's list.
      for (let page = 0; next && page < 200; page++) {
        const res = await transport.send('GET', next);
        if (!res.ok) throw await hydraErrorFrom(res);
        const items = ((await res.json()) as HydraClient[] | null) ?? [];
        all.push(...items);
        next = items.length ? nextPage(res.headers.get('link'), next) : undefined;
      }
      return all;
    },
    async deleteClient(clientId) {
      try {
        await call<void>('DELETE', urls.client(clientId));
        return true;
      } catch (e) {
        if (e instanceof HydraError && (e.status === 404 || e.status === 401)) return false;
        throw e;
      }
    },
    introspect: (token) => call<Introspection>('POST', urls.introspect, { form: new URLSearchParams({ token }) }),
    getLoginRequest: (c) => login.get<LoginRequest>(c),
    acceptLoginRequest: (c, b) => login.accept(c, b),
    rejectLoginRequest: (c, b) => login.reject<RedirectTo>(c, b),
    getConsentRequest: (c) => consent.get<ConsentRequest>(c),
    acceptConsentRequest: (c, b) => consent.accept(c, b),
    rejectConsentRequest: (c, b) => consent.reject<RedirectTo>(c, b),
    getLogoutRequest: (c) => logout.get<LogoutRequest>(c),
    acceptLogoutRequest: (c) => logout.accept(c, undefined),
    rejectLogoutRequest: (c) => logout.reject<void>(c, undefined),
    listConsentSessions: async (subject) =>
      (await call<ConsentSession[] | null>('GET', withQuery(urls.consentSessions, { subject, page_size: '500' }))) ?? [],
    revokeConsentSessions: (subject, clientId) =>
      call<void>('DELETE', withQuery(urls.consentSessions, clientId ? { subject, client: clientId } : { subject, all: 'true' })),
    revokeLoginSessions: (subject) => call<void>('DELETE', withQuery(urls.loginSessions, { subject })),
  };
}

/** The `rel="next"` URL of a Link header (RFC 8288), resolved against the page it came with. */
function nextPage(link: string | null, current: URL): URL | undefined {
  for (const part of link?.split(',') ?? []) {
    const m = /<([^>]*)>\s*;\s*rel="?next"?/.exec(part);
    if (m) return new URL(m[1]!, current);
  }
  return undefined;
}
