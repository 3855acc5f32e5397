import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidTokenError } from '../../src/auth/oauthErrors.js';
import type { HydraAdmin, Introspection } from '../../src/hydra/index.js';
import { principalOf } from '../../src/auth/principal.js';
import { ResourceSet } from '../../src/auth/resource.js';
import { HydraTokenVerifier } from '../../src/auth/tokenVerifier.js';
import { RemovedSubjects } from '../../src/account/removedSubjects.js';
import { createLogger } from '../../src/log/logger.js';

const ISSUER = 'http://127.0.0.1:4444';
const RESOURCE = new URL('http://127.0.0.1:3000/mcp');
const now = () => Math.floor(Date.now() / 1000);
const REMOVED = new InvalidTokenError('The account this token was issued for has been removed');

/** The removed-subject check, with a local JWKS server and a stub introspection endpoint (stub Hydra admin). */
describe('HydraTokenVerifier refuses removed subjects (local JWKS, stub Hydra admin)', () => {
  let server: Server;
  let jwksUrl: URL;
  let privateKey: CryptoKey;

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    privateKey = pair.privateKey as CryptoKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    server = createServer((_req, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    jwksUrl = new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/.well-known/jwks.json`);
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const jwtFor = (sub: string, iat = now()) =>
    new SignJWT({ iss: ISSUER, sub, aud: [RESOURCE.href], iat, exp: now() + 600, client_id: 'c1', scp: ['notes:read'] })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .sign(privateKey);
  const activeFor = (token: string): Introspection => ({
    active: true,
    sub: token.replace('opaque-', ''),
    exp: now() + 600,
    aud: [RESOURCE.href],
    token_use: 'access_token',
  });
  function verifier(removed: Pick<RemovedSubjects, 'has' | 'refusal'> | Set<string>, cacheSeconds = 60) {
    return new HydraTokenVerifier({
      issuer: ISSUER,
      jwksUrl,
      resources: new ResourceSet([RESOURCE]),
      hydraAdmin: { introspect: async (t: string) => activeFor(t) } as unknown as HydraAdmin,
      log: createLogger('silent'),
      introspectionCacheSeconds: cacheSeconds,
      removedSubjects: removed,
    });
  }

  it('a valid JWT of a removed sub is refused, even one verified (and cached) before the removal', async () => {
    const removed = new Set<string>();
    const v = verifier(removed);
    const carol = await jwtFor('carol');
    const dan = await jwtFor('dan');
    expect(principalOf(await v.verifyAccessToken(carol))?.sub).toBe('carol');
    removed.add('carol');
    await expect(v.verifyAccessToken(carol)).rejects.toThrow(REMOVED);
    await expect(v.verifyAccessToken(await jwtFor('carol')), 'a fresh, never-cached JWT too').rejects.toThrow(REMOVED);
    expect(principalOf(await v.verifyAccessToken(dan))?.sub, 'another person is unaffected').toBe('dan');
  });

  it('an opaque token Hydra still calls active (cached answer) is refused for a removed sub; isActiveNow says false', async () => {
    const removed = new Set<string>();
    const v = verifier(removed);
    expect(principalOf(await v.verifyAccessToken('opaque-carol'))?.sub).toBe('carol');
    removed.add('carol');
    await expect(v.verifyAccessToken('opaque-carol')).rejects.toThrow(REMOVED);
    expect(await v.isActiveNow('opaque-carol')).toBe(false);
    expect(await v.isActiveNow('opaque-dan')).toBe(true);
  });

  it('issue 26 #7: a suspended subject’s JWT is refused; after reactivation one issued before it still is, a new one passes', async () => {
    // The refusal list with its tables empty (the store is not the subject here): suspension and reactivation in this process.
    const list = new RemovedSubjects({ store: { refusedSince: async () => [], prune: async () => 0 } as never, retentionSeconds: 3600, log: createLogger('silent') });
    const v = verifier(list);
    const old = await jwtFor('gil', now() - 120);
    expect(principalOf(await v.verifyAccessToken(old))?.sub, 'verified and cached before').toBe('gil');
    list.suspend('gil');
    await expect(v.verifyAccessToken(old)).rejects.toThrow(new InvalidTokenError('The account this token was issued for is suspended'));
    await expect(v.verifyAccessToken(await jwtFor('gil'))).rejects.toThrow(/is suspended/);
    list.reactivate('gil', new Date((now() - 60) * 1000));
    await expect(v.verifyAccessToken(old)).rejects.toThrow(new InvalidTokenError('This token was issued before its account was suspended'));
    expect(principalOf(await v.verifyAccessToken(await jwtFor('gil')))?.sub, 'issued after the reactivation').toBe('gil');
    expect(principalOf(await v.verifyAccessToken(await jwtFor('dan', now() - 120)))?.sub, 'another person is unaffected').toBe('dan');
  });
});
