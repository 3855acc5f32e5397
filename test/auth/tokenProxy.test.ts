import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authServerRouter } from '../../src/auth/authServerRouter.js';
import { HydraClientsStore } from '../../src/auth/hydraClients.js';
import { HydraProvider } from '../../src/auth/hydraProvider.js';
import { ResourceSet } from '../../src/auth/resource.js';
import type { AccessTokenVerifier } from '../../src/auth/tokenVerifier.js';
import { createHydra } from '../../src/hydra/index.js';
import { endpointRateLimit } from '../../src/limits/endpointRateLimits.js';
import { createLogger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { serve } from './handlers/serve.js';
import { sample } from '../support/metricSamples.js';

/**
 * oauth_token_requests_total counts every answer of our POST /token once,
 * whoever gives it: the handler's own 400s, Hydra's answers passed on, the
 * 503 of an unreachable Hydra, the limiter's 429 (before the form is read)
 * and the body parser's refusal. A real Express app with the real router and
 * limiter; Hydra's public port is a fetch that answers as each case says.
 */
describe('POST /token: oauth_token_requests_total', () => {
  const resources = new ResourceSet([new URL('http://127.0.0.1:9/mcp')]);
  const log = createLogger('silent');
  const CLIENT_ID = 'client-3e9a7c-not-a-label';
  const REFRESH = 'ory_rt_REFRESH-TOKEN-5d20e1';
  let hydraAnswers: () => Response;
  let metrics: Metrics;
  let base: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const fakeFetch = (async () => hydraAnswers()) as typeof fetch;
    const hydra = createHydra({ adminUrl: new URL('http://127.0.0.1:1'), publicUrl: new URL('http://127.0.0.1:1'), fetch: fakeFetch });
    const clientsStore = new HydraClientsStore({ hydraAdmin: hydra.admin, resources, log });
    const provider = new HydraProvider({ hydraPublic: hydra.public, hydraBrowserUrl: new URL('http://127.0.0.1:1'), clientsStore, verifier: {} as AccessTokenVerifier, resources, log });
    metrics = new Metrics();
    const app = express();
    app.use(
      authServerRouter({
        provider,
        publicBaseUrl: new URL('http://127.0.0.1:9'),
        resources,
        resourceName: 'test',
        log,
        // Seven answers allowed, then 429: the last case.
        limiter: (endpoint) => endpointRateLimit(endpoint, { limits: { token: { limit: 7, windowMs: 60_000 } } }),
        onTokenAnswer: (grant, outcome) => metrics.tokenRequest(grant, outcome),
      }),
    );
    ({ base, close } = await serve(app));
  });
  afterAll(() => close());

  const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  const post = (form: Record<string, string>, init: { body?: string } = {}) =>
    fetch(`${base}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: init.body ?? new URLSearchParams(form).toString() });
  const count = (grant_type: string, outcome: string) => sample(metrics, 'oauth_token_requests_total', { grant_type, outcome });

  // In order: the limiter counts every request, so the 429 comes eighth.
  it.each([
    ['Hydra issues tokens for a refresh', { grant_type: 'refresh_token', refresh_token: REFRESH, client_id: CLIENT_ID }, () => json(200, { access_token: 'ory_at_x', token_type: 'bearer' }), 200, ['refresh_token', 'ok']],
    ['Hydra refuses a refresh token', { grant_type: 'refresh_token', refresh_token: REFRESH, client_id: CLIENT_ID }, () => json(400, { error: 'invalid_grant', error_description: 'expired' }), 400, ['refresh_token', 'invalid_grant']],
    ['Hydra unreachable', { grant_type: 'authorization_code', code: 'ory_ac_x', client_id: CLIENT_ID }, () => { throw new TypeError('fetch failed'); }, 503, ['authorization_code', 'temporarily_unavailable']],
    ['our own 400: a grant we do not serve', { grant_type: 'password', username: 'a', password: 'b' }, () => json(500, {}), 400, ['other', 'unsupported_grant_type']],
    ['our own 400: a missing code', { grant_type: 'authorization_code', client_id: CLIENT_ID }, () => json(500, {}), 400, ['authorization_code', 'invalid_request']],
    ['our own 400: a resource that is not ours (RFC 8707)', { grant_type: 'client_credentials', resource: 'https://elsewhere.example/' }, () => json(500, {}), 400, ['client_credentials', 'invalid_target']],
  ] as const)('%s: counted once with its grant type and outcome', async (_case, form, answer, status, [grant, outcome]) => {
    hydraAnswers = answer;
    const before = (await count(grant, outcome)) ?? 0;
    expect((await post(form)).status).toBe(status);
    expect(await count(grant, outcome)).toBe(before + 1);
  });

  it("the body parser's 413 (a form over 16 kB), before any handler: invalid_request", async () => {
    const res = await post({}, { body: `grant_type=refresh_token&refresh_token=${'x'.repeat(20_000)}` });
    expect(res.status).toBe(413);
    expect(await count('other', 'invalid_request')).toBe(1);
  });

  it("the limiter's 429, before the form is read: rate_limited, grant type other", async () => {
    const res = await post({ grant_type: 'refresh_token', refresh_token: REFRESH });
    expect(res.status).toBe(429);
    expect(await count('other', 'rate_limited')).toBe(1);
  });

  it('every answer once in all (eight requests, eight counts), and no client id or token among the labels', async () => {
    const text = await metrics.registry.metrics();
    const counted = [...text.matchAll(/^oauth_token_requests_total\{.*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(counted).toBe(8);
    for (const secret of [CLIENT_ID, REFRESH, 'ory_ac_x']) expect(text).not.toContain(secret);
  });
});
