/** Hydra's answers and request bodies, as far as this server reads or sends them (Hydra v2 API). */

/** Hydra's view of an OAuth client (admin client lookup); secrets are never returned. */
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

/** A consent the user granted (admin consent sessions list). */
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
