/**
 * The OAuth types the authorization-server facade and the resource server
 * share. Wire shapes come from the SDK's v2 server package (type-only: no
 * code of it runs here), so an SDK move touches this one file; the
 * interfaces below are ours.
 */
import type { OAuthClientInformationFull, OAuthClientMetadata } from '@modelcontextprotocol/server';

export type {
  AuthInfo,
  OAuthClientInformationFull,
  OAuthClientMetadata,
  OAuthErrorResponse,
  OAuthMetadata,
  OAuthProtectedResourceMetadata,
  OAuthTokenVerifier,
} from '@modelcontextprotocol/server';

/** Where OAuth clients are looked up and registered (Hydra, through HydraClientsStore). */
export interface RegisteredClients {
  /** The client `clientId` names, or undefined when there is none (RFC 6749 §2.2). */
  getClient(clientId: string): Promise<OAuthClientInformationFull | undefined>;
  /**
   * Register a client from validated RFC 7591 §2 metadata; the answer is the
   * §3.2.1 client information response. Refusals are OAuthErrors.
   */
  registerClient(metadata: OAuthClientMetadata): Promise<OAuthClientInformationFull>;
}

/** An authorization request that passed every check at /authorize (RFC 6749 §4.1.1, RFC 7636, RFC 8707). */
export interface AuthorizationRequest {
  /** The client's `state`, unchanged; absent when it sent none. */
  state?: string;
  /** The requested scopes, split on single spaces (RFC 6749 §3.3). */
  scopes: string[];
  /** A redirect URI the client registered (a loopback one with any port, RFC 8252 §7.3). */
  redirectUri: string;
  /** PKCE challenge; the method is always S256 (RFC 7636 §4.3). */
  codeChallenge: string;
  /** RFC 8707 §2.1 `resource`, when the client named one. */
  resource?: URL;
  /**
   * OpenID Connect's own authorization parameters the client sent (prompt,
   * max_age, nonce, login_hint, …; OIDC Core §3.1.2.1), handed on to Hydra
   * unchanged: Hydra checks them, and the sign-in step reads prompt and max_age.
   */
  oidc?: Partial<Record<OidcAuthorizationParam, string>>;
}

/** The OIDC authorization parameters /authorize passes through to Hydra. */
export const OIDC_AUTHORIZATION_PARAMS = ['prompt', 'max_age', 'nonce', 'login_hint', 'id_token_hint', 'ui_locales', 'acr_values', 'display'] as const;
export type OidcAuthorizationParam = (typeof OIDC_AUTHORIZATION_PARAMS)[number];
