import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidTokenError, TemporarilyUnavailableError } from '../../src/auth/oauthErrors.js';
import { bearerAuth } from '../../src/auth/bearerAuth.js';
import { principalOf, toAuthInfo } from '../../src/auth/principal.js';
import { createLogger } from '../../src/log/logger.js';

const PRM = 'http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp';

/** The bearer middleware on a real Express app, with a stub verifier. */
describe('bearerAuth (stub verifier)', () => {
  let server: Server;
  let base: string;
  const seen: string[] = [];

  beforeAll(async () => {
    const app = express();
    const verifier = {
      async verifyAccessToken(token: string) {
        seen.push(token);
        if (token === 'good') return toAuthInfo({ sub: 'u', clientId: 'c', scopes: [], expiresAt: Math.floor(Date.now() / 1000) + 60 }, token);
        if (token === 'stale') return toAuthInfo({ sub: 'u', clientId: 'c', scopes: [], expiresAt: Math.floor(Date.now() / 1000) - 1 }, token);
        if (token === 'outage') throw new TemporarilyUnavailableError('Hydra is down');
        throw new InvalidTokenError('Token is not active');
      },
    };
    app.get('/mcp', bearerAuth({ verifier, resourceMetadataUrl: PRM, log: createLogger('silent') }), (req, res) => {
      res.json({ sub: principalOf(req.auth)?.sub });
    });
    await new Promise<void>((r) => (server = app.listen(0, '127.0.0.1', () => r())));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const get = (authorization?: string) => fetch(`${base}/mcp`, { headers: authorization === undefined ? {} : { authorization } });

  it('lets a valid token through with its principal', async () => {
    const res = await get('Bearer good');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ sub: 'u' });
  });

  it.each([
    ['no header', undefined, 'Missing Authorization header'],
    ['the Basic scheme', 'Basic dXNlcjpwYXNz', "Authorization header must be 'Bearer <token>'"],
    ['an empty bearer', 'Bearer ', "Authorization header must be 'Bearer <token>'"],
    ['two tokens', 'Bearer good good', "Authorization header must be 'Bearer <token>'"],
    ['a token with forbidden characters', 'Bearer a"b', "Authorization header must be 'Bearer <token>'"],
    ['a huge token', `Bearer ${'a'.repeat(9000)}`, 'Token is too long'],
    ['an expired token', 'Bearer stale', 'Token has expired'],
    ['an inactive token', 'Bearer revoked', 'Token is not active'],
  ])('answers %s with 401 invalid_token and a resource_metadata challenge', async (_case, header, description) => {
    const before = seen.length;
    const res = await get(header);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer error="invalid_token", error_description="${description}", resource_metadata="${PRM}"`);
    expect(await res.json()).toEqual({ error: 'invalid_token', error_description: description });
    if (header === undefined || !/^Bearer [A-Za-z0-9]+$/.test(header) || header.length > 8000) expect(seen.length, 'malformed headers never reach the verifier').toBe(before);
  });

  it('answers an authorization-server outage with 503 and Retry-After, not 401', async () => {
    const res = await get('Bearer outage');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(res.headers.get('www-authenticate')).toBeNull();
  });
});
