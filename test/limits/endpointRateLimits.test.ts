import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { MemoryStore, type Store } from 'express-rate-limit';
import { afterEach, describe, expect, it } from 'vitest';
import { authServerRouter } from '../../src/auth/authServerRouter.js';
import { ENDPOINT_LIMITS, endpointRateLimit, type LimitedEndpoint } from '../../src/limits/endpointRateLimits.js';
import { HydraClientsStore } from '../../src/auth/hydraClients.js';
import { HydraProvider } from '../../src/auth/hydraProvider.js';
import { ResourceSet } from '../../src/auth/resource.js';
import type { AccessTokenVerifier } from '../../src/auth/tokenVerifier.js';
import { createHydra } from '../../src/hydra/index.js';
import { createLogger } from '../../src/log/logger.js';
import { sharedRateLimitStores } from '../../src/limits/sharedRateLimitStore.js';
import { openDatabase } from '../../src/store/database.js';
import { rateCountersStore } from '../../src/store/windowCounters.js';

/**
 * /token, /revoke and /register answer 429 past their per-address limit,
 * through the real authServerRouter. The requests are malformed, so each is
 * refused locally (400) while under the limit and Hydra (an unreachable
 * address here) is never asked: what is counted is the request, not its fate.
 */
let servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  servers = [];
});

async function start(options: { limit: number; store?: (name: LimitedEndpoint) => Store }): Promise<string> {
  const log = createLogger('error', () => {});
  const resources = new ResourceSet([new URL('http://127.0.0.1:9/mcp')]);
  const nowhere = new URL('http://127.0.0.1:1');
  const hydra = createHydra({ adminUrl: nowhere, publicUrl: nowhere });
  const clientsStore = new HydraClientsStore({ hydraAdmin: hydra.admin, resources, log });
  const provider = new HydraProvider({
    hydraPublic: hydra.public,
    hydraBrowserUrl: nowhere,
    clientsStore,
    verifier: {} as AccessTokenVerifier,
    resources,
    log,
  });
  const small = { limit: options.limit, windowMs: 60_000 };
  const app = express();
  app.use(
    authServerRouter({
      provider,
      publicBaseUrl: new URL('http://127.0.0.1:9'),
      resources,
      resourceName: 'test',
      limiter: (endpoint) => endpointRateLimit(endpoint, { limits: { token: small, revoke: small, register: small, authorize: small }, ...(options.store ? { store: options.store } : {}) }),
    }),
  );
  const server = await new Promise<Server>((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
/** A second replica beside the first (same options). */
const startAnother = start;

const requests: Record<LimitedEndpoint, RequestInit & { path: string }> = {
  token: { path: '/token', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=authorization_code' },
  revoke: { path: '/revoke', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' },
  register: { path: '/register', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' },
  // No client_id: refused locally (400) before any client lookup.
  authorize: { path: '/authorize', method: 'GET' },
};

describe('endpoint rate limits', () => {
  it.each(Object.keys(requests) as LimitedEndpoint[])('%s: 400 while under the limit, then 429 too_many_requests with Retry-After', async (name) => {
    const base = await start({ limit: 3 });
    const { path, ...init } = requests[name];
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(base + path, init)).status);
    expect(statuses).toEqual([400, 400, 400]);
    const refused = await fetch(base + path, init);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // A browser client can read it (/authorize is a page the browser navigates to, not a CORS call).
    if (name !== 'authorize') expect(refused.headers.get('access-control-allow-origin')).toBe('*');
    expect(await refused.json()).toEqual({ error: 'too_many_requests', error_description: expect.stringContaining(name) });
  });

  it('each endpoint counts on its own: a spent /token allowance leaves /revoke and /register open', async () => {
    const base = await start({ limit: 1 });
    const { path, ...init } = requests.token;
    await fetch(base + path, init);
    expect((await fetch(base + path, init)).status).toBe(429);
    for (const other of ['revoke', 'register'] as const) {
      const { path: p, ...i } = requests[other];
      expect((await fetch(base + p, i)).status).toBe(400);
    }
  });

  it('counts in the injected store, one store per limiter', async () => {
    const hits: string[] = [];
    const store = (name: LimitedEndpoint): Store => {
      const inner = new MemoryStore();
      return Object.assign(inner, {
        increment: (key: string) => {
          hits.push(name);
          return MemoryStore.prototype.increment.call(inner, key);
        },
      });
    };
    const base = await start({ limit: 5, store });
    for (const name of ['token', 'revoke', 'register', 'authorize', 'token'] as const) {
      const { path, ...init } = requests[name];
      await fetch(base + path, init);
    }
    expect(hits).toEqual(['token', 'revoke', 'register', 'authorize', 'token']);
  });

  it('issue 26 #14: /authorize counts in the database every replica shares: two servers on one store refuse together', async () => {
    const db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    try {
      const store = sharedRateLimitStores(rateCountersStore(db));
      const a = await start({ limit: 3, store });
      const b = await startAnother({ limit: 3, store });
      const { path, ...init } = requests.authorize;
      const statuses = [];
      for (const base of [a, b, a, b]) statuses.push((await fetch(base + path, init)).status);
      expect(statuses).toEqual([400, 400, 400, 429]);
    } finally {
      await db.destroy();
    }
  });

  it('defaults: /token, /revoke and /authorize 100 per 15 minutes, /register 20 per hour', () => {
    expect(ENDPOINT_LIMITS).toEqual({
      token: { limit: 100, windowMs: 900_000 },
      revoke: { limit: 100, windowMs: 900_000 },
      register: { limit: 20, windowMs: 3_600_000 },
      authorize: { limit: 100, windowMs: 900_000 },
    });
  });
});
