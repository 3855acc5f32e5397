/**
 * A narrow client of Hydra's admin API (port 4445, prefix /admin). The admin
 * API has no authentication of its own, so it must only ever be reachable from
 * this server. Every method maps one endpoint; errors become HydraError.
 */

export type FetchLike = typeof fetch;

/** A failed call to Hydra, carrying Hydra's OAuth-style error body when it sent one. */
export class HydraError extends Error {
  override name = 'HydraError';
  constructor(
    /** HTTP status Hydra answered with; 0 when Hydra could not be reached. */
    readonly status: number,
    /** OAuth error code from Hydra's body (`error`), e.g. "invalid_grant". */
    readonly error: string,
    /** Hydra's human description (`error_description`). */
    readonly description: string,
    options?: { cause?: unknown },
  ) {
    super(`Hydra answered ${status || 'nothing'}: ${error}${description ? ` (${description})` : ''}`, options);
  }
  /** True when Hydra was unreachable or failed on its side. */
  get unavailable(): boolean {
    return this.status === 0 || this.status >= 500;
  }
}

/** Hydra's view of an OAuth client (admin GET /admin/clients/{id}); secrets are never returned. */
export interface HydraClient {
  client_id: string;
  client_name?: string;
  client_uri?: string;
  logo_uri?: string;
  policy_uri?: string;
  tos_uri?: string;
  redirect_uris?: string[] | null;
  grant_types?: string[] | null;
  response_types?: string[] | null;
  scope?: string;
  token_endpoint_auth_method?: string;
  contacts?: string[] | null;
  client_secret_expires_at?: number;
  created_at?: string;
  metadata?: Record<string, unknown> | null;
  owner?: string;
  audience?: string[] | null;
  jwks_uri?: string;
  jwks?: { keys?: Record<string, unknown>[] } | null;
  token_endpoint_auth_signing_alg?: string;
}

/** RFC 7662 answer as Hydra sends it. */
export interface Introspection {
  active: boolean;
  sub?: string;
  client_id?: string;
  scope?: string;
  aud?: string[];
  exp?: number;
  iat?: number;
  nbf?: number;
  iss?: string;
  token_use?: string;
  token_type?: string;
  ext?: Record<string, unknown>;
}

export interface LoginRequest {
  challenge: string;
  skip: boolean;
  subject: string;
  client: HydraClient;
  request_url: string;
  requested_scope?: string[];
  requested_access_token_audience?: string[];
}

export interface ConsentRequest {
  challenge: string;
  skip?: boolean;
  subject?: string;
  client?: HydraClient;
  request_url?: string;
  requested_scope?: string[];
  requested_access_token_audience?: string[];
  login_session_id?: string;
  context?: unknown;
}

export interface LogoutRequest {
  challenge?: string;
  subject?: string;
  sid?: string;
  request_url?: string;
  rp_initiated?: boolean;
  client?: HydraClient | null;
}

export interface AcceptLogin {
  subject: string;
  remember?: boolean;
  remember_for?: number;
  context?: unknown;
}

export interface AcceptConsent {
  grant_scope: string[];
  grant_access_token_audience: string[];
  remember?: boolean;
  remember_for?: number;
  session?: { access_token?: Record<string, unknown>; id_token?: Record<string, unknown> };
}

export interface RejectRequest {
  error: string;
  error_description?: string;
  error_hint?: string;
  status_code?: number;
}

/** A consent the user granted (admin GET /admin/oauth2/auth/sessions/consent). */
export interface ConsentSession {
  consent_request?: { client?: HydraClient; requested_scope?: string[] };
  grant_scope?: string[];
  grant_access_token_audience?: string[];
  remember?: boolean;
  remember_for?: number;
  handled_at?: string;
}

/** Hydra answers accept/reject with the URL to send the browser to next. */
export interface RedirectTo {
  redirect_to: string;
}

export interface HydraAdmin {
  getClient(clientId: string): Promise<HydraClient | undefined>;
  /** Replace a client's redirect URIs (JSON Patch on /admin/clients/{id}). */
  setRedirectUris(clientId: string, uris: string[]): Promise<HydraClient>;
  /** Create a client with an id of our choosing (POST /admin/clients); an existing id is a HydraError with status 409. */
  createClient(client: Record<string, unknown>): Promise<HydraClient>;
  /**
   * Clients whose `owner` is exactly `owner` (GET /admin/clients?owner=…): the
   * only way to read back a client whose id contains "/", which
   * /admin/clients/{id} cannot address (Hydra v2.3's router splits on it).
   */
  findClientsByOwner(owner: string): Promise<HydraClient[]>;
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
  /** Injectable for tests; defaults to the global fetch (undici, kept-alive connections). */
  fetch?: FetchLike;
  /** Per-call timeout in milliseconds. */
  timeoutMs?: number;
  /** Told the duration of every call (for metrics); `call` has ids replaced by placeholders. */
  onCall?: (call: string, seconds: number, ok: boolean) => void;
}

