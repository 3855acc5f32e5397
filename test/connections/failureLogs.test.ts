import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConnectError, createConnectFlow } from '../../src/connections/connectFlow.js';
import { createCredentialService } from '../../src/connections/credentials.js';
import { createProviderClient } from '../../src/connections/providerClient.js';
import type { ProviderConfig } from '../../src/connections/providers.js';
import { createSealer, type StoredCredential } from '../../src/connections/sealing.js';
import { createLogger } from '../../src/log/logger.js';
import { connectStatesStore } from '../../src/store/connectStatesStore.js';
import { type ConnectionsStore, connectionsStore } from '../../src/store/connectionsStore.js';
import { type Db, openDatabase } from '../../src/store/database.js';

/**
 * Issue 30 #5: a provider's refusal of an outside call (code exchange,
 * refresh, revocation, discovery) is logged with what the provider said, as
 * `oauth_error` and `reason` (field names the log's redaction leaves alone),
 * while no token, code, verifier or client secret ever reaches a line. The
 * real connect flow, credential service and provider client (openid-client
 * underneath) on an in-memory SQLite; only the provider's HTTP is the
 * client's injected `fetch`, answering as the test says.
 */

const PROVIDER = 'acme';
const SUB = 'alice';
const BASE = 'https://provider.test';
const PUBLIC = new URL('https://mcp.test');

// Distinctive values, so the log check can look for each verbatim.
const CLIENT_ID = 'our-client-id';
const CLIENT_SECRET = 'CS-client-secret-8d41f2';
const CODE = 'CODE-authorization-3b7e90';
const ACCESS = 'AT-access-token-c52d18';
const REFRESH = 'RT-refresh-token-a09f6e';
/** Tokens the provider issues in a 200 that then fails our checks. */
const ISSUED_ACCESS = 'AT-issued-then-refused-71be3c';
const ISSUED_REFRESH = 'RT-issued-then-refused-e4a25d';

interface Seen {
  url: string;
  body: string;
  authorization: string | null;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
/** An ID token made for another client (its `aud` is not ours): the check openid-client fails with "unexpected JWT "aud" (audience) claim value". */
const idTokenForSomeoneElse = () => {
  const now = Math.floor(Date.now() / 1000);
  return `${b64url({ alg: 'RS256', typ: 'JWT' })}.${b64url({ iss: BASE, aud: 'another-client', sub: 'alice-at-acme', iat: now, exp: now + 300 })}.${randomBytes(32).toString('base64url')}`;
};

/**
 * The provider's side: every request is recorded, and answered by `answer`
 * (set per case) for the token and revocation endpoints.
 */
function fakeProvider() {
  const seen: Seen[] = [];
  const p = {
    seen,
    answer: (_url: URL): Response => json(500, { error: 'server_error' }),
    fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init);
      seen.push({ url: req.url, body: await req.text(), authorization: req.headers.get('authorization') });
      return p.answer(new URL(req.url));
    }) as typeof fetch,
    /** Every value the requests carried that must never be logged: the PKCE verifier our flow made, and the Basic credentials as sent and their secret part form-encoded. */
    sentSecrets(): string[] {
      const verifiers = seen.map((s) => new URLSearchParams(s.body).get('code_verifier')).filter((v): v is string => !!v);
      const basic = seen.map((s) => s.authorization?.replace(/^Basic /, '')).filter((v): v is string => !!v);
      return [...new Set([...verifiers, ...basic, ...basic.map((b) => Buffer.from(b, 'base64').toString().split(':')[1]!)])];
    },
    /** What the requests carried, Basic credentials decoded. */
    sent(): string {
      const basic = (s: Seen) => (s.authorization ? Buffer.from(s.authorization.replace(/^Basic /, ''), 'base64').toString().split(':').map(decodeURIComponent).join(':') : '');
      return seen.map((s) => `${decodeURIComponent(s.body)} ${basic(s)}`).join('\n');
    },
  };
  return p;
}

