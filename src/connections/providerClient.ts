/**
 * The one module that talks OAuth to a third-party provider (issue 14): the
 * authorization-code flow with PKCE, refresh and RFC 7009 revocation, over
 * openid-client v6 (kept library; it does discovery, state and response
 * checks). Every failure comes out as a ProviderError of three kinds the
 * caller acts on. Tokens never appear in messages or logs.
 */
import * as oidc from 'openid-client';
import type { StoredCredential } from './sealing.js';
import { isLoopbackUrl, type ProviderConfig } from './providers.js';

export type ProviderErrorKind =
  /** The grant is gone (refresh token revoked or expired, code already used or wrong verifier): the person must connect again. */
  | 'invalid_grant'
  /** The provider could not be reached or failed (network, timeout, HTTP 5xx): try again later, keep the connection. */
  | 'unavailable'
  /** The provider answered with an OAuth error, or its answer failed our checks (state, issuer…). */
  | 'refused';

/** A failed exchange with a provider. The message names the provider and step; it never holds a token. */
export class ProviderError extends Error {
  override name = 'ProviderError';
  constructor(
    readonly kind: ProviderErrorKind,
    /** Catalogue name of the provider. */
    readonly provider: string,
    /** The step and what went wrong there, in the provider's words where it gave some (logged as `reason`). */
    readonly detail: string,
    /** The provider's OAuth error code (`access_denied`, `invalid_client`…) when it sent one; `state_mismatch` when the callback's state is not ours. */
    readonly code?: string,
  ) {
    super(`provider "${provider}": ${detail}`);
  }
}

/** Codes of ProviderError that we set, not the provider: never logged as `oauth_error`. */
const OUR_CODES = new Set(['state_mismatch']);

/** What a log line about a failed provider call says; `oauth_error`, not `code`, which the log redacts as the authorization code's name. */
export type ProviderFailureFields = {
  kind: ProviderErrorKind;
  /** The OAuth error code the provider sent (RFC 6749 §5.2), when it sent one. */
  oauth_error?: string;
  reason: string;
};

/** The fields every log line about a failed provider call carries (docs/operating.md, Logs). */
export function failureFields(e: ProviderError): ProviderFailureFields {
  return { kind: e.kind, ...(e.code && !OUR_CODES.has(e.code) ? { oauth_error: e.code } : {}), reason: e.detail };
}

export interface ProviderClient {
  readonly name: string;
  readonly displayName: string;
  readonly scopes: readonly string[];
  /** Where to send the person (RFC 6749 §4.1.1), with `state` and, unless the catalogue turned PKCE off, the S256 challenge of `codeVerifier`. */
  authorizationUrl(params: { redirectUri: string; state: string; codeVerifier: string }): Promise<URL>;
  /**
   * Check the authorization response that reached `callbackUrl` (its query
   * carries code and state) against `expectedState`, and redeem the code.
   * `redirectUri` is sent as registered, whatever host the callback was seen on.
   */
  exchangeCode(params: { callbackUrl: URL; redirectUri: string; expectedState: string; codeVerifier: string }): Promise<StoredCredential>;
  /** RFC 6749 §6. Keeps `refreshToken` when the provider does not rotate it. */
  refresh(refreshToken: string): Promise<StoredCredential>;
  /** RFC 7009: the refresh token first (it ends the grant), then the access token; nothing when the provider has no revocation endpoint. */
  revoke(credential: StoredCredential): Promise<void>;
}

/** The provider's endpoints we call: its discovery document, the token endpoint (code exchange, refresh) and RFC 7009 revocation. */
export type ProviderCall = 'discovery' | 'code_exchange' | 'refresh' | 'revocation';

export interface ProviderClientOptions {
  /** Limit on each HTTP request to the provider, discovery included (default 10 000 ms). */
  timeoutMs?: number;
  /**
   * Told of every call to the provider, once it ends: ok, refused (an OAuth
   * error or an answer that failed our checks; a refused grant too) or
   * unavailable (network, 5xx, timeout). A revocation is one call per token.
   */
  onCall?: (call: ProviderCall, outcome: 'ok' | 'refused' | 'unavailable') => void;
  /** The fetch used for every request (tests swap it). */
  fetch?: typeof fetch;
  /** Clock for `expiresAt`, in ms (default Date.now). */
  now?: () => number;
}

/**
 * A client for one catalogue entry. With an issuer, its discovery document is
 * fetched on first use and kept; a failed discovery is tried again on the
 * next call rather than remembered.
 */
