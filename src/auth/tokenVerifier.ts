import { hash } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, type JWTPayload, jwtVerify } from 'jose';
import { InvalidTokenError, ServerError, TemporarilyUnavailableError } from './oauthErrors.js';
import type { AuthInfo, OAuthTokenVerifier } from './types.js';
import type { Logger } from '../log/logger.js';
import { type HydraAdmin, HydraError, type Introspection } from '../hydra/index.js';
import { LruCache } from '../lib/lruCache.js';
import type { MachineClients } from './machineClients.js';
import { type Principal, type PrincipalKind, toAuthInfo } from './principal.js';
import type { ResourceSet } from './resource.js';

/** What the app needs of a token verifier: the SDK's check, plus an uncached one for onlineCheck tools. */
export interface AccessTokenVerifier extends OAuthTokenVerifier {
  /** Ask the authorization server now, bypassing every cache: is this access token still active? */
  isActiveNow(token: string): Promise<boolean>;
}

export interface TokenVerifierOptions {
  /** `iss` Hydra writes into tokens, compared exactly. */
  issuer: string;
  /** Hydra's JWKS (hydraPublicUrls(…).jwks in src/hydra/). */
  jwksUrl: URL;
  /** This server's resource URLs; tokens must name one in `aud` (RFC 8707, RFC 9068 §4). */
  resources: ResourceSet;
  hydraAdmin: HydraAdmin;
  log: Logger;
  /** Longest reuse of an introspection answer, in seconds (never past the token's `exp`). */
  introspectionCacheSeconds: number;
  /** Most introspection answers kept. */
  introspectionCacheSize?: number;
  /** Introspect JWTs too (after the local checks), for deployments that need revocation to bite. */
  alwaysIntrospect?: boolean;
  /** Least time between two JWKS fetches caused by unknown `kid`s (rotation without a restart). */
  jwksCooldownMs?: number;
  /** Told the kind, outcome and duration (seconds) of every check (for metrics). */
  onVerification?: (kind: 'jwt' | 'introspection', outcome: 'ok' | 'invalid' | 'unavailable', cached: boolean, seconds: number) => void;
  /** Allowed JWS algorithms: asymmetric only, so no `none` and no HMAC confusion. */
  algorithms?: string[];
  /**
   * Subjects whose account was removed or suspended (src/account/removedSubjects.ts):
   * their tokens are refused, JWTs included, however valid they still look.
   * Checked after verification, on cached answers too; must be O(1).
   * `refusal`, when given, decides (from the token's `iat` too) and says why.
   */
  removedSubjects?: { has(sub: string): boolean; refusal?(sub: string, issuedAt: number | undefined): string | undefined };
  /**
   * Decides person or machine (src/auth/machineClients.ts). Without it, a
   * token whose `sub` is its client id (client credentials) is refused: no
   * machine is let in by default.
   */
  machineClients?: Pick<MachineClients, 'kindOf'>;
}

const DEFAULT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
// Seconds of clock skew tolerated on exp/nbf between Hydra and us.
const CLOCK_TOLERANCE = 5;
// An inactive answer is remembered briefly, so a flood of one bad token costs one introspection.
const INACTIVE_CACHE_MS = 5_000;

interface Verified {
  /** The caller as the token says; person or machine is decided per call (kindOf). */
  principal: Omit<Principal, 'kind'>;
  /** Which of our resource URLs the token's `aud` names. */
  audience: string;
  /** The token's `iat` (seconds since the epoch), when it has one. */
  issuedAt?: number;
}
/** One verification in progress: the token, its cache key, whether a cached answer was used. */
interface Check {
  token: string;
  key: string;
  cached: boolean;
  /** What the JWT cache held for this key when the check began. */
  jwtHit: Verified | undefined;
}
type IntrospectionOutcome = ({ ok: true } & Verified) | { ok: false; reason: string };

/**
 * Verifies Hydra access tokens for this resource server. JWT access tokens
 * (strategies.access_token: jwt) are checked locally against Hydra's JWKS;
 * anything else is introspected at Hydra's admin API (RFC 7662), with answers
 * cached by token hash for at most `introspectionCacheSeconds` and never past
 * `exp`, and concurrent checks of one token sharing one request.
 */
export class HydraTokenVerifier implements AccessTokenVerifier {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  private readonly cache: LruCache<IntrospectionOutcome>;
  /** Verified JWTs by hash: Hydra's RSA-4096 signatures cost ~0.5 ms each to check. */
  private readonly jwtCache: LruCache<Verified>;
  private readonly inflight = new Map<string, Promise<IntrospectionOutcome>>();