/** Read Hydra's error body ({error, error_description} or {error: {message}}) into a HydraError. */
export async function hydraErrorFrom(res: Response): Promise<HydraError> {
  let error = 'server_error';
  let description = res.statusText;
  try {
    const body = (await res.json()) as Record<string, unknown>;
    if (typeof body.error === 'string') {
      error = body.error;
      description = typeof body.error_description === 'string' ? body.error_description : '';
    } else if (body.error && typeof body.error === 'object') {
      // Hydra's admin API wraps errors as {error: {status, message, reason}}.
      const e = body.error as Record<string, unknown>;
      error = typeof e.status === 'string' ? e.status.toLowerCase().replace(/\s+/g, '_') : error;
      description = [e.message, e.reason].filter((x) => typeof x === 'string' && x).join(': ');
    }
  } catch {
    // Not JSON: keep the status text.
  }
  return new HydraError(res.status, error, description);
}

export function createHydraAdmin(options: HydraAdminOptions): HydraAdmin {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 5000;
  const endpoint = (path: string, query?: Record<string, string>) => {
    const u = new URL(`/admin${path}`, options.adminUrl);
    for (const [k, v] of Object.entries(query ?? {})) u.searchParams.set(k, v);
    return u;
  };

  async function call<T>(method: string, url: URL, body?: { json?: unknown; form?: URLSearchParams }): Promise<T> {
    const started = performance.now();
    const name = `${method} ${url.pathname.replace(/\/clients\/[^/]+/, '/clients/:id')}`;
    let ok = false;
    try {
      const result = await send<T>(method, url, body);
      ok = true;
      return result;
    } finally {
      options.onCall?.(name, (performance.now() - started) / 1000, ok);
    }
  }

  async function send<T>(method: string, url: URL, body?: { json?: unknown; form?: URLSearchParams }): Promise<T> {
    let res: Response;
    try {
      res = await doFetch(url, {
        method,
        headers: body?.json !== undefined
          ? { 'content-type': 'application/json', accept: 'application/json' }
          : body?.form
            ? { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }
            : { accept: 'application/json' },
        body: body?.json !== undefined ? JSON.stringify(body.json) : body?.form?.toString(),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (cause) {
      throw new HydraError(0, 'temporarily_unavailable', 'Hydra admin API unreachable', { cause });
    }
    if (!res.ok) throw await hydraErrorFrom(res);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  const flow = (kind: 'login' | 'consent' | 'logout') => {
    const q = (challenge: string) => ({ [`${kind}_challenge`]: challenge });
    return {
      get: <T>(challenge: string) => call<T>('GET', endpoint(`/oauth2/auth/requests/${kind}`, q(challenge))),
      accept: (challenge: string, json: unknown) =>
        call<RedirectTo>('PUT', endpoint(`/oauth2/auth/requests/${kind}/accept`, q(challenge)), { json }),
      reject: <T>(challenge: string, json: unknown) =>
        call<T>('PUT', endpoint(`/oauth2/auth/requests/${kind}/reject`, q(challenge)), { json }),
    };
  };
  const login = flow('login');
  const consent = flow('consent');
  const logout = flow('logout');

  return {
    async getClient(clientId) {
      try {
        return await call<HydraClient>('GET', endpoint(`/clients/${encodeURIComponent(clientId)}`));
      } catch (e) {
        // Hydra answers 401 ("Unable to locate the resource") for unknown ids as well as 404.
        if (e instanceof HydraError && (e.status === 404 || e.status === 401)) return undefined;
        throw e;
      }
    },
    setRedirectUris: (clientId, uris) =>
      call<HydraClient>('PATCH', endpoint(`/clients/${encodeURIComponent(clientId)}`), {
        json: [{ op: 'replace', path: '/redirect_uris', value: uris }],
      }),
    createClient: (client) => call<HydraClient>('POST', endpoint('/clients'), { json: client }),
    findClientsByOwner: async (owner) =>
      (await call<HydraClient[] | null>('GET', endpoint('/clients', { owner, page_size: '10' }))) ?? [],
    introspect: (token) => call<Introspection>('POST', endpoint('/oauth2/introspect'), { form: new URLSearchParams({ token }) }),
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
      (await call<ConsentSession[] | null>('GET', endpoint('/oauth2/auth/sessions/consent', { subject, page_size: '500' }))) ?? [],
    revokeConsentSessions: (subject, clientId) =>
      call<void>('DELETE', endpoint('/oauth2/auth/sessions/consent', clientId ? { subject, client: clientId } : { subject, all: 'true' })),
    revokeLoginSessions: (subject) => call<void>('DELETE', endpoint('/oauth2/auth/sessions/login', { subject })),
  };
}
