import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidTokenError, TemporarilyUnavailableError } from '../../src/auth/oauthErrors.js';
import { type HydraAdmin, HydraError, type Introspection } from '../../src/hydra/index.js';
import { principalOf } from '../../src/auth/principal.js';
import { ResourceSet } from '../../src/auth/resource.js';
import { HydraTokenVerifier } from '../../src/auth/tokenVerifier.js';
import { createLogger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { sample } from '../support/metricSamples.js';

const ISSUER = 'http://127.0.0.1:4444';
const RESOURCE = new URL('http://127.0.0.1:3000/mcp');
const now = () => Math.floor(Date.now() / 1000);

/** Unit tests with a local JWKS server and a stub introspection endpoint (stub Hydra admin). */
describe('HydraTokenVerifier (local JWKS server, stub Hydra admin)', () => {
  let server: Server;
  let jwksUrl: URL;
  let privateKey: CryptoKey;
  let publicJwk: JWK;
  let served: JWK[];

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    privateKey = pair.privateKey as CryptoKey;
    publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    served = [publicJwk];
    server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: served }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    jwksUrl = new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/.well-known/jwks.json`);
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  function verifier(introspect: HydraAdmin['introspect'] = async () => ({ active: false }), cacheSeconds = 60) {
    return new HydraTokenVerifier({
      issuer: ISSUER,
      jwksUrl,
      resources: new ResourceSet([RESOURCE]),
      hydraAdmin: { introspect } as HydraAdmin,
      log: createLogger('silent'),
      introspectionCacheSeconds: cacheSeconds,
    });
  }

  const jwt = (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
    new SignJWT({
      iss: ISSUER,
      sub: 'user-1',
      aud: [RESOURCE.href],
      iat: now(),
      exp: now() + 600,
      client_id: 'c1',
      scp: ['notes:read'],
      ...claims,
    })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1', ...header })
      .sign(privateKey);

  it('accepts a Hydra-shaped JWT and yields sub, client id, scopes and expiry', async () => {
    const info = await verifier().verifyAccessToken(await jwt());
    expect(principalOf(info)).toMatchObject({ sub: 'user-1', clientId: 'c1', scopes: ['notes:read'] });
    expect(info.expiresAt).toBeGreaterThan(now());
    expect(info.resource?.href).toBe(RESOURCE.href);
  });

  it('keeps each cache within introspectionCacheSize however many distinct tokens arrive', async () => {
    const v = new HydraTokenVerifier({
      issuer: ISSUER,
      jwksUrl,
      resources: new ResourceSet([RESOURCE]),
      hydraAdmin: { introspect: async () => ({ active: true, sub: 'u', exp: now() + 600, aud: [RESOURCE.href], token_use: 'access_token' }) } as unknown as HydraAdmin,
      log: createLogger('silent'),
      introspectionCacheSeconds: 60,
      introspectionCacheSize: 3,
    });
    expect(v.cacheSizes()).toEqual({ jwt: 0, introspection: 0 });
    for (let i = 0; i < 5; i++) {
      await v.verifyAccessToken(await jwt({ jti: `t${i}` }));
      await v.verifyAccessToken(`opaque-token-${i}`);
    }
    expect(v.cacheSizes()).toEqual({ jwt: 3, introspection: 3 });
  });

  it.each([
    ['expired', { exp: now() - 60 }, 'Token has expired'],
    ['not yet valid', { nbf: now() + 600 }, 'Token is not yet valid'],
    ['wrong issuer', { iss: 'http://evil.example' }, 'Token was issued by another issuer'],
    ['wrong audience', { aud: ['https://other.example/mcp'] }, 'Token was not issued for this resource'],
  ])('refuses a JWT that is %s', async (_case, claims, message) => {
    await expect(verifier().verifyAccessToken(await jwt(claims))).rejects.toThrow(new InvalidTokenError(message));
  });

  it('with alwaysIntrospect, refuses a valid JWT that Hydra reports revoked', async () => {
    const v = new HydraTokenVerifier({
      issuer: ISSUER,
      jwksUrl,
      resources: new ResourceSet([RESOURCE]),
      hydraAdmin: { introspect: async () => ({ active: false }) } as unknown as HydraAdmin,
      log: createLogger('silent'),
      introspectionCacheSeconds: 0,
      alwaysIntrospect: true,
    });
    await expect(v.verifyAccessToken(await jwt())).rejects.toThrow(new InvalidTokenError('Token is not active'));
    await expect(verifier().verifyAccessToken(await jwt()), 'without it the JWT is accepted').resolves.toBeDefined();
  });

  it('refuses alg "none"', async () => {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${b64({ alg: 'none', kid: 'k1' })}.${b64({ iss: ISSUER, sub: 'x', aud: [RESOURCE.href], exp: now() + 60 })}.`;
    await expect(verifier().verifyAccessToken(token)).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it('refuses HS256 signed with the public key as the secret', async () => {
    const secret = new TextEncoder().encode(JSON.stringify(publicJwk));
    const token = await new SignJWT({ client_id: 'c1' })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setSubject('x')
      .setAudience(RESOURCE.href)
      .setExpirationTime('5m')
      .sign(secret);
    await expect(verifier().verifyAccessToken(token)).rejects.toThrow('Token algorithm is not allowed');
  });

  it('follows a key rotation: an unknown kid refetches the JWKS once, without a restart', async () => {
    const v = new HydraTokenVerifier({
      issuer: ISSUER,
      jwksUrl,
      resources: new ResourceSet([RESOURCE]),
      hydraAdmin: {} as HydraAdmin,
      log: createLogger('silent'),
      introspectionCacheSeconds: 60,
      jwksCooldownMs: 0,
    });
    await v.verifyAccessToken(await jwt());
    const next = await generateKeyPair('ES256', { extractable: true });
    served = [publicJwk, { ...(await exportJWK(next.publicKey)), kid: 'k2', alg: 'ES256', use: 'sig' }];
    try {
      const rotated = await new SignJWT({ iss: ISSUER, sub: 'user-9', aud: [RESOURCE.href], exp: now() + 600, client_id: 'c1', scp: [] })
        .setProtectedHeader({ alg: 'ES256', kid: 'k2' })
        .sign(next.privateKey);
      expect(principalOf(await v.verifyAccessToken(rotated))?.sub).toBe('user-9');
    } finally {
      served = [publicJwk];
    }
  });

  it('refuses an unknown kid', async () => {
    await expect(verifier().verifyAccessToken(await jwt({}, { kid: 'unknown' }))).rejects.toThrow('Token was signed with an unknown key');
  });

  const active = (over: Partial<Introspection> = {}): Introspection => ({
    active: true,
    sub: 'user-2',
    client_id: 'c2',
    scope: 'notes:read notes:write',
    aud: [RESOURCE.href + '/'],
    exp: now() + 600,
    iss: ISSUER,
    token_use: 'access_token',
    ...over,
  });

  it('introspects opaque tokens and shares one request among concurrent checks', async () => {
    let calls = 0;
    const v = verifier(async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 20));
      return active();
    });
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => v.verifyAccessToken('ory_at_opaque')));
    expect(calls).toBe(1);
    expect(principalOf(results[0])).toMatchObject({ sub: 'user-2', clientId: 'c2', scopes: ['notes:read', 'notes:write'] });
    await v.verifyAccessToken('ory_at_opaque');
    expect(calls, 'the cached answer is reused').toBe(1);
  });

  it.each([
    ['inactive', { active: false }, 'Token is not active'],
    ['a refresh token', { token_use: 'refresh_token' }, 'Not an access token'],
    ['for another audience', { aud: ['https://other.example/mcp'] }, 'Token was not issued for this resource'],
    ['without an audience', { aud: [] }, 'Token was not issued for this resource'],
    ['from another issuer', { iss: 'http://evil.example' }, 'Token was issued by another issuer'],
  ])('refuses an opaque token that is %s', async (_case, over, message) => {
    await expect(verifier(async () => active(over)).verifyAccessToken('ory_at_x')).rejects.toThrow(new InvalidTokenError(message));
  });

  it('reports each check to onVerification with its kind, outcome and cache use', async () => {
    const seen: string[] = [];
    const v = new HydraTokenVerifier({
      issuer: ISSUER,
      jwksUrl,
      resources: new ResourceSet([RESOURCE]),
      hydraAdmin: { introspect: async () => active() } as unknown as HydraAdmin,
      log: createLogger('silent'),
      introspectionCacheSeconds: 60,
      onVerification: (kind, outcome, cached) => void seen.push(`${kind}:${outcome}:${cached ? 'hit' : 'miss'}`),
    });
    const token = await jwt();
    await v.verifyAccessToken(token);
    await v.verifyAccessToken(token);
    await v.verifyAccessToken('ory_at_z');
    await v.verifyAccessToken('ory_at_z');
    await expect(v.verifyAccessToken(await jwt({ aud: ['https://other.example'] }))).rejects.toThrow();
    expect(seen).toEqual(['jwt:ok:miss', 'jwt:ok:hit', 'introspection:ok:miss', 'introspection:ok:hit', 'jwt:invalid:miss']);
  });

  it('token_verification_duration_seconds: each check timed under its kind, outcome and cache use (seconds, as the check took)', async () => {
    const metrics = new Metrics();
    const v = new HydraTokenVerifier({
      issuer: ISSUER,
      jwksUrl,
      resources: new ResourceSet([RESOURCE]),
      // Hydra's admin API answers after 30 ms, or not at all for the second opaque token.
      hydraAdmin: {
        introspect: async (token: string) => {
          await new Promise((r) => setTimeout(r, 30));
          if (token === 'ory_at_down') throw new HydraError(0, 'temporarily_unavailable', 'Hydra unreachable');
          return active();
        },
      } as unknown as HydraAdmin,
      log: createLogger('silent'),
      introspectionCacheSeconds: 60,
      onVerification: (kind, outcome, cached, seconds) => metrics.verification(kind, outcome, cached, seconds),
    });
    const token = await jwt();
    await v.verifyAccessToken(token);
    await v.verifyAccessToken('ory_at_up');
    await v.verifyAccessToken('ory_at_up');
    await expect(v.verifyAccessToken('ory_at_down')).rejects.toThrow();
    const count = (kind: string, outcome: string, cache: string) => sample(metrics, 'token_verification_duration_seconds_count', { kind, outcome, cache });
    expect(await count('jwt', 'ok', 'miss')).toBe(1);
    expect(await count('introspection', 'ok', 'miss')).toBe(1);
    expect(await count('introspection', 'ok', 'hit')).toBe(1);
    expect(await count('introspection', 'unavailable', 'miss')).toBe(1);
    // The cold introspection waited for Hydra's 30 ms; the counter beside it moved too.
    expect(await sample(metrics, 'token_verification_duration_seconds_sum', { kind: 'introspection', outcome: 'ok', cache: 'miss' })).toBeGreaterThanOrEqual(0.025);
    expect(await sample(metrics, 'token_verifications_total', { kind: 'introspection', outcome: 'ok', cache: 'hit' })).toBe(1);
    expect(await metrics.registry.metrics()).not.toContain('ory_at_up');
  });

  it('never caches past the cache bound: with 0 seconds every check asks Hydra', async () => {
    let calls = 0;
    const v = verifier(async () => (calls++, active()), 0);
    await v.verifyAccessToken('ory_at_a');
    await v.verifyAccessToken('ory_at_a');
    expect(calls).toBe(2);
  });

  it('reports an unreachable Hydra as temporarily unavailable, not an invalid token', async () => {
    const v = verifier(async () => {
      throw new HydraError(0, 'temporarily_unavailable', 'down');
    });
    await expect(v.verifyAccessToken('ory_at_b')).rejects.toBeInstanceOf(TemporarilyUnavailableError);
  });
});