export function createProviderClient(config: ProviderConfig, opts: ProviderClientOptions = {}): ProviderClient {
  const name = config.name;
  const timeoutSeconds = (opts.timeoutMs ?? 10_000) / 1000;
  const now = opts.now ?? Date.now;
  const clientMetadata: Partial<oidc.ClientMetadata> = {
    token_endpoint_auth_method: config.tokenEndpointAuthMethod,
    ...(config.clientSecret !== undefined ? { client_secret: config.clientSecret } : {}),
  };
  const clientAuth = clientAuthFor(config);
  /** Sent with every token and revocation request: never in a ProviderError's text. */
  const secret = config.clientSecret;
  const customFetch = opts.fetch ? { [oidc.customFetch]: opts.fetch as oidc.CustomFetch } : {};

  /** Run one call to the provider and report how it ended; its ProviderError passes on unchanged. */
  const reported = async <T>(call: ProviderCall, step: () => Promise<T>): Promise<T> => {
    try {
      const result = await step();
      opts.onCall?.(call, 'ok');
      return result;
    } catch (err) {
      opts.onCall?.(call, err instanceof ProviderError && err.kind === 'unavailable' ? 'unavailable' : 'refused');
      throw err;
    }
  };

  let pending: Promise<oidc.Configuration> | undefined;
  const configuration = (): Promise<oidc.Configuration> => {
    pending ??= (config.issuer ? reported('discovery', () => discover(config.issuer!)) : Promise.resolve().then(explicit)).catch((err: unknown) => {
      pending = undefined; // a provider that was down at start-up is tried again on the next call
      throw err;
    });
    return pending;
  };

  async function discover(issuer: string): Promise<oidc.Configuration> {
    const insecure = new URL(issuer).protocol === 'http:' && isLoopbackUrl(new URL(issuer));
    let found: oidc.Configuration;
    try {
      found = await oidc.discovery(new URL(issuer), config.clientId, clientMetadata, clientAuth, {
        timeout: timeoutSeconds,
        ...customFetch,
        // The catalogue allows http only on loopback, so only a loopback issuer gets here with http.
        ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
      });
    } catch (err) {
      throw toProviderError(name, `discovery at ${issuer}`, err, [secret]);
    }
    // allowInsecureRequests covers every later request: hold the discovered endpoints to the catalogue's own rule.
    const meta = found.serverMetadata();
    for (const [field, value] of Object.entries({ authorization_endpoint: meta.authorization_endpoint, token_endpoint: meta.token_endpoint, revocation_endpoint: meta.revocation_endpoint })) {
      if (value === undefined) continue;
      const u = URL.canParse(value) ? new URL(value) : undefined;
      if (!u || (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackUrl(u)))) {
        throw new ProviderError('refused', name, `discovery at ${issuer}: ${field} "${value.slice(0, 200)}" is not https (http only on loopback)`);
      }
    }
    if (!meta.authorization_endpoint || !meta.token_endpoint) {
      throw new ProviderError('refused', name, `discovery at ${issuer}: the document lacks authorization_endpoint or token_endpoint`);
    }
    return found;
  }

  function explicit(): oidc.Configuration {
    const authorization = new URL(config.authorizationEndpoint!);
    const server: oidc.ServerMetadata = {
      // Explicit endpoints come without an issuer; the catalogue refuses "openid" for them, so no ID token is checked against this.
      issuer: new URL(config.tokenEndpoint!).origin,
      authorization_endpoint: config.authorizationEndpoint!,
      token_endpoint: config.tokenEndpoint!,
      ...(config.revocationEndpoint ? { revocation_endpoint: config.revocationEndpoint } : {}),
    };
    const made = new oidc.Configuration(server, config.clientId, clientMetadata, clientAuth);
    made.timeout = timeoutSeconds;
    if (opts.fetch) made[oidc.customFetch] = opts.fetch as oidc.CustomFetch;
    const endpoints = [authorization, new URL(config.tokenEndpoint!), ...(config.revocationEndpoint ? [new URL(config.revocationEndpoint)] : [])];
    if (endpoints.some((u) => u.protocol === 'http:')) oidc.allowInsecureRequests(made); // loopback only: checked by the catalogue
    return made;
  }

  const credentialFrom = (tokens: oidc.TokenEndpointResponse, previousRefreshToken?: string): StoredCredential => {
    const refreshToken = tokens.refresh_token ?? previousRefreshToken;
    return {
      accessToken: tokens.access_token,
      ...(refreshToken ? { refreshToken } : {}),
      ...(typeof tokens.expires_in === 'number' ? { expiresAt: Math.floor(now() / 1000) + tokens.expires_in } : {}),
      ...(tokens.scope !== undefined ? { scope: tokens.scope } : {}),
      ...(tokens.token_type ? { tokenType: tokens.token_type } : {}),
    };
  };

  return {
    name,
    displayName: config.displayName,
    scopes: config.scopes,

    async authorizationUrl({ redirectUri, state, codeVerifier }) {
      const conf = await configuration();
      const params: Record<string, string> = {
        ...config.authorizationParams,
        redirect_uri: redirectUri,
        state,
        ...(config.scopes.length ? { scope: config.scopes.join(' ') } : {}),
      };
      if (config.pkce) {
        // RFC 7636 §4.2: S256 only; "plain" would hand the verifier to anyone who sees the URL.
        params.code_challenge = await oidc.calculatePKCECodeChallenge(codeVerifier);
        params.code_challenge_method = 'S256';
      }
      try {
        return oidc.buildAuthorizationUrl(conf, params);
      } catch (err) {
        throw toProviderError(name, 'authorization URL', err, [secret, codeVerifier]);
      }
    },

    async exchangeCode({ callbackUrl, redirectUri, expectedState, codeVerifier }) {
      const conf = await configuration();
      // openid-client sends the callback URL without its query as redirect_uri
      // (RFC 6749 §4.1.3: identical to the authorization request's), so rebuild
      // it on the registered redirect URI: behind a proxy the server sees another host.
      const current = new URL(redirectUri);
      current.search = callbackUrl.search;
      return reported('code_exchange', async () => {
        try {
          const tokens = await oidc.authorizationCodeGrant(conf, current, {
            expectedState,
            ...(config.pkce ? { pkceCodeVerifier: codeVerifier } : {}),
          });
          return credentialFrom(tokens);
        } catch (err) {
          throw toProviderError(name, 'code exchange', err, [secret, callbackUrl.searchParams.get('code') ?? undefined, codeVerifier]);
        }
      });
    },

    async refresh(refreshToken) {
      const conf = await configuration();
      return reported('refresh', async () => {
        try {
          return credentialFrom(await oidc.refreshTokenGrant(conf, refreshToken), refreshToken);
        } catch (err) {
          throw toProviderError(name, 'refresh', err, [secret, refreshToken]);
        }
      });
    },

    async revoke(credential) {
      const conf = await configuration();
      if (!conf.serverMetadata().revocation_endpoint) return;
      const tokens: Array<{ token: string; hint: 'refresh_token' | 'access_token' }> = [
        ...(credential.refreshToken ? [{ token: credential.refreshToken, hint: 'refresh_token' as const }] : []),
        { token: credential.accessToken, hint: 'access_token' },
      ];
      for (const { token, hint } of tokens) {
        await reported('revocation', async () => {
          try {
            await oidc.tokenRevocation(conf, token, { token_type_hint: hint });
          } catch (err) {
            throw toProviderError(name, `revocation (${hint})`, err, [secret, credential.refreshToken, credential.accessToken]);
          }
        });
      }
    },
  };
}

