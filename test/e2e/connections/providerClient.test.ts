import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProviderClient, type ProviderClient, ProviderError } from '../../../src/connections/providerClient.js';
import type { ProviderConfig } from '../../../src/connections/providers.js';
import type { StoredCredential } from '../../../src/connections/sealing.js';
import { freeLoopbackPort } from '../../../scripts/hydra.js';
import { Browser } from '../../support/browser.js';
import { startUpstream, type Upstream } from '../upstream.js';

/** Never served: the browser stops when Hydra sends it here, as our callback would receive it. */
const REDIRECT_URI = 'http://127.0.0.1:53999/connections/upstream/callback';
const PERSON = 'alice-upstream';

const random = () => randomBytes(32).toString('base64url');
const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

/** The ProviderError `promise` rejects with, checked to be one. */
async function providerError(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the call failed with a ProviderError').toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('provider client against a second real Ory Hydra (RFC 6749 code flow, RFC 7636 PKCE, RFC 7009)', () => {
  let up: Upstream;
  let confidential: ProviderConfig;
  let client: ProviderClient;

  async function me(accessToken: string) {
    const res = await fetch(up.apiUrl, { headers: { authorization: `Bearer ${accessToken}` } });
    return { status: res.status, body: (await res.json()) as { sub?: string; scope?: string } };
  }

  /** The person's part: open the authorization URL, sign in at the provider, allow (or deny), land on our callback. */
  async function authorize(c: ProviderClient, opts: { decision?: 'Allow' | 'Deny'; user?: string } = {}) {
    const state = random();
    const codeVerifier = random();
    const url = await c.authorizationUrl({ redirectUri: REDIRECT_URI, state, codeVerifier });
    const browser = new Browser();
    const atCallback = (u: URL) => u.href.startsWith(REDIRECT_URI);
    let page = await browser.open(url.href, atCallback);
    page = await page.submit('Sign in', { fill: { Username: opts.user ?? PERSON } }, atCallback);
    page = await page.submit(opts.decision ?? 'Allow', {}, atCallback);
    expect(atCallback(page.url), `back at the callback; visited:\n${browser.history.join('\n')}`).toBe(true);
    return { callbackUrl: page.url, state, codeVerifier };
  }

  async function connect(c: ProviderClient = client): Promise<StoredCredential> {
    const { callbackUrl, state, codeVerifier } = await authorize(c);
    return c.exchangeCode({ callbackUrl, redirectUri: REDIRECT_URI, expectedState: state, codeVerifier });
  }

  beforeAll(async () => {
    up = await startUpstream({ storage: 'file', accessTokenTtl: '10m' });
    const registered = await up.registerClient({ redirectUris: [REDIRECT_URI], scope: 'openid offline_access profile' });
    confidential = {
      name: 'upstream',
      displayName: 'Upstream',
      issuer: up.issuer,
      clientId: registered.clientId,
      clientSecret: registered.clientSecret,
      tokenEndpointAuthMethod: 'client_secret_basic',
      scopes: ['openid', 'offline_access'],
      pkce: true,
      authorizationParams: {},
    };
    client = createProviderClient(confidential);
  });

  afterAll(async () => {
    await up?.stop();
  });

  it('discovers the provider on first use, once, and builds the authorization URL on its authorization endpoint', async () => {
    const seen: string[] = [];
    const counting: typeof fetch = (input, init) => {
      seen.push(String(input));
      return fetch(input, init);
    };
    const c = createProviderClient(confidential, { fetch: counting });
    expect(seen, 'nothing fetched before the first call').toEqual([]);
    const first = await c.authorizationUrl({ redirectUri: REDIRECT_URI, state: random(), codeVerifier: random() });
    await c.authorizationUrl({ redirectUri: REDIRECT_URI, state: random(), codeVerifier: random() });
    expect(seen).toEqual([`${up.issuer}/.well-known/openid-configuration`]);
    expect(`${first.origin}${first.pathname}`).toBe(`${up.publicUrl}/oauth2/auth`);
    expect(c).toMatchObject({ name: 'upstream', displayName: 'Upstream', scopes: ['openid', 'offline_access'] });
  });

  it('puts state, the S256 code challenge (never the verifier), scope, client and redirect URI into the authorization URL', async () => {
    const state = random();
    const codeVerifier = random();
    const url = await createProviderClient({ ...confidential, authorizationParams: { prompt: 'consent' } }).authorizationUrl({ redirectUri: REDIRECT_URI, state, codeVerifier });
    const q = url.searchParams;
    expect(Object.fromEntries(q)).toEqual({
      client_id: confidential.clientId,
      response_type: 'code',
      redirect_uri: REDIRECT_URI,
      scope: 'openid offline_access',
      state,
      code_challenge: s256(codeVerifier),
      code_challenge_method: 'S256',
      prompt: 'consent',
    });
    expect(url.href).not.toContain(codeVerifier);
  });

  it('connects: sign-in and consent at the provider, code exchanged, the token works at the upstream API', async () => {
    const before = Math.floor(Date.now() / 1000);
    const credential = await connect();
    expect(credential.accessToken).toMatch(/^ory_at_/);
    expect(credential.refreshToken).toMatch(/^ory_rt_/);
    expect(credential.scope?.split(' ').sort()).toEqual(['offline_access', 'openid']);
    expect(credential.tokenType?.toLowerCase()).toBe('bearer');
    // The harness's accessTokenTtl (TTL_ACCESS_TOKEN=10m) reaches Hydra, and expires_in becomes an absolute time.
    expect(credential.expiresAt).toBeGreaterThanOrEqual(before + 590);
    expect(credential.expiresAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 600);
    expect(await me(credential.accessToken)).toEqual({ status: 200, body: expect.objectContaining({ sub: PERSON }) });
  });

  it('refreshes: a new access token, the rotated refresh token is the one that works next, the spent one is refused', async () => {
    const first = await connect();
    const second = await client.refresh(first.refreshToken!);
    expect(second.accessToken).not.toBe(first.accessToken);
    expect(second.refreshToken, 'Hydra rotates refresh tokens').not.toBe(first.refreshToken);
    expect((await me(second.accessToken)).body.sub).toBe(PERSON);

    const third = await client.refresh(second.refreshToken!);
    expect((await me(third.accessToken)).status).toBe(200);

    // Reuse of a spent refresh token (no grace period at this provider) is invalid_grant, and ends the grant.
    const reuse = await providerError(client.refresh(first.refreshToken!));
    expect(reuse).toMatchObject({ kind: 'invalid_grant', provider: 'upstream', code: 'invalid_grant' });
    expect(reuse.message).not.toContain(first.refreshToken!);
  });

  it('keeps the refresh token it has when the provider sends none back', async () => {
    const credential = await connect();
    // The same Hydra, with refresh_token dropped from its token response, as a non-rotating provider answers.
    const noRotation: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!String(input).endsWith('/oauth2/token') || !res.ok) return res;
      const { refresh_token: _dropped, ...body } = (await res.json()) as Record<string, unknown>;
      return new Response(JSON.stringify(body), { status: res.status, headers: { 'content-type': 'application/json' } });
    };
    const refreshed = await createProviderClient(confidential, { fetch: noRotation }).refresh(credential.refreshToken!);
    expect(refreshed.refreshToken).toBe(credential.refreshToken);
    expect((await me(refreshed.accessToken)).status).toBe(200);
  });

  it('revokes (RFC 7009): the upstream API refuses the access token and refresh is invalid_grant', async () => {
    const credential = await connect();
    expect((await me(credential.accessToken)).status).toBe(200);
    await client.revoke(credential);
    expect(await me(credential.accessToken)).toEqual({ status: 401, body: { error: 'invalid_token' } });
    expect(await providerError(client.refresh(credential.refreshToken!))).toMatchObject({ kind: 'invalid_grant' });
  });

  it('a grant the person revoked at the provider: refresh is invalid_grant (the connection must be made again)', async () => {
    const credential = await connect();
    await up.revokeConsent(PERSON);
    expect((await me(credential.accessToken)).status).toBe(401);
    const err = await providerError(client.refresh(credential.refreshToken!));
    expect(err.kind).toBe('invalid_grant');
    expect(err.message).toMatch(/^provider "upstream": refresh: invalid_grant/);
  });

  it('refuses a callback whose state is not the one this flow sent, without redeeming the code', async () => {
    const { callbackUrl, state, codeVerifier } = await authorize(client);
    const err = await providerError(client.exchangeCode({ callbackUrl, redirectUri: REDIRECT_URI, expectedState: random(), codeVerifier }));
    expect(err).toMatchObject({ kind: 'refused', code: 'state_mismatch' });
    expect(err.message).toContain('state');

    const noState = new URL(callbackUrl);
    noState.searchParams.delete('state');
    expect(await providerError(client.exchangeCode({ callbackUrl: noState, redirectUri: REDIRECT_URI, expectedState: state, codeVerifier }))).toMatchObject({ kind: 'refused', code: 'state_mismatch' });

    // The code never left: with the right state it is still good.
    const credential = await client.exchangeCode({ callbackUrl, redirectUri: REDIRECT_URI, expectedState: state, codeVerifier });
    expect((await me(credential.accessToken)).status).toBe(200);
  });

  it('a wrong PKCE verifier is invalid_grant (RFC 7636 §4.6)', async () => {
    const { callbackUrl, state } = await authorize(client);
    const err = await providerError(client.exchangeCode({ callbackUrl, redirectUri: REDIRECT_URI, expectedState: state, codeVerifier: random() }));
    expect(err).toMatchObject({ kind: 'invalid_grant', code: 'invalid_grant' });
  });

  it('a code used twice is invalid_grant (RFC 6749 §4.1.2)', async () => {
    const { callbackUrl, state, codeVerifier } = await authorize(client);
    await client.exchangeCode({ callbackUrl, redirectUri: REDIRECT_URI, expectedState: state, codeVerifier });
    expect(await providerError(client.exchangeCode({ callbackUrl, redirectUri: REDIRECT_URI, expectedState: state, codeVerifier }))).toMatchObject({ kind: 'invalid_grant' });
  });

  it('the person denies at the provider: refused with access_denied (RFC 6749 §4.1.2.1)', async () => {
    const { callbackUrl, state, codeVerifier } = await authorize(client, { decision: 'Deny' });
    expect(callbackUrl.searchParams.get('error')).toBe('access_denied');
    const err = await providerError(client.exchangeCode({ callbackUrl, redirectUri: REDIRECT_URI, expectedState: state, codeVerifier }));
    expect(err).toMatchObject({ kind: 'refused', code: 'access_denied' });
  });

  it('a wrong client secret: refused with the provider\'s code, and the secret is not in the message', async () => {
    const wrongSecret = `wrong-${random()}`;
    const c = createProviderClient({ ...confidential, clientSecret: wrongSecret });
    const { callbackUrl, state, codeVerifier } = await authorize(c);
    const err = await providerError(c.exchangeCode({ callbackUrl, redirectUri: REDIRECT_URI, expectedState: state, codeVerifier }));
    expect(err).toMatchObject({ kind: 'refused', code: 'invalid_client' });
    expect(err.message).toMatch(/^provider "upstream": code exchange: the provider refused with invalid_client \(HTTP 401\)/);
    expect(err.message).not.toContain(wrongSecret);
  });

  it('explicit endpoints (no discovery), client_secret_post: connect, refresh, revoke', async () => {
    const registered = await up.registerClient({ redirectUris: [REDIRECT_URI], scope: 'offline_access', tokenEndpointAuthMethod: 'client_secret_post' });
    const c = createProviderClient({
      name: 'manual',
      displayName: 'Manual',
      authorizationEndpoint: `${up.publicUrl}/oauth2/auth`,
      tokenEndpoint: `${up.publicUrl}/oauth2/token`,
      revocationEndpoint: `${up.publicUrl}/oauth2/revoke`,
      clientId: registered.clientId,
      clientSecret: registered.clientSecret,
      tokenEndpointAuthMethod: 'client_secret_post',
      scopes: ['offline_access'],
      pkce: true,
      authorizationParams: {},
    });
    const credential = await connect(c);
    expect(credential.scope).toBe('offline_access');
    const refreshed = await c.refresh(credential.refreshToken!);
    expect((await me(refreshed.accessToken)).status).toBe(200);
    await c.revoke(refreshed);
    expect((await me(refreshed.accessToken)).status).toBe(401);
  });

  it('a public client (none) with PKCE connects; without a revocation endpoint, revoke does nothing', async () => {
    const registered = await up.registerClient({ redirectUris: [REDIRECT_URI], scope: 'offline_access', tokenEndpointAuthMethod: 'none' });
    const c = createProviderClient({
      name: 'public',
      displayName: 'Public',
      authorizationEndpoint: `${up.publicUrl}/oauth2/auth`,
      tokenEndpoint: `${up.publicUrl}/oauth2/token`,
      clientId: registered.clientId,
      tokenEndpointAuthMethod: 'none',
      scopes: ['offline_access'],
      pkce: true,
      authorizationParams: {},
    });
    const credential = await connect(c);
    await c.revoke(credential);
    expect((await me(credential.accessToken)).status, 'still valid: nothing was revoked').toBe(200);
  });

  describe('provider down or failing', () => {
    const servers: Server[] = [];
    const sockets = new Set<Socket>();
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    });

    /** A loopback HTTP server answering every request with `status` and `body` (or the body made from its own base URL). */
    async function answering(status: number, body: unknown): Promise<string> {
      let base = '';
      const server = createServer((_req, res) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(typeof body === 'function' ? body(base) : body)),
      );
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      return base;
    }

    const explicitAt = (base: string): ProviderConfig => ({
      ...confidential,
      name: 'flaky',
      issuer: undefined,
      authorizationEndpoint: `${base}/oauth2/auth`,
      tokenEndpoint: `${base}/oauth2/token`,
      revocationEndpoint: `${base}/oauth2/revoke`,
      scopes: ['offline_access'],
    });

    it('discovery at a closed port is unavailable, names the provider, and is tried again on the next call', async () => {
      const closed = await freeLoopbackPort();
      let calls = 0;
      // The first request goes to a closed port (a real ECONNREFUSED), later ones to the real provider.
      const flaky: typeof fetch = (input, init) => {
        calls++;
        const url = new URL(String(input));
        if (calls === 1) url.port = String(closed);
        return fetch(url, init);
      };
      const c = createProviderClient(confidential, { fetch: flaky });
      const err = await providerError(c.authorizationUrl({ redirectUri: REDIRECT_URI, state: random(), codeVerifier: random() }));
      expect(err).toMatchObject({ kind: 'unavailable', provider: 'upstream' });
      expect(err.message).toBe(`provider "upstream": discovery at ${up.issuer} failed: connection refused (ECONNREFUSED)`);
      const url = await c.authorizationUrl({ redirectUri: REDIRECT_URI, state: random(), codeVerifier: random() });
      expect(url.pathname).toBe('/oauth2/auth');
    });

    it('discovery of an issuer nobody listens on is unavailable', async () => {
      const issuer = `http://127.0.0.1:${await freeLoopbackPort()}`;
      const err = await providerError(createProviderClient({ ...confidential, name: 'nowhere', issuer }).refresh('x'));
      expect(err).toMatchObject({ kind: 'unavailable', provider: 'nowhere' });
      expect(err.message).toMatch(/^provider "nowhere": discovery at http:\/\/127\.0\.0\.1:\d+ failed: connection refused/);
    });

    it('a token endpoint on a closed port is unavailable', async () => {
      const c = createProviderClient(explicitAt(`http://127.0.0.1:${await freeLoopbackPort()}`));
      const refreshToken = `ory_rt_${random()}`;
      const err = await providerError(c.refresh(refreshToken));
      expect(err).toMatchObject({ kind: 'unavailable', provider: 'flaky' });
      expect(err.message).not.toContain(refreshToken);
    });

    it('a provider that does not answer in time is unavailable', async () => {
      const hang = createTcpServer((socket) => sockets.add(socket)); // accepts, never answers
      await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
      try {
        const c = createProviderClient(explicitAt(`http://127.0.0.1:${(hang.address() as { port: number }).port}`), { timeoutMs: 300 });
        const started = Date.now();
        const err = await providerError(c.refresh('some-refresh-token'));
        expect(err).toMatchObject({ kind: 'unavailable' });
        expect(err.message).toContain('no answer in time');
        expect(Date.now() - started).toBeLessThan(5000);
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise((r) => hang.close(r));
      }
    });

    it.each<[string, string, number, unknown]>([
      ['HTTP 503 with an OAuth error body', 'unavailable', 503, { error: 'temporarily_unavailable' }],
      ['HTTP 500 with a non-OAuth body', 'unavailable', 500, { message: 'boom' }],
      ['HTTP 502 with server_error', 'unavailable', 502, { error: 'server_error' }],
      ['HTTP 400 invalid_grant', 'invalid_grant', 400, { error: 'invalid_grant', error_description: 'expired' }],
      ['HTTP 400 invalid_scope', 'refused', 400, { error: 'invalid_scope' }],
      ['HTTP 200 that is not a token response', 'refused', 200, { nothing: true }],
    ])('a token endpoint answering %s is %s', async (_case, kind, status, body) => {
      const c = createProviderClient(explicitAt(await answering(status, body)));
      expect(await providerError(c.refresh('rt'))).toMatchObject({ kind, provider: 'flaky' });
    });

    it('a discovery document at a 5xx is unavailable, one at a 404 is refused', async () => {
      expect(await providerError(createProviderClient({ ...confidential, issuer: await answering(503, {}) }).refresh('rt'))).toMatchObject({ kind: 'unavailable' });
      expect(await providerError(createProviderClient({ ...confidential, issuer: await answering(404, {}) }).refresh('rt'))).toMatchObject({ kind: 'refused' });
    });

    it('a discovery document that sends requests over plain http off loopback is refused', async () => {
      const issuer = await answering(200, (base: string) => ({
        issuer: base,
        authorization_endpoint: `${base}/oauth2/auth`,
        token_endpoint: 'http://tokens.example/oauth2/token',
        response_types_supported: ['code'],
      }));
      const err = await providerError(createProviderClient({ ...confidential, issuer }).refresh('rt'));
      expect(err).toMatchObject({ kind: 'refused', provider: 'upstream' });
      expect(err.message).toContain('token_endpoint "http://tokens.example/oauth2/token" is not https');
    });

    it('the real provider stopped: refresh is unavailable; back up, the same refresh token works', async () => {
      const credential = await connect();
      await up.stopHydra();
      try {
        const err = await providerError(client.refresh(credential.refreshToken!));
        expect(err).toMatchObject({ kind: 'unavailable', provider: 'upstream' });
        expect(err.message).toContain('connection refused');
      } finally {
        await up.startHydraAgain();
      }
      const refreshed = await client.refresh(credential.refreshToken!);
      expect((await me(refreshed.accessToken)).body.sub).toBe(PERSON);
    });
  });
});
