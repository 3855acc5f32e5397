import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CimdClients } from '../../src/auth/cimd/cimdClients.js';
import { ClientMetadataDocuments } from '../../src/auth/cimd/clientMetadataDocument.js';
import { createHydraAdmin } from '../../src/hydra/index.js';
import { ResourceSet } from '../../src/auth/resource.js';
import { createLogger } from '../../src/log/logger.js';
import { type DocumentServer, makeTestCa, startDocumentServer, type TestCa } from '../support/testCa.js';
import { Browser } from './browser.js';
import { authorizeUrl, codeFrom, expectTokens, pkcePair, tokenRequest, whoami } from './clientShapes.js';
import { type Stack, startStack, type TestUser } from './stack.js';

/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
 * MCP 2025-11-25) against the real Hydra: documents are served over https on
 * 127.0.0.1 under a CA made at test time, which our server trusts through
 * CIMD_TEST_LOOPBACK_CA and Hydra (for jwks_uri) through SSL_CERT_FILE.
 */

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** claude.ai's callback (HYDRA.md; anthropics/claude-ai-mcp#518 and many connector threads). */
const CLAUDE_CALLBACK = 'https://claude.ai/api/mcp/auth_callback';

describe('Client ID Metadata Documents (real Ory Hydra)', () => {
  let ca: TestCa;
  let docs: DocumentServer;
  let stack: Stack;
  let user: TestUser;

  /** Clients Hydra holds whose owner (our lookup key for URL ids) is `url`. */
  const hydraClientsOwnedBy = async (url: string) =>
    (await (await fetch(`${stack.hydra.adminUrl}/admin/clients?owner=${encodeURIComponent(url)}`)).json()) as Array<Record<string, unknown>>;
  const countClients = async () => ((await (await fetch(`${stack.hydra.adminUrl}/admin/clients?page_size=500`)).json()) as unknown[]).length;

  beforeAll(async () => {
    ca = await makeTestCa(['127.0.0.1', 'localhost']);
    docs = await startDocumentServer(ca);
    stack = await startStack({ accessTokenStrategy: 'opaque', database: 'sqlite', cimdTestCaFile: ca.caFile });
    user = await stack.addUser('cimd@example.com', 'cimd password 1');
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await docs?.close();
    await ca?.remove();
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
    expect(me.client_id).toBe(clientId);

    const mirrored = await hydraClientsOwnedBy(clientId);
    expect(mirrored).toHaveLength(1);
    expect(mirrored[0]).toMatchObject({ client_id: clientId, metadata: { cimd: true }, token_endpoint_auth_method: 'none', audience: [stack.mcpUrl.href, stack.sseUrl.href] });
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
      expect(me).toMatchObject({ sub: user.sub, client_id: clientId });
      expect(me.scopes).toContain('notes:read');
      // Hydra fetched the client's keys from its jwks_uri over https (trusting the test CA).
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
      const refreshed = expectTokens(await refresh(await assertion()), { refresh: true });
      expect((await whoami(stack, refreshed.access_token)).client_id).toBe(clientId);
    });

    it.each([
      ['no client assertion', async () => undefined, /Client authentication failed/],
      ['an assertion signed by another key', async () => assertion({ signWith: (await generateKeyPair('RS256')).privateKey }), /verify the integrity|signature/i],
      ['an assertion for another audience', async () => assertion({ aud: 'https://elsewhere.example/token' }), /audience/i],
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
      // Nothing in Hydra: no client listed under that URL, and no client at all added.
      // (GET /admin/clients/{url} cannot tell: Hydra v2.3 answers 404 for any id with "/".)
      expect(await hydraClientsOwnedBy(clientId)).toEqual([]);
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

  it('a URL client id that exists in Hydra without the metadata-document mark is refused, not taken over', async () => {
    const clientId = `${docs.origin}/preexisting/client.json`;
    docs.route('/preexisting/client.json', { body: { client_id: clientId, redirect_uris: [CLAUDE_CALLBACK] } });
    const created = await fetch(`${stack.hydra.adminUrl}/admin/clients`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: clientId, owner: clientId, redirect_uris: ['https://attacker.example/cb'], token_endpoint_auth_method: 'none' }),
    });
    expect(created.status).toBe(201);
    const res = await authorizeWithoutFollowing(clientId);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_client', error_description: `client_id ${clientId} belongs to a client that was not registered from its metadata document` });
  });

  it('a document that changes its redirect URIs between fetches: the cached set holds; after expiry a removal applies, an addition Hydra cannot take is refused by name', async () => {
    // Our own resolver on the same real Hydra, with a clock the test moves.
    let now = Date.now();
    const documents = new ClientMetadataDocuments({ testLoopbackCa: ca.caPem, now: () => now });
    const cimd = new CimdClients({
      documents,
      hydraAdmin: createHydraAdmin({ adminUrl: new URL(stack.hydra.adminUrl) }),
      resources: new ResourceSet([stack.mcpUrl, stack.sseUrl]),
      log: createLogger('silent'),
    });
    const path = '/changing/client.json';
    const clientId = `${docs.origin}${path}`;
    const first = ['https://app.example/cb1', 'https://app.example/cb2'];
    docs.route(path, { headers: { 'cache-control': 'max-age=600' }, body: { client_id: clientId, client_name: 'Changing', redirect_uris: first } });
    expect((await cimd.getClient(clientId)).redirect_uris).toEqual(first);

    docs.route(path, { headers: { 'cache-control': 'max-age=600' }, body: { client_id: clientId, client_name: 'Changing', redirect_uris: ['https://app.example/cb1'] } });
    now += 300_000;
    expect((await cimd.getClient(clientId)).redirect_uris, 'within max-age: the first set').toEqual(first);
    now += 301_000;
    expect((await cimd.getClient(clientId)).redirect_uris, 'after expiry: the removal applies').toEqual(['https://app.example/cb1']);

    docs.route(path, { headers: { 'cache-control': 'max-age=600' }, body: { client_id: clientId, client_name: 'Changing', redirect_uris: ['https://app.example/cb3'] } });
    now += 601_000;
    await expect(cimd.getClient(clientId)).rejects.toThrow(/changed since it was first used \(new redirect URIs https:\/\/app\.example\/cb3\)/);
    // Hydra still holds the first version, once.
    const held = await hydraClientsOwnedBy(clientId);
    expect(held).toHaveLength(1);
    expect(held[0]!.redirect_uris).toEqual(first);
  });
});