function clientAuthFor(config: ProviderConfig): oidc.ClientAuth {
  switch (config.tokenEndpointAuthMethod) {
    case 'none':
      return oidc.None();
    case 'client_secret_post':
      return oidc.ClientSecretPost(config.clientSecret);
    case 'client_secret_basic':
      return oidc.ClientSecretBasic(config.clientSecret);
  }
}

/** OAuth error codes that mean "later" rather than "no" (RFC 6749 §4.1.2.1). */
const TRANSIENT_CODES = new Set(['server_error', 'temporarily_unavailable']);

/**
 * Map whatever openid-client (or fetch) threw to a ProviderError. The text
 * holds the step, statuses, the provider's `error` and `error_description`,
 * and the library's messages, never a response body: openid-client keeps
 * bodies, claims and challenges in `cause`, its messages are fixed wording
 * (e.g. 'unexpected JWT "aud" (audience) claim value'), so the only text the
 * provider chooses is its error and description. `sent` is every secret the
 * step sent (client secret, code, verifier, tokens); see `told`.
 */
export function toProviderError(provider: string, step: string, err: unknown, sent: ReadonlyArray<string | undefined> = []): ProviderError {
  if (err instanceof ProviderError) return err;
  const { kind, detail, code } = classify(step, err);
  return new ProviderError(kind, provider, told(detail, sent), code === undefined ? undefined : told(code, sent, 64));
}

