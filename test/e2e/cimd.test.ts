import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CimdClients, MIRROR_OWNER, mirrorId } from '../../src/auth/cimd/cimdClients.js';
import { clientAssertionVerifier } from '../../src/auth/cimd/clientAssertion.js';
import { cimdTokenAuth } from '../../src/auth/cimd/cimdTokenAuth.js';
import { ClientMetadataDocuments } from '../../src/auth/cimd/clientMetadataDocument.js';
import { createHydraAdmin } from '../../src/hydra/index.js';
import { ResourceSet } from '../../src/auth/resource.js';
import { createLogger } from '../../src/log/logger.js';
import { cimdMirrorsStore } from '../../src/store/cimdMirrorsStore.js';
import { type Db, openDatabase } from '../../src/store/database.js';
import { singleUseIds } from '../../src/store/singleUseIds.js';
import { type DocumentServer, makeTestCa, startDocumentServer, type TestCa } from '../support/testCa.js';
import { Browser } from '../support/browser.js';
import { authorizeUrl, codeFrom, expectTokens, pkcePair, tokenRequest, whoami } from './clientShapes.js';
import { type Stack, startStack, type TestUser } from './stack.js';

/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
 * MCP 2025-11-25) against the real Hydra: documents and key sets are served
 * over https on 127.0.0.1 under a CA made at test time, which our server
 * trusts through CIMD_TEST_LOOPBACK_CA. Each document client is mirrored into
 * Hydra as `cimd-<host>-<hash>`, a confidential client only our server can
 * speak for (src/auth/cimd/cimdClients.ts).
 */

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** claude.ai's callback (HYDRA.md; anthropics/claude-ai-mcp#518 and many connector threads). */
const CLAUDE_CALLBACK = 'https://claude.ai/api/mcp/auth_callback';