  constructor(private readonly options: TokenVerifierOptions) {
    if (!Number.isFinite(options.introspectionCacheSeconds) || options.introspectionCacheSeconds < 0) {
      throw new TypeError('introspectionCacheSeconds must be a number of seconds, 0 or more');
    }
    // An unknown kid refetches the set (Hydra rotated its keys), at most once per cool-down.
    this.jwks = createRemoteJWKSet(options.jwksUrl, { cooldownDuration: options.jwksCooldownMs ?? 30_000, cacheMaxAge: 10 * 60_000 });
    this.cache = new LruCache(options.introspectionCacheSize ?? 10_000);
    this.jwtCache = new LruCache(options.introspectionCacheSize ?? 10_000);
  }

  async verifyAccessToken(token: string): Promise<AuthInfo> {
    // From before the hash: the seconds reported are the whole check a request waits for.
    const started = performance.now();
    // Caches are keyed by a hash of the token (never the token), computed once per check.
    const key = hash('sha256', token, 'base64url');
    // A token in the JWT cache verified as a JWT before: no need to parse its header again.
    const jwtHit = this.jwtCache.get(key);
    const kind = jwtHit || looksLikeJwt(token) ? 'jwt' : 'introspection';
    const check: Check = { token, key, cached: false, jwtHit };
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const info = await this.verify(check, kind === 'jwt');
      this.options.onVerification?.(kind, 'ok', check.cached, seconds());
      return info;
    } catch (e) {
      this.options.onVerification?.(kind, e instanceof InvalidTokenError ? 'invalid' : 'unavailable', check.cached, seconds());
      throw e;
    }
  }

  private async verify(check: Check, jwt: boolean): Promise<AuthInfo> {
    const { token } = check;
    const verified = jwt ? await this.verifyJwt(check) : await this.introspect(check);
    const { principal, audience } = verified;
    if (jwt && this.options.alwaysIntrospect) await this.introspect(check);
    this.refuseRemoved(verified);
    // People (sub ≠ client id) cost one comparison; machines one cache read.
    const kind = principal.sub === principal.clientId ? await this.machineKind(principal) : 'person';
    return toAuthInfo({ ...principal, kind }, token, this.audienceUrl(audience));
  }

  /** One URL object per resource URL (a handful), not a parse on every call. */
  private readonly audienceUrls = new Map<string, URL>();
  private audienceUrl(audience: string): URL {
    let url = this.audienceUrls.get(audience);
    if (!url) {
      url = new URL(audience);
      this.audienceUrls.set(audience, url);
    }
    return url;
  }

  /** A client-credentials token: a machine if its client is an operator-made machine client, else refused. */
  private machineKind(principal: Verified['principal']): PrincipalKind | Promise<PrincipalKind> {
    if (!this.options.machineClients) throw new InvalidTokenError('This server does not accept client-credentials tokens');
    return this.options.machineClients.kindOf(principal);
  }

  /** Entries held by each cache now (for metrics; both are bounded by introspectionCacheSize). */
  cacheSizes(): { jwt: number; introspection: number } {
    return { jwt: this.jwtCache.size, introspection: this.cache.size };
  }

  /**
   * Ask Hydra now, bypassing every cache: is this access token still active?
   * For tools that must not act on a revoked token (ToolDefinition.onlineCheck).
   */
  async isActiveNow(token: string): Promise<boolean> {
    const outcome = await this.introspectOnce(token, undefined);
    return outcome.ok && refusalOf(this.options.removedSubjects, outcome) === undefined;
  }

  /** A JWT stays valid until it expires, whatever Hydra revoked: a removed or suspended account's tokens end here. */
  private refuseRemoved(verified: Verified): void {
    const refusal = refusalOf(this.options.removedSubjects, verified);
    if (refusal) throw new InvalidTokenError(refusal);
  }

  /**
   * A JWT that verified once verifies the same way until it expires, so the
   * result is reused — for no longer than the cache bound, so a key Hydra
   * withdraws stops being honoured within it (as with the JWKS cache).
   */
  private async verifyJwt(check: Check): Promise<Verified> {
    const hit = check.jwtHit;
    if (hit && hit.principal.expiresAt > Date.now() / 1000) {
      check.cached = true;
      return hit;
    }
    const verified = await this.verifyJwtSignature(check.token);
    const ttl = Math.min(this.options.introspectionCacheSeconds * 1000, verified.principal.expiresAt * 1000 - Date.now());
    this.jwtCache.set(check.key, verified, ttl);
    return verified;
  }

  private async verifyJwtSignature(token: string): Promise<Verified> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.jwks, {
        issuer: this.options.issuer,
        audience: [...this.options.resources.canonical],
        algorithms: this.options.algorithms ?? DEFAULT_ALGORITHMS,
        clockTolerance: CLOCK_TOLERANCE,
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (e) {
      if (e instanceof joseErrors.JOSEError && !(e instanceof joseErrors.JWKSTimeout)) {
        throw new InvalidTokenError(jwtFailure(e));
      }
      // Keys not cached and Hydra's JWKS unreachable: a transient outage, not a bad token.
      this.options.log.error('JWKS unavailable', { error: e });
      throw new TemporarilyUnavailableError('The authorization server keys cannot be fetched; try again');
    }
    const scopes = Array.isArray(payload.scp)
      ? payload.scp.filter((s): s is string => typeof s === 'string')
      : typeof payload.scope === 'string'
        ? payload.scope.split(' ').filter(Boolean)
        : [];
    const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud ?? ''];
    return {
      principal: {
        sub: payload.sub!,
        clientId: typeof payload.client_id === 'string' ? payload.client_id : '',
        scopes,
        expiresAt: payload.exp!,
      },
      audience: aud.map((a) => this.options.resources.match(a)).find((a) => a !== undefined)!,
      ...(typeof payload.iat === 'number' ? { issuedAt: payload.iat } : {}),
    };
  }

  private async introspect(check: Check): Promise<Verified> {
    const { token, key } = check;
    let outcome = this.cache.get(key);
    if (outcome) check.cached = true;
    else {
      let pending = this.inflight.get(key);
      if (!pending) {
        pending = this.introspectOnce(token, key).finally(() => this.inflight.delete(key));
        this.inflight.set(key, pending);
      }
      outcome = await pending;
    }
    if (!outcome.ok) throw new InvalidTokenError(outcome.reason);
    if (outcome.principal.expiresAt <= Date.now() / 1000) throw new InvalidTokenError('Token has expired');
    return outcome;
  }

  private async introspectOnce(token: string, key: string | undefined): Promise<IntrospectionOutcome> {
    let answer: Introspection;
    try {
      answer = await this.options.hydraAdmin.introspect(token);
    } catch (e) {
      this.options.log.error('introspection failed', { error: e });
      throw e instanceof HydraError && e.unavailable
        ? new TemporarilyUnavailableError('The authorization server is unavailable; try again')
        : new ServerError('Token introspection failed');
    }
    const outcome = this.judge(answer);
    if (key === undefined) return outcome;
    const maxMs = this.options.introspectionCacheSeconds * 1000;
    const ttl = outcome.ok ? Math.min(maxMs, outcome.principal.expiresAt * 1000 - Date.now()) : Math.min(maxMs, INACTIVE_CACHE_MS);
    this.cache.set(key, outcome, ttl);
    return outcome;
  }

  private judge(a: Introspection): IntrospectionOutcome {
    if (!a.active) return { ok: false, reason: 'Token is not active' };
    // Hydra introspects refresh tokens too; only access tokens open the door.
    if (a.token_use && a.token_use !== 'access_token') return { ok: false, reason: 'Not an access token' };
    if (!a.sub || typeof a.exp !== 'number') return { ok: false, reason: 'Token lacks sub or exp' };
    if (a.iss !== undefined && a.iss !== this.options.issuer) return { ok: false, reason: 'Token was issued by another issuer' };
    const audience = (a.aud ?? []).map((x) => this.options.resources.match(x)).find((x) => x !== undefined);
    if (!audience) return { ok: false, reason: 'Token was not issued for this resource' };
    return {
      ok: true,
      audience,
      principal: {
        sub: a.sub,
        clientId: a.client_id ?? '',
        scopes: (a.scope ?? '').split(' ').filter(Boolean),
        expiresAt: a.exp,
      },
      ...(typeof a.iat === 'number' ? { issuedAt: a.iat } : {}),
    };
  }
}