function classify(step: string, err: unknown): { kind: ProviderErrorKind; detail: string; code?: string } {
  if (err instanceof oidc.ResponseBodyError) {
    const desc = err.error_description ? ` (${err.error_description})` : '';
    if (err.error === 'invalid_grant') return { kind: 'invalid_grant', detail: `${step}: invalid_grant${desc}`, code: err.error };
    if (err.status >= 500 || TRANSIENT_CODES.has(err.error)) {
      return { kind: 'unavailable', detail: `${step}: the provider failed (HTTP ${err.status}, ${err.error})${desc}`, code: err.error };
    }
    return { kind: 'refused', detail: `${step}: the provider refused with ${err.error} (HTTP ${err.status})${desc}`, code: err.error };
  }
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    // RFC 6749 §5.2: a 401 to a client that authenticated with a header carries a challenge; its error, if any, is a parameter there.
    const params = err.cause.find((c) => c.parameters.error)?.parameters;
    const kind = err.status >= 500 || TRANSIENT_CODES.has(params?.error ?? '') ? 'unavailable' : 'refused';
    if (!params?.error) return { kind, detail: `${step}: the provider refused (HTTP ${err.status}, a ${err.cause[0]?.scheme ?? 'WWW-Authenticate'} challenge without an error)` };
    const desc = params.error_description ? ` (${params.error_description})` : '';
    return { kind, detail: `${step}: the provider refused with ${params.error} (HTTP ${err.status}, in its WWW-Authenticate challenge)${desc}`, code: params.error };
  }
  if (err instanceof oidc.AuthorizationResponseError) {
    // An error on the redirect back (RFC 6749 §4.1.2.1), e.g. the person denied access.
    const desc = err.error_description ? ` (${err.error_description})` : '';
    const kind = TRANSIENT_CODES.has(err.error) ? 'unavailable' : 'refused';
    return { kind, detail: `${step}: the authorization response is an error: ${err.error}${desc}`, code: err.error };
  }
  if (err instanceof oidc.ClientError) {
    if (err.code === 'OAUTH_TIMEOUT' || err.code === 'OAUTH_ABORT') return { kind: 'unavailable', detail: `${step}: no answer in time` };
    if (err.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || err.code === 'OAUTH_RESPONSE_IS_NOT_JSON') {
      const status = err.cause instanceof Response ? err.cause.status : undefined;
      return { kind: status === undefined || status >= 500 ? 'unavailable' : 'refused', detail: `${step}: ${err.message}${status ? ` (HTTP ${status})` : ''}` };
    }
    // The library's own fixed wording of the check that failed, e.g. 'unexpected "state" response parameter value'.
    const why = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    if (/"state"/.test(why)) return { kind: 'refused', detail: `${step}: the state in the callback is not the one this flow sent${why}`, code: 'state_mismatch' };
    return { kind: 'refused', detail: `${step}: ${err.message}${why}` };
  }
  const network = networkCause(err);
  if (network) return { kind: 'unavailable', detail: `${step} failed: ${network}` };
  if (err instanceof DOMException && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return { kind: 'unavailable', detail: `${step}: no answer in time` };
  }
  return { kind: 'refused', detail: `${step}: ${err instanceof Error ? `${err.name}: ${err.message}` : 'unexpected failure'}` };
}

/** fetch's "fetch failed" TypeError and its system cause (ECONNREFUSED…), as text; undefined for other errors. */
function networkCause(err: unknown): string | undefined {
  if (!(err instanceof TypeError) || String((err as { code?: unknown }).code ?? '').startsWith('ERR_INVALID_ARG')) return undefined;
  const cause = (err as { cause?: unknown }).cause as { code?: string; message?: string } | undefined;
  if (cause?.code) return `${cause.code === 'ECONNREFUSED' ? 'connection refused' : 'network error'} (${cause.code})`;
  return err.message === 'fetch failed' ? 'network error' : undefined;
}

/**
 * `text` with every value in `sent` replaced (as is, URL-encoded, and
 * form-encoded as in a body or a Basic header), then cut to `max` characters:
 * replaced first, so a cut cannot leave part of a secret unmatched.
 */
function told(text: string, sent: ReadonlyArray<string | undefined>, max = MAX_DETAIL): string {
  let out = text;
  for (const s of sent) {
    if (!s) continue;
    // RFC 6749 §2.3.1: the client secret in a Basic header is form-encoded (Appendix B) with -_.!~*'() escaped too.
    const basic = encodeURIComponent(s).replace(/[-_.!~*'()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    for (const form of new Set([s, encodeURIComponent(s), new URLSearchParams({ s }).toString().slice(2), basic])) out = out.split(form).join('[redacted]');
  }
  return out.length > max ? `${out.slice(0, max)}…` : out;
}

// Library messages are fixed wording; a provider's error_description may echo what the step sent it (code, token, form body), replaced by `told`; 300 keeps it readable and a line small.
const MAX_DETAIL = 300;
