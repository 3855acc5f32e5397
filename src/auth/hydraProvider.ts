import type { Response } from 'express';
import type { AuthorizationParams, OAuthServerProvider, OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { randomBytes } from 'node:crypto';
import { CustomOAuthError, InvalidRequestError, InvalidTargetError, ServerError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import type { OAuthClientInformationFull, OAuthTokenRevocationRequest, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { Logger } from '../log/logger.js';
import type { FetchLike } from './hydraAdmin.js';
import type { HydraClientsStore } from './hydraClients.js';
import type { ResourceSet } from './resource.js';

export interface HydraProviderOptions {
  /** Hydra's public URL as this server reaches it: /oauth2/token and /oauth2/revoke. */
  hydraPublicUrl: URL;
  /**
   * Hydra's public URL as browsers reach it, for the /oauth2/auth redirect.
   * Hydra's issuer is that URL; in a container network it differs from
   * `hydraPublicUrl` (http://hydra:4444 vs http://127.0.0.1:4444).
   */
  hydraBrowserUrl: URL;
  clientsStore: HydraClientsStore;
  verifier: OAuthTokenVerifier;
  /** This server's resource URLs; the only `resource` values we accept (RFC 8707). */
  resources: ResourceSet;
  log: Logger;
  fetch?: FetchLike;
}

/** What Hydra answered to a forwarded token or revocation request, passed on verbatim. */
export interface ForwardedResponse {
  status: number;
  body: unknown;
}

/**
 * The SDK's OAuthServerProvider, backed by Ory Hydra. Hydra is the real
 * authorization server: it checks PKCE, client secrets, codes and refresh
 * tokens. This class only moves requests to it, so nothing here stores tokens.
 *
 * Token and revocation requests arrive through `forward()` (see tokenProxy.ts)
 * with the client's credentials exactly as presented, because Hydra never
 * returns client secrets and so it alone can authenticate confidential clients.
 */
export class HydraProvider implements OAuthServerProvider {
  /** Hydra validates PKCE at its token endpoint (oauth2.pkce.enforced_for_public_clients). */
  readonly skipLocalPkceValidation = true;
  private readonly fetch: FetchLike;

  constructor(private readonly options: HydraProviderOptions) {
    this.fetch = options.fetch ?? fetch;
  }

  get clientsStore(): HydraClientsStore {
    return this.options.clientsStore;
  }

  /**
   * Send the browser to Hydra with the client's own redirect URI, state, PKCE
   * challenge and scopes. `resource` rides along in the URL: Hydra ignores it,
   * but our consent step reads it back from the request URL (RFC 8707 §2).
   */
  async authorize(client: OAuthClientInformationFull, params: AuthorizationParams, res: Response): Promise<void> {
    if (params.resource && !this.options.resources.match(params.resource)) {
      throw new InvalidTargetError(`This server only issues tokens for ${this.options.resources.canonical.join(', ')}`);
    }
    const state = stateForHydra(params.state);
    await this.options.clientsStore.allowLoopbackPort(client, params.redirectUri);
    const target = new URL('oauth2/auth', withSlash(this.options.hydraBrowserUrl));
    const q = target.searchParams;
    q.set('client_id', client.client_id);
    q.set('response_type', 'code');
    q.set('redirect_uri', params.redirectUri);
    q.set('code_challenge', params.codeChallenge);
    q.set('code_challenge_method', 'S256');
    if (params.scopes?.length) q.set('scope', params.scopes.join(' '));
    q.set('state', state);
    if (params.resource) q.set('resource', params.resource.href);
    res.redirect(302, target.href);
  }

  /** Unused: PKCE is checked by Hydra (skipLocalPkceValidation). */
  async challengeForAuthorizationCode(): Promise<string> {
    throw new ServerError('PKCE is verified by Hydra');
  }

  async exchangeAuthorizationCode(
    client: OAuthClientInformationFull,
    code: string,
    codeVerifier?: string,
    redirectUri?: string,
  ): Promise<OAuthTokens> {
    const form = new URLSearchParams({ grant_type: 'authorization_code', code, client_id: client.client_id });
    if (codeVerifier) form.set('code_verifier', codeVerifier);
    if (redirectUri) form.set('redirect_uri', redirectUri);
    return this.tokensOrThrow(await this.forward('/oauth2/token', form, clientAuth(client)));
  }

  async exchangeRefreshToken(client: OAuthClientInformationFull, refreshToken: string, scopes?: string[]): Promise<OAuthTokens> {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: client.client_id });
    if (scopes?.length) form.set('scope', scopes.join(' '));
    return this.tokensOrThrow(await this.forward('/oauth2/token', form, clientAuth(client)));
  }

  async revokeToken(client: OAuthClientInformationFull, request: OAuthTokenRevocationRequest): Promise<void> {
    const form = new URLSearchParams({ token: request.token, client_id: client.client_id });
    if (request.token_type_hint) form.set('token_type_hint', request.token_type_hint);
    const answer = await this.forward('/oauth2/revoke', form, clientAuth(client));
    if (answer.status >= 400) throw oauthErrorFrom(answer);
  }

  verifyAccessToken(token: string): Promise<AuthInfo> {
    return this.options.verifier.verifyAccessToken(token);
  }

  /**
   * POST a form to Hydra's public `path` with the client's own authentication
   * (an `Authorization: Basic` header, or client_id/client_secret in the form)
   * and return Hydra's status and JSON body unchanged.
   */
  async forward(path: '/oauth2/token' | '/oauth2/revoke', form: URLSearchParams, authorization?: string): Promise<ForwardedResponse> {
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    if (authorization) headers.authorization = authorization;
    let res: globalThis.Response;
    try {
      res = await this.fetch(new URL(path, this.options.hydraPublicUrl), {
        method: 'POST',
        headers,
        body: form.toString(),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      this.options.log.error('Hydra unreachable', { path, error });
      return {
        status: 503,
        body: { error: 'temporarily_unavailable', error_description: 'The authorization server is unavailable, try again' },
      };
    }
    const text = await res.text();
    let body: unknown = {};
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = { error: 'server_error', error_description: 'The authorization server sent an unreadable answer' };
    }
    if (res.status >= 400) {
      const b = body as { error?: string; error_description?: string };
      this.options.log.info('Hydra refused', { path, status: res.status, hydra_error: b.error, detail: b.error_description });
    }
    return { status: res.status, body };
  }

  private tokensOrThrow(answer: ForwardedResponse): OAuthTokens {
    if (answer.status >= 400) throw oauthErrorFrom(answer);
    return answer.body as OAuthTokens;
  }
}

/**
 * Hydra requires a `state` of at least 8 characters and refuses the request
 * after sign-in otherwise (`invalid_state`). OAuth 2.1 §4.1.1 lets a PKCE
 * client omit it, so one is supplied (the client gets it back and, having
 * sent none, ignores it). A short one cannot be lengthened, since the client
 * compares it on return: it is refused here, before the person signs in,
 * with the rule named (redirected to the client as invalid_request).
 */
export function stateForHydra(state: string | undefined): string {
  if (state === undefined || state === '') return randomBytes(16).toString('base64url');
  if (state.length < MIN_STATE_LENGTH) {
    throw new InvalidRequestError(
      `state must be at least ${MIN_STATE_LENGTH} characters (the authorization server's minimum); send a longer state or none`,
    );
  }
  return state;
}

const MIN_STATE_LENGTH = 8;

/** Resolve relative to the issuer's path too (an issuer may be https://host/hydra). */
function withSlash(u: URL): URL {
  return new URL(u.href.endsWith('/') ? u.href : `${u.href}/`);
}

/** Basic credentials for a client whose secret we hold (only the SDK's own handlers pass one). */
function clientAuth(client: OAuthClientInformationFull): string | undefined {
  if (!client.client_secret) return undefined;
  const enc = (s: string) => encodeURIComponent(s);
  return `Basic ${Buffer.from(`${enc(client.client_id)}:${enc(client.client_secret)}`).toString('base64')}`;
}

/** Hydra's OAuth error, passed on as the same OAuth error (not a 500). */
function oauthErrorFrom(answer: ForwardedResponse): CustomOAuthError {
  const b = answer.body as { error?: string; error_description?: string };
  return new CustomOAuthError(b.error ?? 'server_error', b.error_description ?? 'Request refused by the authorization server');
}