/** Why the list refuses this token (its public description), or undefined. */
function refusalOf(list: TokenVerifierOptions['removedSubjects'], { principal, issuedAt }: Verified): string | undefined {
  if (!list) return undefined;
  if (list.refusal) return list.refusal(principal.sub, issuedAt);
  return list.has(principal.sub) ? 'The account this token was issued for has been removed' : undefined;
}

/** A compact JWS has three base64url parts and a JSON header naming an algorithm. */
function looksLikeJwt(token: string): boolean {
  const parts = token.split('.');
  if (parts.length !== 3) return false;
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as unknown;
    return typeof header === 'object' && header !== null && 'alg' in header;
  } catch {
    return false;
  }
}

function jwtFailure(e: InstanceType<typeof joseErrors.JOSEError>): string {
  if (e instanceof joseErrors.JWTExpired) return 'Token has expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return 'Token was not issued for this resource';
    if (e.claim === 'iss') return 'Token was issued by another issuer';
    if (e.claim === 'nbf') return 'Token is not yet valid';
    return `Token claim ${e.claim} is invalid`;
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'Token algorithm is not allowed';
  if (e instanceof joseErrors.JWKSNoMatchingKey) return 'Token was signed with an unknown key';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'Token signature is invalid';
  return 'Token is invalid';
}