const config = (over: Partial<ProviderConfig> = {}): ProviderConfig => ({
  name: PROVIDER,
  displayName: 'Acme',
  authorizationEndpoint: `${BASE}/authorize`,
  tokenEndpoint: `${BASE}/token`,
  revocationEndpoint: `${BASE}/revoke`,
  clientId: CLIENT_ID,
  clientSecret: CLIENT_SECRET,
  tokenEndpointAuthMethod: 'client_secret_basic',
  scopes: ['read'],
  pkce: true,
  authorizationParams: {},
  ...over,
});

describe('a provider refusing an outside call is logged with its reason, never with a token or code (issue 30 #5)', () => {
  let db: Db;
  let store: ConnectionsStore;
  let lines: string[];
  let provider: ReturnType<typeof fakeProvider>;
  const sealer = createSealer([{ kid: 'k1', key: new Uint8Array(randomBytes(32)) }]);
  const log = () => createLogger('debug', (line) => lines.push(line)).child({ component: 'connections' });
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const recordsFor = (msg: string) => records().filter((r) => r.msg === msg);

  beforeEach(async () => {
    db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    store = connectionsStore(db, 'sqlite');
    lines = [];
    provider = fakeProvider();
  });
  afterEach(async () => {
    await db.destroy();
  });

  const clients = (over: Partial<ProviderConfig> = {}) => new Map([[PROVIDER, createProviderClient(config(over), { fetch: provider.fetch })]]);
  const flow = (over: Partial<ProviderConfig> = {}) =>
    createConnectFlow({ store, states: connectStatesStore(db), sealer, providers: clients(over), publicBaseUrl: PUBLIC, log: log() });

  /** A stored connection, as the connect flow leaves it. */
  async function connected(credential: Partial<StoredCredential> = {}) {
    const c: StoredCredential = { accessToken: ACCESS, refreshToken: REFRESH, expiresAt: Math.floor(Date.now() / 1000) + 3600, tokenType: 'Bearer', ...credential };
    await store.upsert({ sub: SUB, provider: PROVIDER, sealed: await sealer.seal(c, { sub: SUB, provider: PROVIDER }), keyId: sealer.newestKeyId, expiresAt: c.expiresAt! });
  }

  /** No secret this test used, nor any the requests carried, is anywhere in the captured lines; and each was in play. */
  function expectNoSecretLogged(...inPlay: string[]) {
    const all = lines.join('\n');
    const secrets = [CLIENT_SECRET, CODE, ACCESS, REFRESH, ISSUED_ACCESS, ISSUED_REFRESH, ...provider.sentSecrets()];
    for (const s of secrets) expect(all.includes(s), `a secret of length ${s.length} ("${s.slice(0, 6)}…") reached the log`).toBe(false);
    for (const s of inPlay) expect(provider.sent(), `the requests carried ${s.slice(0, 6)}…`).toContain(s);
  }

  describe('code exchange (RFC 6749 §4.1.3)', () => {
    /** Start an attempt and deliver the provider's redirect with CODE to our callback; the page's refusal is returned. */
    async function exchange(answer: (url: URL) => Response): Promise<ConnectError> {
      provider.answer = answer;
      const f = flow();
      const { authorizationUrl, browserBinding } = await f.begin(SUB, PROVIDER);
      const state = authorizationUrl.searchParams.get('state')!;
      const callbackUrl = new URL(`/account/connections/${PROVIDER}/callback?code=${CODE}&state=${state}`, PUBLIC);
      const err = await f.finish({ provider: PROVIDER, callbackUrl, browserBinding, sub: SUB }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConnectError);
      return err as ConnectError;
    }

    it.each([
      {
        what: 'an OAuth error in the body (invalid_client, HTTP 401)',
        answer: () => json(401, { error: 'invalid_client', error_description: 'Client authentication failed (e.g., unknown client, no client authentication included).' }),
        kind: 'refused',
        oauth_error: 'invalid_client',
        reason: 'code exchange: the provider refused with invalid_client (HTTP 401) (Client authentication failed (e.g., unknown client, no client authentication included).)',
      },
      {
        what: 'invalid_grant whose description echoes the code it was sent',
        answer: () => json(400, { error: 'invalid_grant', error_description: `The authorization code ${CODE} has already been used.` }),
        kind: 'invalid_grant',
        oauth_error: 'invalid_grant',
        reason: 'code exchange: invalid_grant (The authorization code [redacted] has already been used.)',
      },
      {
        what: 'an OAuth error only in the WWW-Authenticate challenge (RFC 6749 §5.2)',
        answer: () => new Response('', { status: 401, headers: { 'www-authenticate': 'Basic realm="acme", error="invalid_client", error_description="unknown client"' } }),
        kind: 'refused',
        oauth_error: 'invalid_client',
        reason: 'code exchange: the provider refused with invalid_client (HTTP 401, in its WWW-Authenticate challenge) (unknown client)',
      },
      {
        what: 'tokens issued with an ID token for another client (our check fails, no OAuth error)',
        answer: () => json(200, { access_token: ISSUED_ACCESS, refresh_token: ISSUED_REFRESH, token_type: 'Bearer', expires_in: 3600, id_token: idTokenForSomeoneElse() }),
        kind: 'refused',
        oauth_error: undefined,
        reason: 'code exchange: unexpected JWT claim value encountered: unexpected JWT "aud" (audience) claim value',
      },
    ])('$what: one line with kind, oauth_error and reason; no code, verifier, token or secret', async ({ answer, kind, oauth_error, reason }) => {
      const err = await exchange(answer);
      expect(err.status).toBe(400);
      const logged = recordsFor('connect: code exchange failed');
      expect(logged).toEqual([{ time: expect.any(String), level: 'warn', component: 'connections', msg: 'connect: code exchange failed', sub: SUB, provider: PROVIDER, kind, ...(oauth_error ? { oauth_error } : {}), reason }]);
      expectNoSecretLogged(CODE, CLIENT_SECRET);
      expect(provider.sentSecrets().length, 'the verifier and Basic credentials were sent').toBe(3);
    });
  });

  describe('refresh (RFC 6749 §6)', () => {
    const useToken = async () => {
      const svc = createCredentialService({ store, sealer, providers: clients(), log: log() });
      return svc.forTool(SUB, [PROVIDER])[PROVIDER]!.accessToken().then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    };

    it('invalid_grant whose description echoes the refresh token: "must connect again" with oauth_error and the reason, the token replaced', async () => {
      await connected({ expiresAt: Math.floor(Date.now() / 1000) + 10 });
      provider.answer = () => json(400, { error: 'invalid_grant', error_description: `The refresh token ${REFRESH} was revoked; refresh_token=${encodeURIComponent(REFRESH)}` });
      expect((await useToken())?.name).toBe('ConnectionRequiredError');
      expect(recordsFor('provider refused the refresh token; the person must connect again')).toEqual([
        expect.objectContaining({ level: 'warn', sub: SUB, provider: PROVIDER, kind: 'invalid_grant', oauth_error: 'invalid_grant', reason: 'refresh: invalid_grant (The refresh token [redacted] was revoked; refresh_token=[redacted])' }),
      ]);
      expectNoSecretLogged(REFRESH, CLIENT_SECRET);
    });

    it('a refusal that keeps the connection (invalid_client): "refresh failed; connection kept" with oauth_error and the reason', async () => {
      await connected({ expiresAt: Math.floor(Date.now() / 1000) + 10 });
      provider.answer = () => json(401, { error: 'invalid_client', error_description: `client secret ${CLIENT_SECRET} does not match` });
      expect((await useToken())?.name).toBe('ProviderUnavailableError');
      const [line, ...more] = recordsFor('refresh failed; connection kept');
      expect(more).toEqual([]);
      expect(line).toMatchObject({ level: 'warn', sub: SUB, provider: PROVIDER, kind: 'refused', oauth_error: 'invalid_client', reason: 'refresh: the provider refused with invalid_client (HTTP 401) (client secret [redacted] does not match)' });
      expect(line).not.toHaveProperty('code');
      expectNoSecretLogged(REFRESH, CLIENT_SECRET);
    });
  });

  describe('revocation (RFC 7009)', () => {
    const unsupported = () => json(400, { error: 'unsupported_token_type', error_description: 'The authorization server does not support the revocation of the presented token type.' });
    const reason = 'revocation (refresh_token): the provider refused with unsupported_token_type (HTTP 400) (The authorization server does not support the revocation of the presented token type.)';

    it('disconnect: the refusal is logged with oauth_error and the reason; the connection is deleted here', async () => {
      await connected();
      provider.answer = unsupported;
      expect(await flow().disconnect(SUB, PROVIDER)).toEqual({ existed: true, revoked: false });
      expect(recordsFor('disconnect: revocation at the provider failed; the connection is deleted here')).toEqual([
        expect.objectContaining({ level: 'warn', sub: SUB, provider: PROVIDER, kind: 'refused', oauth_error: 'unsupported_token_type', reason }),
      ]);
      expectNoSecretLogged(REFRESH, CLIENT_SECRET);
    });

    it('account removal: the same fields', async () => {
      await connected();
      provider.answer = unsupported;
      await flow().revokeAll(SUB);
      expect(recordsFor('account removal: revocation at the provider failed')).toEqual([
        expect.objectContaining({ level: 'warn', sub: SUB, provider: PROVIDER, kind: 'refused', oauth_error: 'unsupported_token_type', reason }),
      ]);
      expectNoSecretLogged(REFRESH, CLIENT_SECRET);
    });
  });

  describe('before the exchange', () => {
    it('discovery failing when a connect starts is logged with the reason (it was not logged at all)', async () => {
      provider.answer = () => new Response('down for maintenance', { status: 503, headers: { 'content-type': 'text/plain' } });
      const f = createConnectFlow({
        store,
        states: connectStatesStore(db),
        sealer,
        providers: new Map([[PROVIDER, createProviderClient(config({ issuer: BASE, authorizationEndpoint: undefined, tokenEndpoint: undefined, revocationEndpoint: undefined }), { fetch: provider.fetch })]]),
        publicBaseUrl: PUBLIC,
        log: log(),
      });
      await expect(f.begin(SUB, PROVIDER)).rejects.toMatchObject({ code: 'provider_unavailable', status: 503 });
      expect(recordsFor('connect: the provider cannot be reached to start')).toEqual([
        expect.objectContaining({ level: 'warn', sub: SUB, provider: PROVIDER, kind: 'unavailable', reason: `discovery at ${BASE}: unexpected HTTP response status code (HTTP 503)` }),
      ]);
      expectNoSecretLogged();
    });

    it('an error sent back on the redirect instead of a code (RFC 6749 §4.1.2.1) is logged with oauth_error and reason', async () => {
      const f = flow();
      const { authorizationUrl, browserBinding } = await f.begin(SUB, PROVIDER);
      const state = authorizationUrl.searchParams.get('state')!;
      const callbackUrl = new URL(`/account/connections/${PROVIDER}/callback?error=invalid_scope&error_description=scope+%22admin%22+is+not+allowed&state=${state}`, PUBLIC);
      await expect(f.finish({ provider: PROVIDER, callbackUrl, browserBinding, sub: SUB })).rejects.toMatchObject({ code: 'provider_refused', status: 400 });
      expect(recordsFor('connect: the provider sent an error back instead of a code')).toEqual([
        expect.objectContaining({ level: 'warn', sub: SUB, provider: PROVIDER, oauth_error: 'invalid_scope', reason: 'scope "admin" is not allowed' }),
      ]);
      expect(provider.seen, 'no token request was made').toEqual([]);
    });
  });
});