describe('Client ID Metadata Documents (real Ory Hydra)', () => {
  let ca: TestCa;
  let docs: DocumentServer;
  let stack: Stack;
  let user: TestUser;
  let registryDb: Db;
  /** The stack's SESSION_SECRET: mirrors' Hydra secrets derive from it. */
  const sessionSecret = randomBytes(32).toString('base64url');

  /** The mirror Hydra holds for the document at `url`, or undefined. */
  const mirrorOf = async (url: string) => {
    const res = await fetch(`${stack.hydra.adminUrl}/admin/clients/${mirrorId(url)}`);
    return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
  };
  const countClients = async () => ((await (await fetch(`${stack.hydra.adminUrl}/admin/clients?page_size=500`)).json()) as unknown[]).length;
  /** A resolver and mirror of our own on the same real Hydra, with a clock the test moves. */
  const ownCimd = (clock: { now: number }, opts: { maxNeverUsed?: number } = {}) => {
    const documents = new ClientMetadataDocuments({ testLoopbackCa: ca.caPem, now: () => clock.now });
    const cimd = new CimdClients({
      documents,
      hydraAdmin: createHydraAdmin({ adminUrl: new URL(stack.hydra.adminUrl) }),
      resources: new ResourceSet([stack.mcpUrl, stack.sseUrl]),
      log: createLogger('silent'),
      secret: sessionSecret,
      registry: cimdMirrorsStore(registryDb),
      now: () => clock.now,
      ...opts,
    });
    return { documents, cimd };
  };

  beforeAll(async () => {
    ca = await makeTestCa(['127.0.0.1', 'localhost']);
    docs = await startDocumentServer(ca);
    stack = await startStack({ accessTokenStrategy: 'opaque', database: 'sqlite', cimdTestCaFile: ca.caFile, appEnv: async () => ({ SESSION_SECRET: sessionSecret }) });
    user = await stack.addUser('cimd@example.com', 'cimd password 1');
    registryDb = await openDatabase({ kind: 'sqlite', path: ':memory:' });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await docs?.close();
    await ca?.remove();
    await registryDb?.destroy();
  });

  /** The person: sign in, see the consent page (returned for assertions), allow; stop at the client's callback. */
  async function signInAndConsent(url: URL, redirectUri: string) {
    const browser = new Browser();
    const atClient = (u: URL) => u.href.startsWith(redirectUri);
    let page = await browser.open(url.href, atClient);
    expect(page.url.pathname, `our sign-in page; visited:\n${browser.history.join('\n')}\n${page.text().slice(0, 300)}`).toBe('/login');
    page = await page.submit('Sign in', { fill: { Email: user.email, Password: user.password } }, atClient);
    expect(page.url.pathname, `the consent page; visited:\n${browser.history.join('\n')}`).toBe('/consent');
    const consentText = page.text();
    page = await page.submit('Allow', {}, atClient);
    expect(atClient(page.url), `back at ${redirectUri}; visited:\n${browser.history.join('\n')}`).toBe(true);
    return { back: page.url, consentText };
  }

  /** GET /authorize as claude.ai asks for `clientId`, without following the answer (a refusal is checked as is). */
  const authorizeWithoutFollowing = (clientId: string) =>
    fetch(
      authorizeUrl(stack, [
        ['response_type', 'code'],
        ['client_id', clientId],
        ['redirect_uri', CLAUDE_CALLBACK],
        ['code_challenge', pkcePair().challenge],
        ['code_challenge_method', 'S256'],
        ['state', 'state-123456'],
      ]),
      { redirect: 'manual' },
    );

  it('authorization server metadata advertises CIMD, private_key_jwt and its algorithms', async () => {
    const meta = (await (await fetch(`${stack.baseUrl}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(meta.client_id_metadata_document_supported).toBe(true);
    // claude.ai uses CIMD only when `none` is listed too (brendanlong/lion-reader#1519, from Anthropic's docs).
    expect(meta.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['none', 'private_key_jwt']));
    expect(meta.token_endpoint_auth_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS256', 'ES256']));
    // Hydra's discovery names our /token too (webfinger.oidc_discovery.token_url).
    const hydra = (await (await fetch(`${stack.hydra.publicUrl}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(hydra.token_endpoint).toBe(`${stack.baseUrl}/token`);
  });

  it('claude.ai shape (CIMD, auth method none, https callback, no scope asked): authorize → sign in → consent shows the document host → token → whoami', async () => {
    // Document URL path as claude.ai's (anthropics/claude-ai-mcp#518:
    // https://claude.ai/oauth/mcp-oauth-client-metadata), served here from 127.0.0.1.
    const clientId = `${docs.origin}/oauth/mcp-oauth-client-metadata`;
    docs.route('/oauth/mcp-oauth-client-metadata', {
      headers: { 'cache-control': 'max-age=3600' },
      body: {
        client_id: clientId,
        client_name: 'Claude',
        client_uri: 'https://claude.ai',
        redirect_uris: [CLAUDE_CALLBACK, 'https://claude.com/api/mcp/auth_callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
    });
    const pkce = pkcePair();
    const state = randomBytes(32).toString('base64url');
    const url = authorizeUrl(stack, [
      ['response_type', 'code'],
      ['client_id', clientId],
      ['redirect_uri', CLAUDE_CALLBACK],
      ['code_challenge', pkce.challenge],
      ['code_challenge_method', 'S256'],
      ['state', state],
      ['resource', stack.mcpUrl.href],
    ]);
    const { back, consentText } = await signInAndConsent(url, CLAUDE_CALLBACK);
    expect(consentText).toContain('Claude wants to use your account');
    expect(consentText).toContain(`Identified by its client metadata document at ${new URL(docs.origin).host}`);
    const { code, state: returned } = codeFrom(back);
    expect(returned).toBe(state);

    const tokens = expectTokens(
      await tokenRequest(stack, [
        ['grant_type', 'authorization_code'],
        ['code', code],
        ['redirect_uri', CLAUDE_CALLBACK],
        ['code_verifier', pkce.verifier],
        ['client_id', clientId],
        ['resource', stack.mcpUrl.href],
      ]),
      { refresh: true },
    );
    const me = await whoami(stack, tokens.access_token);
    expect(me.sub).toBe(user.sub);
    // Hydra knows the client by its mirror's id; the token says so.
    expect(me.client_id).toBe(mirrorId(clientId));

    expect(await mirrorOf(clientId)).toMatchObject({
      client_id: mirrorId(clientId),
      owner: MIRROR_OWNER,
      metadata: { cimd: true, url: clientId },
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [CLAUDE_CALLBACK, 'https://claude.com/api/mcp/auth_callback'],
      audience: [stack.mcpUrl.href, stack.sseUrl.href],
    });

    // Hydra's own token endpoint is no way around us: the mirror needs our secret, and the URL is no client of Hydra's.
    for (const client_id of [mirrorId(clientId), clientId]) {
      const direct = await fetch(`${stack.hydra.publicUrl}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id }),
      });
      expect(direct.status, `straight to Hydra as ${client_id}`).toBe(401);
      expect(((await direct.json()) as { error: string }).error).toBe('invalid_client');
    }
    // Through us it refreshes (auth method none: no credentials but the client_id).
    expectTokens(await tokenRequest(stack, [['grant_type', 'refresh_token'], ['refresh_token', tokens.refresh_token], ['client_id', clientId]]), { refresh: true });
  });

  it('Claude Code shape via CIMD (its document lists http://localhost/callback without a port; it comes back on a random port): the port is added to the mirror, two sign-ins on two ports, then refresh', async () => {
    // Claude Code's document https://claude.ai/oauth/claude-code-client-metadata as quoted in anthropics/claude-code#44429
    // (redirect URIs without a port); it comes back on http://localhost:<random>/callback (anthropics/claude-code#10439).
    const clientId = `${docs.origin}/oauth/claude-code-client-metadata`;
    docs.route('/oauth/claude-code-client-metadata', {
      body: {
        client_id: clientId,
        client_name: 'Claude Code',
        redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
    });
    let tokens;
    for (const port of [41234, 51234]) {
      const callback = `http://localhost:${port}/callback`;
      const pkce = pkcePair();
      const url = authorizeUrl(stack, [
        ['response_type', 'code'],
        ['client_id', clientId],
        ['redirect_uri', callback],
        ['code_challenge', pkce.challenge],
        ['code_challenge_method', 'S256'],
        ['state', randomBytes(16).toString('hex')],
        ['resource', stack.mcpUrl.href],
      ]);
      const { back } = await signInAndConsent(url, callback);
      tokens = expectTokens(
        await tokenRequest(stack, [
          ['grant_type', 'authorization_code'],
          ['code', codeFrom(back).code],
          ['redirect_uri', callback],
          ['code_verifier', pkce.verifier],
          ['client_id', clientId],
          ['resource', stack.mcpUrl.href],
        ]),
        { refresh: true },
      );
    }
    expect((await mirrorOf(clientId))!.redirect_uris).toEqual(['http://localhost/callback', 'http://127.0.0.1/callback', 'http://localhost:41234/callback', 'http://localhost:51234/callback']);
    expectTokens(await tokenRequest(stack, [['grant_type', 'refresh_token'], ['refresh_token', tokens!.refresh_token], ['client_id', clientId]]), { refresh: true });
  });

  describe('ChatGPT shape (CIMD with private_key_jwt and jwks_uri; Altinity/altinity-mcp#118, django-oauth/django-oauth-toolkit#1845)', () => {
    const id = 'kDmjx77UnKOM';
    let clientId: string;
    let callback: string;
    let key: CryptoKey;
    let kid: string;

    beforeAll(async () => {
      clientId = `${docs.origin}/oauth/${id}/client.json`;
      callback = `https://chatgpt.com/connector/oauth/${id}`;
      const pair = await generateKeyPair('RS256');
      key = pair.privateKey;
      kid = 'cimd-20260428030119';
      const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' };
      docs.route('/oauth/jwks.json', { body: { keys: [jwk] } });
      docs.route(`/oauth/${id}/client.json`, {
        body: {
          client_id: clientId,
          client_uri: 'https://chatgpt.com/',
          redirect_uris: [callback],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          client_name: 'ChatGPT',
          token_endpoint_auth_method: 'private_key_jwt',
          token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'],
          token_endpoint_auth_signing_alg: 'RS256',
          jwks_uri: `${docs.origin}/oauth/jwks.json`,
        },
      });
    });

    /** RFC 7523 §3: iss = sub = client_id, aud = the token endpoint the client read from our metadata. */
    const assertion = (opts: { aud?: string; signWith?: CryptoKey } = {}) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience(opts.aud ?? `${stack.baseUrl}/token`)
        .setJti(randomBytes(16).toString('hex'))
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(opts.signWith ?? key);

    async function codeForChatGpt() {
      const pkce = pkcePair();
      const state = randomBytes(16).toString('hex');
      const url = authorizeUrl(stack, [
        ['response_type', 'code'],
        ['client_id', clientId],
        ['redirect_uri', callback],
        ['scope', 'notes:read'],
        ['state', state],
        ['code_challenge', pkce.challenge],
        ['code_challenge_method', 'S256'],
        ['resource', stack.mcpUrl.href],
      ]);
      const { back, consentText } = await signInAndConsent(url, callback);
      expect(consentText).toContain('ChatGPT wants to use your account');
      expect(consentText).toContain(`Identified by its client metadata document at ${new URL(docs.origin).host}`);
      const { code, state: returned } = codeFrom(back);
      expect(returned).toBe(state);
      return { code, verifier: pkce.verifier };
    }
    const exchange = (code: string, verifier: string, clientAssertion?: string) =>
      tokenRequest(stack, [
        ['grant_type', 'authorization_code'],
        ['code', code],
        ['redirect_uri', callback],
        ['code_verifier', verifier],
        ['client_id', clientId],
        ['client_assertion_type', clientAssertion ? JWT_BEARER : undefined],
        ['client_assertion', clientAssertion],
        ['resource', stack.mcpUrl.href],
      ]);

    it('authorize → sign in → consent → token with a signed client assertion (aud = our /token) → whoami', async () => {
      const { code, verifier } = await codeForChatGpt();
      const tokens = expectTokens(await exchange(code, verifier, await assertion()), { refresh: true });
      const me = await whoami(stack, tokens.access_token);
      expect(me).toMatchObject({ sub: user.sub, client_id: mirrorId(clientId) });
      expect(me.scopes).toContain('notes:read');
      // Our server fetched the client's keys from its jwks_uri (over https, as safely as documents).
      expect(docs.requests).toContain('/oauth/jwks.json');

      // Refresh authenticates the same way (RFC 7523 §2.2 on every token request).
      const refresh = (clientAssertion?: string) =>
        tokenRequest(stack, [
          ['grant_type', 'refresh_token'],
          ['refresh_token', tokens.refresh_token],
          ['client_id', clientId],
          ['client_assertion_type', clientAssertion ? JWT_BEARER : undefined],
          ['client_assertion', clientAssertion],
        ]);
      const refused = await refresh();
      expect(refused.status, 'refresh without an assertion').toBe(401);
      expect(refused.body.error).toBe('invalid_client');
      const once = await assertion();
      const refreshed = expectTokens(await refresh(once), { refresh: true });
      expect((await whoami(stack, refreshed.access_token)).client_id).toBe(mirrorId(clientId));
      // RFC 7523 §3 item 7: an assertion (its jti) is good once.
      const replayed = await tokenRequest(stack, [
        ['grant_type', 'refresh_token'],
        ['refresh_token', refreshed.refresh_token],
        ['client_id', clientId],
        ['client_assertion_type', JWT_BEARER],
        ['client_assertion', once],
      ]);
      expect(replayed.status).toBe(401);
      expect(replayed.body).toMatchObject({ error: 'invalid_client', error_description: 'Client authentication failed: this client assertion (jti) was already used' });
    });

    it.each([
      ['no client assertion', async () => undefined, /must send a client_assertion \(private_key_jwt, its metadata document\)/],
      ['an assertion signed by another key', async () => assertion({ signWith: (await generateKeyPair('RS256')).privateKey }), /signature does not verify with the client's keys/],
      ['an assertion for another audience', async () => assertion({ aud: 'https://elsewhere.example/token' }), /aud must be this server's token endpoint or issuer/],
    ])('the code exchange is refused with invalid_client: %s', async (_name, make, hint) => {
      const { code, verifier } = await codeForChatGpt();
      const answer = await exchange(code, verifier, await make());
      expect(answer.status).toBe(401);
      expect(answer.body.error).toBe('invalid_client');
      expect(`${answer.body.error_description}`).toMatch(hint);
      expect(answer.body.access_token).toBeUndefined();
    });
  });

  describe('bad documents: invalid_client at /authorize, with the reason, and nothing created in Hydra', () => {
    const good = (url: string, extra: Record<string, unknown> = {}) => ({
      client_id: url,
      client_name: 'Bad',
      redirect_uris: [CLAUDE_CALLBACK],
      token_endpoint_auth_method: 'none',
      ...extra,
    });
    const cases: Array<{ name: string; url: (origin: string) => string; route?: (url: string) => Parameters<DocumentServer['route']>[1]; error: RegExp }> = [
      { name: 'an http URL', url: (o) => `${o.replace('https:', 'http:')}/bad/http.json`, error: /must use https/ },
      { name: 'a URL with a fragment', url: (o) => `${o}/bad/frag.json#x`, error: /must not contain a fragment/ },
      { name: 'a URL with credentials', url: (o) => `${o.replace('https://', 'https://u:p@')}/bad/cred.json`, error: /must not contain a username or password/ },
      { name: 'a document over the size cap', url: (o) => `${o}/bad/big.json`, route: (u) => ({ body: good(u, { client_name: 'x'.repeat(6000) }) }), error: /larger than 5120 bytes/ },
      { name: 'a slow server', url: (o) => `${o}/bad/slow.json`, route: (u) => ({ delayMs: 7000, body: good(u) }), error: /no complete answer within 5000 ms/ },
      { name: 'non-JSON', url: (o) => `${o}/bad/html.json`, route: () => ({ headers: { 'content-type': 'text/html' }, body: '<!doctype html><p>hi' }), error: /served as text\/html/ },
      { name: 'a client_id that differs from its URL', url: (o) => `${o}/bad/mismatch.json`, route: () => ({ body: good('https://claude.ai/oauth/mcp-oauth-client-metadata') }), error: /is not the URL it was fetched from/ },
      { name: 'a URL resolving to the cloud metadata address', url: () => 'https://169.254.169.254/latest/client.json', error: /its host is a link-local address/ },
      { name: 'a URL on a private address', url: () => 'https://10.0.0.7/client.json', error: /its host is a private address/ },
      { name: 'a URL on an IPv4-mapped private address', url: () => 'https://[::ffff:a00:7]/client.json', error: /its host is a private address/ },
      { name: 'a redirect towards an internal address (not followed)', url: (o) => `${o}/bad/moved.json`, route: () => ({ status: 307, headers: { location: 'https://169.254.169.254/latest/meta-data/' } }), error: /answered a redirect \(HTTP 307\)/ },
      { name: 'a javascript: redirect URI', url: (o) => `${o}/bad/js.json`, route: (u) => ({ body: good(u, { redirect_uris: ['javascript:alert(document.cookie)'] }) }), error: /redirect_uri "javascript:alert\(document\.cookie\)"/ },
      { name: 'a client_secret in the document', url: (o) => `${o}/bad/secret.json`, route: (u) => ({ body: good(u, { client_secret: 'hunter2' }) }), error: /must not carry a shared secret/ },
    ];

    it.each(cases)('$name', async ({ url, route, error }) => {
      const clientId = url(docs.origin);
      if (route) docs.route(new URL(clientId).pathname, route(clientId));
      const before = await countClients();
      const res = await authorizeWithoutFollowing(clientId);
      const body = (await res.json()) as { error: string; error_description: string };
      expect(res.status).toBe(400);
      expect(body.error).toBe('invalid_client');
      expect(body.error_description).toMatch(error);
      // Nothing in Hydra: no mirror, and no client at all added.
      if (URL.canParse(clientId)) expect(await mirrorOf(clientId)).toBeUndefined();
      expect(await countClients()).toBe(before);
    }, 20_000);
  });

  it('a registered (DCR) client gets no document host on its consent page: the line cannot be faked by a name', async () => {
    const res = await fetch(`${stack.baseUrl}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: `Claude — Identified by its client metadata document at claude.ai`, redirect_uris: [CLAUDE_CALLBACK], token_endpoint_auth_method: 'none' }),
    });
    expect(res.status).toBe(201);
    const { client_id } = (await res.json()) as { client_id: string };
    const pkce = pkcePair();
    const url = authorizeUrl(stack, [
      ['response_type', 'code'],
      ['client_id', client_id],
      ['redirect_uri', CLAUDE_CALLBACK],
      ['code_challenge', pkce.challenge],
      ['code_challenge_method', 'S256'],
      ['state', randomBytes(16).toString('hex')],
      ['resource', stack.mcpUrl.href],
    ]);
    const browser = new Browser();
    let page = await browser.open(url.href);
    page = await page.submit('Sign in', { fill: { Email: user.email, Password: user.password } });
    expect(page.url.pathname).toBe('/consent');
    expect(page.doc.querySelector('.client-host'), 'no document-host line for a registered client').toBeNull();
  });

  it('a Hydra client with a mirror’s id that this server did not make from the document is refused, not taken over', async () => {
    const clientId = `${docs.origin}/preexisting/client.json`;
    docs.route('/preexisting/client.json', { body: { client_id: clientId, redirect_uris: [CLAUDE_CALLBACK] } });
    const created = await fetch(`${stack.hydra.adminUrl}/admin/clients`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: mirrorId(clientId), redirect_uris: ['https://attacker.example/cb'], token_endpoint_auth_method: 'none' }),
    });
    expect(created.status).toBe(201);
    const res = await authorizeWithoutFollowing(clientId);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_client', error_description: `client_id ${clientId} belongs to a client that was not registered from its metadata document` });
    expect((await mirrorOf(clientId))!.redirect_uris).toEqual(['https://attacker.example/cb']);
  });

  it('issue 26 #6: a document that changes its redirect URIs: the cached set holds; after expiry Hydra’s copy follows, a removed URI is refused by Hydra itself and an added one works', async () => {
    const clock = { now: Date.now() };
    const { cimd } = ownCimd(clock);
    const path = '/changing/client.json';
    const clientId = `${docs.origin}${path}`;
    const first = ['https://app.example/cb1', 'https://app.example/cb2'];
    const doc = (redirect_uris: string[]) => ({ headers: { 'cache-control': 'max-age=600' }, body: { client_id: clientId, client_name: 'Changing', redirect_uris } });
    docs.route(path, doc(first));
    expect((await cimd.getClient(clientId, { authorizing: true })).redirect_uris).toEqual(first);
    expect((await mirrorOf(clientId))!.redirect_uris).toEqual(first);

    docs.route(path, doc(['https://app.example/cb1']));
    clock.now += 300_000;
    expect((await cimd.getClient(clientId)).redirect_uris, 'within max-age: the first set').toEqual(first);
    clock.now += 301_000;
    expect((await cimd.getClient(clientId)).redirect_uris, 'after expiry: the removal applies').toEqual(['https://app.example/cb1']);
    expect((await mirrorOf(clientId))!.redirect_uris, 'and Hydra holds the new set').toEqual(['https://app.example/cb1']);

    // Straight to Hydra's authorization endpoint (a browser can reach it) with the removed URI: Hydra refuses it.
    const straight = (redirect_uri: string) => {
      const u = new URL('/oauth2/auth', stack.hydra.publicUrl);
      for (const [k, v] of Object.entries({ client_id: mirrorId(clientId), redirect_uri, response_type: 'code', state: 'state-123456', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' })) u.searchParams.set(k, v);
      return fetch(u, { redirect: 'manual' });
    };
    const refused = await straight('https://app.example/cb2');
    expect(refused.headers.get('location') ?? '', 'never sent to the removed URI').not.toMatch(/^https:\/\/app\.example\/cb2/);
    expect(`${refused.headers.get('location')}`).toMatch(/error=invalid_request/);
    const allowed = await straight('https://app.example/cb1');
    expect(new URL(allowed.headers.get('location')!, stack.baseUrl).pathname, 'the kept URI goes on to sign-in').toBe('/login');

    docs.route(path, doc(['https://app.example/cb3']));
    clock.now += 601_000;
    expect((await cimd.getClient(clientId)).redirect_uris).toEqual(['https://app.example/cb3']);
    expect((await mirrorOf(clientId))!.redirect_uris, 'an addition applies too').toEqual(['https://app.example/cb3']);
  });

  it('issue 26 #6: straight to Hydra with a redirect URI the document dropped before Hydra’s copy caught up: our consent step refuses on its own page, no code is sent', async () => {
    const path = '/dropped/client.json';
    const clientId = `${docs.origin}${path}`;
    const doc = (redirect_uris: string[]) => ({ body: { client_id: clientId, client_name: 'Dropped', redirect_uris } });
    // Another replica mirrored the first version; our stack has never read this document.
    docs.route(path, doc(['https://app.example/kept', 'https://app.example/dropped']));
    await ownCimd({ now: Date.now() }).cimd.getClient(clientId, { authorizing: true });
    docs.route(path, doc(['https://app.example/kept']));
    expect((await mirrorOf(clientId))!.redirect_uris, 'Hydra still holds the old set').toContain('https://app.example/dropped');

    const straight = new URL('/oauth2/auth', stack.hydra.publicUrl);
    for (const [k, v] of Object.entries({ client_id: mirrorId(clientId), redirect_uri: 'https://app.example/dropped', response_type: 'code', state: 'state-123456', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' })) straight.searchParams.set(k, v);
    const browser = new Browser();
    const atClient = (u: URL) => u.href.startsWith('https://app.example/');
    let page = await browser.open(straight.href, atClient);
    expect(page.url.pathname).toBe('/login');
    page = await page.submit('Sign in', { fill: { Email: user.email, Password: user.password } }, atClient);
    expect(atClient(page.url), `never sent to the dropped URI; visited:\n${browser.history.join('\n')}`).toBe(false);
    expect(page.url.pathname).toBe('/consent');
    expect(page.status).toBe(400);
    expect(page.text()).toContain(`no longer lists https://app.example/dropped as a redirect URI`);
    expect((await mirrorOf(clientId))!.redirect_uris, 'and Hydra’s copy was brought in line').toEqual(['https://app.example/kept']);
  });

  it('issue 26 #6: a key dropped from the document stops working once the document is read again; the kept key goes on working', async () => {
    const path = '/rotating/client.json';
    const clientId = `${docs.origin}${path}`;
    const callback = 'https://rotating.example/cb';
    const [old, kept] = await Promise.all([generateKeyPair('ES256'), generateKeyPair('ES256')]);
    const jwk = async (k: CryptoKey, kid: string): Promise<JWK> => ({ ...(await exportJWK(k)), kid, alg: 'ES256', use: 'sig' });
    const document = async (keys: JWK[]) => ({
      headers: { 'cache-control': 'max-age=300' },
      body: { client_id: clientId, client_name: 'Rotating', redirect_uris: [callback], token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: { keys } },
    });
    docs.route(path, await document([await jwk(old.publicKey, 'old'), await jwk(kept.publicKey, 'kept')]));
    const signed = (key: CryptoKey, kid: string) =>
      new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid }).setIssuer(clientId).setSubject(clientId).setAudience(`${stack.baseUrl}/token`).setJti(randomBytes(16).toString('hex')).setIssuedAt().setExpirationTime('5m').sign(key);

    // A grant through the stack, authenticated with the old key.
    const pkce = pkcePair();
    const url = authorizeUrl(stack, [
      ['response_type', 'code'],
      ['client_id', clientId],
      ['redirect_uri', callback],
      ['code_challenge', pkce.challenge],
      ['code_challenge_method', 'S256'],
      ['state', randomBytes(16).toString('hex')],
      ['resource', stack.mcpUrl.href],
    ]);
    const { back } = await signInAndConsent(url, callback);
    const tokens = expectTokens(
      await tokenRequest(stack, [
        ['grant_type', 'authorization_code'],
        ['code', codeFrom(back).code],
        ['redirect_uri', callback],
        ['code_verifier', pkce.verifier],
        ['client_id', clientId],
        ['client_assertion_type', JWT_BEARER],
        ['client_assertion', await signed(old.privateKey, 'old')],
      ]),
      { refresh: true },
    );

    // The document drops the old key. Our /token reads it again once its copy expires (here: our own resolver, clock moved).
    docs.route(path, await document([await jwk(kept.publicKey, 'kept')]));
    const clock = { now: Date.now() };
    const { cimd, documents } = ownCimd(clock);
    const forHydra = cimdTokenAuth({
      cimd,
      documents,
      verifyAssertion: clientAssertionVerifier({ audiences: [`${stack.baseUrl}/token`], replays: singleUseIds(registryDb), keysAt: (u, o) => documents.keysAt(u, o), now: () => clock.now }),
    });
    await documents.resolve(clientId);
    const refreshWith = (assertion: string, refresh_token: string) =>
      new URLSearchParams({ grant_type: 'refresh_token', refresh_token, client_id: clientId, client_assertion_type: JWT_BEARER, client_assertion: assertion });
    await expect(forHydra(refreshWith(await signed(old.privateKey, 'old'), tokens.refresh_token!), undefined)).rejects.toThrow(
      'Client authentication failed: no key of the client\'s metadata document matches the client assertion',
    );
    // The kept key: the request goes on to Hydra as the mirror, with our secret, and Hydra refreshes.
    const ok = await forHydra(refreshWith(await signed(kept.privateKey, 'kept'), tokens.refresh_token!), undefined);
    expect(ok.form.get('client_assertion')).toBeNull();
    const res = await fetch(`${stack.hydra.publicUrl}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: ok.authorization! },
      body: ok.form,
    });
    expect(res.status, await res.clone().text()).toBe(200);
  });

  it('issue 26 #5: the mirror is found by its own id: clients that name the document URL as their owner change nothing', async () => {
    const path = '/decoyed/client.json';
    const clientId = `${docs.origin}${path}`;
    docs.route(path, { body: { client_id: clientId, client_name: 'Decoyed', redirect_uris: [CLAUDE_CALLBACK] } });
    expect((await authorizeWithoutFollowing(clientId)).status).toBe(302);
    // Ten clients owning the URL, with ids that sort before anything (the old lookup read one page of ten by owner).
    for (let n = 0; n < 10; n++) {
      const res = await fetch(`${stack.hydra.adminUrl}/admin/clients`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: `0000-decoy-${n}`, owner: clientId, redirect_uris: ['https://attacker.example/cb'] }),
      });
      expect(res.status).toBe(201);
    }
    // A process that has not seen the document yet (a restart, another replica).
    const { cimd } = ownCimd({ now: Date.now() });
    expect((await cimd.getClient(clientId, { authorizing: true })).client_id).toBe(clientId);
    expect((await mirrorOf(clientId))!.redirect_uris).toEqual([CLAUDE_CALLBACK]);
  });

  it('issue 26 #14: mirrors nobody uses are deleted (never given a token within an hour, or idle), and only so many may wait unused', async () => {
    const clock = { now: Date.now() };
    const { cimd } = ownCimd(clock, { maxNeverUsed: 1_000_000 });
    const make = async (name: string) => {
      const path = `/sweep/${name}.json`;
      const url = `${docs.origin}${path}`;
      docs.route(path, { body: { client_id: url, client_name: name, redirect_uris: [CLAUDE_CALLBACK] } });
      await cimd.getClient(url, { authorizing: true });
      expect(await mirrorOf(url), `${name} mirrored`).toBeDefined();
      return url;
    };
    const abandoned = await make('abandoned');
    const used = await make('used');
    await cimd.tokenIssued(used);
    clock.now += 2 * 3600_000;
    const idleMs = 31 * 86_400_000;
    expect(await cimd.sweep(idleMs)).toBeGreaterThanOrEqual(1);
    expect(await mirrorOf(abandoned), 'never given a token: deleted').toBeUndefined();
    expect(await mirrorOf(used), 'in use: kept').toBeDefined();
    clock.now += idleMs;
    await cimd.sweep(idleMs);
    expect(await mirrorOf(used), 'idle past CIMD_MIRROR_IDLE_DAYS: deleted').toBeUndefined();
    // A deleted mirror comes back on the next sign-in.
    await cimd.getClient(abandoned, { authorizing: true });
    expect(await mirrorOf(abandoned)).toBeDefined();

    const { cimd: bounded } = ownCimd(clock, { maxNeverUsed: 1 });
    const path = '/sweep/one-too-many.json';
    const url = `${docs.origin}${path}`;
    docs.route(path, { body: { client_id: url, redirect_uris: [CLAUDE_CALLBACK] } });
    await expect(bounded.getClient(url, { authorizing: true })).rejects.toMatchObject({ errorCode: 'temporarily_unavailable' });
    expect(await mirrorOf(url)).toBeUndefined();
  });
});
