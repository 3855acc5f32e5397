import type { Response } from 'express';
import { randomBytes } from 'node:crypto';
import { type ForwardedResponse, HydraError, type HydraPublic, hydraAuthorizationUrl } from '../hydra/index.js';
import type { Logger } from '../log/logger.js';
import type { HydraClientsStore } from './hydraClients.js';
import type { CimdForHydra, ForHydra } from './cimd/cimdTokenAuth.js';
import { InvalidClientError, InvalidRequestError, InvalidTargetError, OAuthError } from './oauthErrors.js';
import type { ResourceSet } from './resource.js';
import type { AuthInfo, AuthorizationRequest, OAuthClientInformationFull, OAuthTokenVerifier } from './types.js';

export interface HydraProviderOptions {
  /** Hydra's public API as this server reaches it: token and revocation are forwarded there. */
  hydraPublic: HydraPublic;
  /**
   * Hydra's public URL as browsers reach it, for the authorization redirect.
   * Hydra's issuer is that URL; in a container network it differs from
   * `hydraPublicUrl` (http://hydra:4444 vs http://127.0.0.1:4444).
   */
  hydraBrowserUrl: URL;
  clientsStore: HydraClientsStore;
  verifier: OAuthTokenVerifier;
  /** This server's resource URLs; the only `resource` values we accept (RFC 8707). */
  resources: ResourceSet;
  log: Logger;
  /**
   * Authenticates clients Hydra cannot (metadata document clients: their
   * mirror's credentials replace theirs; cimd/cimdTokenAuth.ts) before a
   * token or revocation request goes on. Default: every request as presented.
   */
  forHydra?: CimdForHydra;
}

/**
 * The authorization server behind our endpoints: Ory Hydra. Hydra is the
 * real authorization server: it checks PKCE (oauth2.pkce.enforced_for_public_clients),
 * client secrets, codes and refresh tokens. This class only moves requests
 * to it, so nothing here stores tokens.
 *
 * Token and revocation requests have one path: tokenProxy.ts calls `forward()`
 * with the client's credentials exactly as presented (Basic header, form
 * secret or RFC 7523 `client_assertion`), because Hydra never returns client
 * secrets and so it alone can authenticate confidential clients.
 */
export class HydraProvider {
  constructor(private readonly options: HydraProviderOptions) {}

  get clientsStore(): HydraClientsStore {
    return this.options.clientsStore;
  }

  /**
   * Send the browser to Hydra with the client's own redirect URI, state, PKCE
   * challenge and scopes. `resource` rides along in the URL: Hydra ignores it,
   * but our consent step reads it back from the request URL (RFC 8707 §2).
   */
  async authorize(client: OAuthClientInformationFull, params: AuthorizationRequest, res: Response): Promise<void> {
    if (params.resource && !this.options.resources.match(params.resource)) {
      throw new InvalidTargetError(`This server only issues tokens for ${this.options.resources.canonical.join(', ')}`);
    }
    const state = stateForHydra(params.state);
    await this.options.clientsStore.allowLoopbackPort(client, params.redirectUri);
    const target = hydraAuthorizationUrl(this.options.hydraBrowserUrl);
    const q = target.searchParams;
    // A metadata document client is known to Hydra by its mirror's id.
    q.set('client_id', this.options.clientsStore.hydraIdOf(client.client_id));
    q.set('response_type', 'code');
    q.set('redirect_uri', params.redirectUri);
    q.set('code_challenge', params.codeChallenge);
    q.set('code_challenge_method', 'S256');
    if (params.scopes.length) q.set('scope', params.scopes.join(' '));
    q.set('state', state);
    if (params.resource) q.set('resource', params.resource.href);
    for (const [name, value] of Object.entries(params.oidc ?? {})) q.set(name, value);
    res.redirect(302, target.href);
  }

  verifyAccessToken(token: string): Promise<AuthInfo> {
    return this.options.verifier.verifyAccessToken(token);
  }

  /**
   * Forward a token or revocation form to Hydra with the client's own
   * authentication and return Hydra's status and JSON body unchanged; an
   * unreachable Hydra is a 503 `temporarily_unavailable` (RFC 6749 §5.2).
   */
  async forward(endpoint: 'token' | 'revoke', form: URLSearchParams, authorization?: string): Promise<ForwardedResponse> {
    let request: ForHydra = authorization === undefined ? { form } : { form, authorization };
    try {
      if (this.options.forHydra) request = await this.options.forHydra(form, authorization);
    } catch (error) {
      if (!(error instanceof OAuthError)) throw error;
      this.options.log.info('client refused before Hydra', { endpoint, error: error.errorCode, detail: error.message });
      // RFC 6749 §5.2: a client that failed to authenticate gets 401 at the token endpoint.
      return { status: error instanceof InvalidClientError ? 401 : error.status, body: error.toResponseObject() };
    }
    let answer: ForwardedResponse;
    try {
      answer = await this.options.hydraPublic.forward(endpoint, request.form, request.authorization);
    } catch (error) {
      if (!(error instanceof HydraError)) throw error;
      this.options.log.error('Hydra unreachable', { endpoint, error });
      return {
        status: 503,
        body: { error: 'temporarily_unavailable', error_description: 'The authorization server is unavailable, try again' },
      };
    }
    if (answer.status >= 400) {
      const b = answer.body as { error?: string; error_description?: string };
      this.options.log.info('Hydra refused', { endpoint, status: answer.status, hydra_error: b.error, detail: b.error_description });
      return clientFacing(answer);
    }
    if (endpoint === 'token' && request.cimdUrl) await this.options.clientsStore.tokenIssued(request.cimdUrl);
    return answer;
  }
}

/**
 * What a client is told of Hydra's refusal. Hydra's 5xx answers describe its
 * own outgoing calls ("Unable to fetch JSON Web Keys from location '…'",
 * and what that host answered): passed on, they would make /token a probe
 * of other hosts. A failure to get the client's keys is the client failing
 * to authenticate (RFC 6749 §5.2 invalid_client); any other 5xx is a bare
 * server_error. The detail stays in our log. 4xx answers are about the
 * request itself and pass unchanged.
 */
function clientFacing(answer: ForwardedResponse): ForwardedResponse {
  if (answer.status < 500) return answer;
  const description = String((answer.body as { error_description?: unknown }).error_description ?? '');
  if (/JSON Web Key/i.test(description)) {
    return { status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed: the client assertion could not be verified with the client’s registered keys' } };
  }
  return { status: answer.status, body: { error: 'server_error', error_description: 'The authorization server could not complete the request' } };
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
