import express, { type RequestHandler } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registrationHandler } from '../../../src/auth/handlers/register.js';
import { InvalidRedirectUriError, ServerError, UpstreamOAuthError } from '../../../src/auth/oauthErrors.js';
import type { OAuthClientMetadata } from '../../../src/auth/types.js';
import { createLogger } from '../../../src/log/logger.js';
import { serve } from './serve.js';

/**
 * POST /register (RFC 7591) on a real Express app, with a stub store that
 * records the metadata it was given and refuses by client_name.
 */
let base: string;
let close: () => Promise<void>;
const received: OAuthClientMetadata[] = [];
const limited: string[] = [];

beforeAll(async () => {
  const app = express();
  // A stand-in limiter: refuses one marked request, records that it ran before the body was read.
  const rateLimit: RequestHandler = (req, res, next) => {
    limited.push(String(req.body === undefined));
    if (req.get('x-test-limit')) return void res.status(429).json({ error: 'too_many_requests' });
    next();
  };
  app.use(
    '/register',
    registrationHandler({
      clients: {
        async registerClient(metadata) {
          received.push(metadata);
          if (metadata.client_name === 'bad-uri') throw new InvalidRedirectUriError('redirect_uri "about:blank" uses the scheme about');
          if (metadata.client_name === 'hydra-code') throw new UpstreamOAuthError('invalid_software_statement', 'from Hydra');
          if (metadata.client_name === 'hydra-down') throw new ServerError('The authorization server failed to register the client');
          if (metadata.client_name === 'bug') throw new TypeError('oops');
          return { ...metadata, client_id: 'c-1', client_id_issued_at: 1 };
        },
      },
      rateLimit,
      log: createLogger('silent'),
    }),
  );
  ({ base, close } = await serve(app));
});
afterAll(() => close());

const post = (body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  fetch(new URL('/register', base), { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
const CB = 'https://app.example/cb';

describe('registrationHandler', () => {
  it('registers: 201 with the store’s answer, no-store, readable cross-origin (RFC 7591 §3.2.1)', async () => {
    received.length = 0;
    const res = await post({ redirect_uris: [CB], client_name: 'Notes', token_endpoint_auth_method: 'none' });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await res.json()).toEqual({ redirect_uris: [CB], client_name: 'Notes', token_endpoint_auth_method: 'none', client_id: 'c-1', client_id_issued_at: 1 });
  });

  it('passes only RFC 7591 §2 metadata: unknown fields and proposed ids or secrets are dropped, "" logo_uri/tos_uri count as absent', async () => {
    received.length = 0;
    await post({ redirect_uris: [CB], client_id: 'mine', client_secret: 's', client_id_issued_at: 5, made_up: true, logo_uri: '', tos_uri: '', scope: 'notes:read', jwks: { keys: [] } });
    expect(received).toEqual([{ redirect_uris: [CB], scope: 'notes:read', jwks: { keys: [] } }]);
  });

  it.each<[string, unknown, Record<string, string> | undefined, string | RegExp]>([
    ['an empty object (no redirect_uris)', {}, undefined, /redirect_uris[\s\S]*expected array, received undefined/],
    ['redirect_uris as a string', { redirect_uris: CB }, undefined, /expected array, received string/],
    ['a redirect URI that is not a URL', { redirect_uris: ['not a url'] }, undefined, /Invalid URL/],
    ['a javascript: redirect URI', { redirect_uris: ['javascript:alert(1)'] }, undefined, /URL cannot use javascript:, data:, or vbscript: scheme/],
    ['a data: client_uri', { redirect_uris: [CB], client_uri: 'data:text/html,hi' }, undefined, /URL cannot use javascript:, data:, or vbscript: scheme/],
    ['client_name as a number', { redirect_uris: [CB], client_name: 5 }, undefined, /client_name[\s\S]*expected string, received number/],
    ['a JSON array', [], undefined, /expected object, received array/],
    ['JSON null (the parser takes only objects and arrays)', 'null', undefined, 'Registration request is not valid JSON'],
    ['invalid JSON', '{"redirect_uris": [', undefined, 'Registration request is not valid JSON'],
    ['a body over 16 KB', { redirect_uris: [CB], client_name: 'x'.repeat(17_000) }, undefined, 'Registration request is larger than 16 KB'],
    ['a body that is not JSON', `redirect_uris=${CB}`, { 'content-type': 'application/x-www-form-urlencoded' }, /expected object, received undefined/],
  ])('refuses %s: 400 invalid_client_metadata, the store never asked', async (_case, body, headers, description) => {
    received.length = 0;
    const res = await post(body, headers);
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { error: string; error_description: string };
    expect(answer.error).toBe('invalid_client_metadata');
    if (typeof description === 'string') expect(answer.error_description).toBe(description);
    else expect(answer.error_description).toMatch(description);
    expect(received).toEqual([]);
  });

  it.each([
    ['bad-uri', 400, { error: 'invalid_redirect_uri', error_description: 'redirect_uri "about:blank" uses the scheme about' }],
    ['hydra-code', 400, { error: 'invalid_software_statement', error_description: 'from Hydra' }],
    ['hydra-down', 500, { error: 'server_error', error_description: 'The authorization server failed to register the client' }],
    ['bug', 500, { error: 'server_error', error_description: 'Internal Server Error' }],
  ])('a store refusal (%s) is answered with its own code and status (RFC 7591 §3.2.2)', async (name, status, body) => {
    const res = await post({ redirect_uris: [CB], client_name: name });
    expect(res.status).toBe(status);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual(body);
  });

  it.each(['GET', 'PUT', 'DELETE'])('%s is refused with 405 and Allow: POST', async (method) => {
    const res = await fetch(new URL('/register', base), { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(await res.json()).toEqual({ error: 'method_not_allowed', error_description: `The method ${method} is not allowed for this endpoint` });
  });

  it('answers the CORS preflight of a browser client', async () => {
    const res = await fetch(new URL('/register', base), {
      method: 'OPTIONS',
      headers: { origin: 'https://inspector.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('runs the rate limit before the body is read, so a refused flood costs no parsing', async () => {
    limited.length = 0;
    const res = await post({ redirect_uris: [CB] }, { 'content-type': 'application/json', 'x-test-limit': '1' });
    expect(res.status).toBe(429);
    expect(limited).toEqual(['true']);
  });
});
