import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointRateLimit } from '../../../src/limits/endpointRateLimits.js';
import { authorizationHandler } from '../../../src/auth/handlers/authorize.js';
import { InvalidClientError, InvalidTargetError } from '../../../src/auth/oauthErrors.js';
import type { AuthorizationRequest, OAuthClientInformationFull } from '../../../src/auth/types.js';
import { createLogger } from '../../../src/log/logger.js';
import { serve } from './serve.js';

/**
 * /authorize (RFC 6749 §4.1.1, RFC 7636, RFC 8707) on a real Express app,
 * with a stub client table and a stub `authorize` that records what passed.
 */
const CLIENTS: Record<string, OAuthClientInformationFull> = {
  one: { client_id: 'one', redirect_uris: ['https://app.example/cb'] },
  two: { client_id: 'two', redirect_uris: ['https://app.example/a', 'https://app.example/b'] },
  native: { client_id: 'native', redirect_uris: ['http://localhost/cb', 'http://127.0.0.1/cb?app=1'] },
};
const NEXT = 'https://hydra.example/oauth2/auth';
const PKCE = { response_type: 'code', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' };

let base: string;
let close: () => Promise<void>;
const passed: AuthorizationRequest[] = [];

beforeAll(async () => {
  const app = express();
  app.use(
    '/authorize',
    authorizationHandler({
      clients: {
        async getClient(id) {
          if (id === 'broken') throw new Error('store down');
          if (id === 'https://refused.example/client.json') throw new InvalidClientError('client metadata document could not be fetched');
          return CLIENTS[id];
        },
      },
      async authorize(client, request, res) {
        if (request.resource && request.resource.href !== 'https://mcp.example/mcp') throw new InvalidTargetError('This server only issues tokens for https://mcp.example/mcp');
        if (request.state === 'explode-now') throw new Error('unexpected');
        passed.push(request);
        res.redirect(302, `${NEXT}?client_id=${client.client_id}`);
      },
      log: createLogger('silent'),
    }),
  );
  ({ base, close } = await serve(app));
});
afterAll(() => close());

const get = (params: Record<string, string | string[]>) => {
  const url = new URL('/authorize', base);
  for (const [k, v] of Object.entries(params)) for (const x of [v].flat()) url.searchParams.append(k, x);
  return fetch(url, { redirect: 'manual' });
};
const location = (res: Response) => new URL(res.headers.get('location') ?? 'about:blank');

describe('authorizationHandler: client and redirect URI wrong → 400, never a redirect (RFC 6749 §4.1.2.1)', () => {
  it.each<[string, Record<string, string | string[]>, number, string, string | RegExp]>([
    ['missing client_id', { ...PKCE }, 400, 'invalid_request', /client_id/],
    ['client_id sent twice', { client_id: ['one', 'two'], ...PKCE }, 400, 'invalid_request', /expected string, received array/],
    ['unknown client', { client_id: 'nobody', ...PKCE }, 400, 'invalid_client', 'Invalid client_id'],
    ['a client whose lookup is refused', { client_id: 'https://refused.example/client.json', ...PKCE }, 400, 'invalid_client', 'client metadata document could not be fetched'],
    ['a client store failure', { client_id: 'broken', ...PKCE }, 500, 'server_error', 'Internal Server Error'],
    ['redirect_uri not a URL', { client_id: 'one', redirect_uri: 'not a url', ...PKCE }, 400, 'invalid_request', /redirect_uri must be a valid URL/],
    ['an unregistered redirect_uri', { client_id: 'one', redirect_uri: 'https://evil.example/cb', ...PKCE }, 400, 'invalid_request', 'Unregistered redirect_uri'],
    ['a registered URI with another path', { client_id: 'one', redirect_uri: 'https://app.example/cb/x', ...PKCE }, 400, 'invalid_request', 'Unregistered redirect_uri'],
    ['https on a loopback URI registered as http', { client_id: 'native', redirect_uri: 'https://localhost:5000/cb', ...PKCE }, 400, 'invalid_request', 'Unregistered redirect_uri'],
    ['127.0.0.1 for a URI registered as localhost', { client_id: 'native', redirect_uri: 'http://127.0.0.1:5000/cb', ...PKCE }, 400, 'invalid_request', 'Unregistered redirect_uri'],
    ['a loopback URI whose query differs', { client_id: 'native', redirect_uri: 'http://127.0.0.1:5000/cb?app=2', ...PKCE }, 400, 'invalid_request', 'Unregistered redirect_uri'],
    ['no redirect_uri when several are registered', { client_id: 'two', ...PKCE }, 400, 'invalid_request', 'redirect_uri must be specified when client has multiple registered URIs'],
  ])('%s', async (_case, params, status, error, description) => {
    const res = await get(params);
    expect(res.status).toBe(status);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { error: string; error_description: string };
    expect(body.error).toBe(error);
    if (typeof description === 'string') expect(body.error_description).toBe(description);
    else expect(body.error_description).toMatch(description);
  });
});

describe('authorizationHandler: a bad request from a known client → redirected to it with the error', () => {
  it.each<[string, Record<string, string>, string, string | RegExp, string | null]>([
    ['missing code_challenge (PKCE required)', { response_type: 'code', code_challenge_method: 'S256', state: 'state-123' }, 'invalid_request', /code_challenge/, null],
    ['plain code_challenge_method', { ...PKCE, code_challenge_method: 'plain' }, 'invalid_request', /expected \\"S256\\"|expected "S256"/, null],
    ['missing code_challenge_method', { response_type: 'code', code_challenge: 'abc' }, 'invalid_request', /code_challenge_method/, null],
    ['response_type token', { ...PKCE, response_type: 'token' }, 'invalid_request', /response_type/, null],
    ['missing response_type', { code_challenge: 'abc', code_challenge_method: 'S256' }, 'invalid_request', /response_type/, null],
    ['resource not a URL (RFC 8707 §2)', { ...PKCE, resource: 'mcp' }, 'invalid_request', /resource/, null],
    ['a resource that is not ours', { ...PKCE, resource: 'https://other.example/mcp', state: 'state-123' }, 'invalid_target', 'This server only issues tokens for https://mcp.example/mcp', 'state-123'],
    ['an unexpected failure after the checks', { ...PKCE, state: 'explode-now' }, 'server_error', 'Internal Server Error', 'explode-now'],
  ])('%s', async (_case, params, error, description, state) => {
    const res = await get({ client_id: 'one', ...params });
    expect(res.status).toBe(302);
    const to = location(res);
    expect(`${to.origin}${to.pathname}`).toBe('https://app.example/cb');
    expect(to.searchParams.get('error')).toBe(error);
    const text = to.searchParams.get('error_description') ?? '';
    if (typeof description === 'string') expect(text).toBe(description);
    else expect(text).toMatch(description);
    // A request that did not parse has no state to return; one that did gets its own back.
    expect(to.searchParams.get('state')).toBe(state);
  });
});

describe('authorizationHandler: a good request goes on to authorize', () => {
  it('GET: passes state, scopes, PKCE challenge, resource and the only registered redirect URI', async () => {
    passed.length = 0;
    const res = await get({ client_id: 'one', ...PKCE, state: 'state-123', scope: 'openid notes:read', resource: 'https://mcp.example/mcp' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(`${NEXT}?client_id=one`);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(passed).toEqual([
      { state: 'state-123', scopes: ['openid', 'notes:read'], redirectUri: 'https://app.example/cb', codeChallenge: PKCE.code_challenge, resource: new URL('https://mcp.example/mcp') },
    ]);
  });

  it('POST with a form body works the same (OAuth 2.1 §3.1)', async () => {
    passed.length = 0;
    const res = await fetch(new URL('/authorize', base), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'two', redirect_uri: 'https://app.example/b', ...PKCE }).toString(),
      redirect: 'manual',
    });
    expect(res.status).toBe(302);
    expect(passed[0]).toMatchObject({ redirectUri: 'https://app.example/b', scopes: [] });
  });

  it('an unsupported scope is not judged here: it goes on unchanged, and Hydra refuses what the client may not ask for', async () => {
    passed.length = 0;
    const res = await get({ client_id: 'one', ...PKCE, scope: 'notes:read admin:everything' });
    expect(res.status).toBe(302);
    expect(passed[0]?.scopes).toEqual(['notes:read', 'admin:everything']);
  });

  it.each([
    ['localhost on an ephemeral port', 'http://localhost:54321/cb'],
    ['127.0.0.1 on another port, same path and query', 'http://127.0.0.1:6000/cb?app=1'],
  ])('a loopback redirect URI on any port is accepted (RFC 8252 §7.3): %s', async (_case, redirectUri) => {
    passed.length = 0;
    const res = await get({ client_id: 'native', redirect_uri: redirectUri, ...PKCE });
    expect(res.status).toBe(302);
    expect(passed[0]?.redirectUri).toBe(redirectUri);
  });

  it.each(['PUT', 'DELETE', 'OPTIONS'])('%s is refused with 405 and Allow: GET, POST', async (method) => {
    const res = await fetch(new URL('/authorize?client_id=one', base), { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, POST');
    expect(await res.json()).toEqual({ error: 'method_not_allowed', error_description: `The method ${method} is not allowed for this endpoint` });
  });
});

describe('authorizationHandler: rate limit', () => {
  it('past the per-address limit: 429 too_many_requests with Retry-After', async () => {
    const app = express();
    app.use('/authorize', authorizationHandler({ clients: { getClient: async () => undefined }, authorize: async () => {}, rateLimit: endpointRateLimit('authorize', { limits: { authorize: { limit: 2, windowMs: 60_000 } } }) }));
    const s = await serve(app);
    try {
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await fetch(`${s.base}/authorize?client_id=x`)).status);
      expect(statuses).toEqual([400, 400, 429]);
      const res = await fetch(`${s.base}/authorize?client_id=x`);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await res.json()).toEqual({ error: 'too_many_requests', error_description: 'Too many authorize requests from this address; retry after the time in Retry-After' });
    } finally {
      await s.close();
    }
  });
});
