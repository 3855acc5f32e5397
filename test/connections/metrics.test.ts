import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createConnectFlow } from '../../src/connections/connectFlow.js';
import { createCredentialService } from '../../src/connections/credentials.js';
import { createProviderClient } from '../../src/connections/providerClient.js';
import type { ProviderConfig } from '../../src/connections/providers.js';
import { createSealer, type StoredCredential } from '../../src/connections/sealing.js';
import { createLogger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { connectStatesStore } from '../../src/store/connectStatesStore.js';
import { type ConnectionsStore, connectionsStore } from '../../src/store/connectionsStore.js';
import { type Db, openDatabase } from '../../src/store/database.js';
import { sample } from '../support/metricSamples.js';

/**
 * provider_requests_total (every call to a provider's endpoints) and
 * connected_account_credential_duration_seconds (every tool request for an
 * access token): the real provider client (openid-client), credential
 * service and connect flow on in-memory SQLite; only the provider's HTTP is
 * the client's injected fetch, answering as each case says.
 */
const PROVIDER = 'acme';
const SUB = 'sub-0b6f1d-person';
const BASE = 'https://provider.test';
const ACCESS = 'AT-access-token-91c2';
const REFRESH = 'RT-refresh-token-4e7a';

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const tokens = () => json(200, { access_token: 'AT-new-5c1d', refresh_token: 'RT-new-8f2e', token_type: 'Bearer', expires_in: 3600 });

const config = (over: Partial<ProviderConfig> = {}): ProviderConfig => ({
  name: PROVIDER,
  displayName: 'Acme',
  authorizationEndpoint: `${BASE}/authorize`,
  tokenEndpoint: `${BASE}/token`,
  revocationEndpoint: `${BASE}/revoke`,
  clientId: 'our-client',
  clientSecret: 'our-secret',
  tokenEndpointAuthMethod: 'client_secret_basic',
  scopes: ['read'],
  pkce: true,
  authorizationParams: {},
  ...over,
});

describe('connected accounts: provider_requests_total and connected_account_credential_duration_seconds', () => {
  let db: Db;
  let store: ConnectionsStore;
  let metrics: Metrics;
  let answer: (url: URL) => Response;
  const sealer = createSealer([{ kid: 'k1', key: new Uint8Array(randomBytes(32)) }]);
  const log = createLogger('silent');
  const providerFetch = (async (input: RequestInfo | URL, init?: RequestInit) => answer(new URL(new Request(input, init).url))) as typeof fetch;

  beforeEach(async () => {
    db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    store = connectionsStore(db, 'sqlite');
    metrics = new Metrics();
    metrics.providersAre([PROVIDER]);
    answer = () => json(500, { error: 'server_error' });
  });
  afterEach(() => db.destroy());

  /** The clients as src/connections/index.ts builds them: each call reported under the provider's name. */
  const clients = (over: Partial<ProviderConfig> = {}) =>
    new Map([[PROVIDER, createProviderClient(config(over), { fetch: providerFetch, onCall: (call, outcome) => metrics.providerRequest(PROVIDER, call, outcome) })]]);
  const credentials = () => createCredentialService({ store, sealer, providers: clients(), log, onTimed: (p, o, s) => metrics.credentialDuration(p, o, s) });
  const flow = (over: Partial<ProviderConfig> = {}) => createConnectFlow({ store, states: connectStatesStore(db), sealer, providers: clients(over), publicBaseUrl: new URL('https://mcp.test'), log });
  const calls = (call: string, outcome: string) => sample(metrics, 'provider_requests_total', { provider: PROVIDER, call, outcome });
  const timed = (outcome: string) => sample(metrics, 'connected_account_credential_duration_seconds_count', { provider: PROVIDER, outcome });
  const useToken = () =>
    credentials()
      .forTool(SUB, [PROVIDER])
      [PROVIDER]!.accessToken()
      .catch((e: unknown) => e as Error);

  async function connected(credential: Partial<StoredCredential> = {}) {
    const c: StoredCredential = { accessToken: ACCESS, refreshToken: REFRESH, expiresAt: Math.floor(Date.now() / 1000) + 3600, tokenType: 'Bearer', ...credential };
    await store.upsert({ sub: SUB, provider: PROVIDER, sealed: await sealer.seal(c, { sub: SUB, provider: PROVIDER }), keyId: sealer.newestKeyId, expiresAt: c.expiresAt! });
  }
  const expiring = () => connected({ expiresAt: Math.floor(Date.now() / 1000) + 10 });

  it('a fresh stored token: timed as ok, no call to the provider', async () => {
    await connected();
    expect(await useToken()).toBe(ACCESS);
    expect(await timed('ok')).toBe(1);
    expect(await metrics.registry.metrics()).not.toMatch(/^provider_requests_total\{/m);
  });

  it('an expiring token refreshed: one refresh call ok, timed as refreshed', async () => {
    await expiring();
    answer = tokens;
    expect(await useToken()).toBe('AT-new-5c1d');
    expect(await calls('refresh', 'ok')).toBe(1);
    expect(await timed('refreshed')).toBe(1);
  });

  it.each([
    ['the provider refuses with an OAuth error (invalid_client)', () => json(401, { error: 'invalid_client' }), 'refused', 'unavailable'],
    ['the provider refuses the grant (invalid_grant): the person must connect again', () => json(400, { error: 'invalid_grant' }), 'refused', 'reconnect'],
    ['the provider fails (HTTP 503)', () => json(503, { error: 'temporarily_unavailable' }), 'unavailable', 'unavailable'],
  ])('a refresh where %s: refresh %s, timed as %s', async (_case, provider, outcome, use) => {
    await expiring();
    answer = provider;
    expect(await useToken()).toBeInstanceOf(Error);
    expect(await calls('refresh', outcome)).toBe(1);
    expect(await timed(use)).toBe(1);
  });

  it('never connected: timed as reconnect', async () => {
    expect((await useToken()) as Error).toMatchObject({ name: 'ConnectionRequiredError' });
    expect(await timed('reconnect')).toBe(1);
  });

  it('connect: the code exchange is one code_exchange call; disconnect revokes both tokens (two revocation calls)', async () => {
    answer = tokens;
    const f = flow();
    const { authorizationUrl, browserBinding } = await f.begin(SUB, PROVIDER);
    const state = authorizationUrl.searchParams.get('state')!;
    await f.finish({ provider: PROVIDER, callbackUrl: new URL(`https://mcp.test/account/connections/${PROVIDER}/callback?code=c0de&state=${state}`), browserBinding, sub: SUB });
    expect(await calls('code_exchange', 'ok')).toBe(1);
    answer = () => new Response(null, { status: 200 });
    expect(await f.disconnect(SUB, PROVIDER)).toEqual({ existed: true, revoked: true });
    expect(await calls('revocation', 'ok')).toBe(2);
  });

  it('discovery failing when a connect starts: one discovery call, unavailable', async () => {
    answer = () => new Response('down', { status: 503 });
    await expect(flow({ issuer: BASE, authorizationEndpoint: undefined, tokenEndpoint: undefined, revocationEndpoint: undefined }).begin(SUB, PROVIDER)).rejects.toMatchObject({ code: 'provider_unavailable' });
    expect(await calls('discovery', 'unavailable')).toBe(1);
  });

  it('no sub and no token among the labels', async () => {
    await expiring();
    answer = tokens;
    await useToken();
    const text = await metrics.registry.metrics();
    for (const secret of [SUB, ACCESS, REFRESH, 'AT-new-5c1d']) expect(text).not.toContain(secret);
  });
});
