import type { Server } from 'node:http';
import express from 'express';
import { parse } from 'node-html-parser';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AcceptConsent, type ConsentRequest, type HydraAdmin, HydraError, type LoginRequest } from '../../src/auth/hydraAdmin.js';
import { ResourceSet } from '../../src/auth/resource.js';
import { createLogger } from '../../src/log/logger.js';
import { createLoginRouter } from '../../src/login/loginRouter.js';
import { createUserStore } from '../../src/login/userStore.js';
import { type Db, openDatabase } from '../../src/store/database.js';

const RESOURCES = new ResourceSet([new URL('http://127.0.0.1:3000/mcp'), new URL('http://127.0.0.1:3000/sse')]);
const CLIENT = {
  client_id: 'client-1',
  client_name: 'Test <Client>',
  redirect_uris: ['http://127.0.0.1:6274/cb'],
  grant_types: ['authorization_code', 'refresh_token'],
  scope: 'openid offline_access offline notes:read notes:write',
};

/** Records what the pages ask of Hydra; challenges "gone" behave like used ones (stub Hydra admin). */
function stubHydra() {
  const calls: { method: string; challenge: string; body?: unknown }[] = [];
  const loginRequest: LoginRequest = { challenge: 'lc', skip: false, subject: '', client: CLIENT, request_url: 'http://h/oauth2/auth' };
  const consentRequest: ConsentRequest = {
    challenge: 'cc',
    subject: 'sub-1',
    client: CLIENT,
    requested_scope: ['openid', 'notes:read', 'notes:write'],
    request_url: `http://h/oauth2/auth?resource=${encodeURIComponent('http://127.0.0.1:3000/mcp')}`,
  };
  const gone = (c: string) => {
    if (c === 'gone') throw new HydraError(410, 'not_found', 'used');
  };
  const record = (method: string) => async (challenge: string, body?: unknown) => {
    gone(challenge);
    calls.push({ method, challenge, body });
    return { redirect_to: `http://127.0.0.1:4444/next?after=${method}` };
  };
  const hydra = {
    getLoginRequest: async (c: string) => (gone(c), calls.push({ method: 'getLogin', challenge: c }), loginRequest),
    acceptLoginRequest: record('acceptLogin'),
    rejectLoginRequest: record('rejectLogin'),
    getConsentRequest: async (c: string) => (gone(c), calls.push({ method: 'getConsent', challenge: c }), consentRequest),
    acceptConsentRequest: record('acceptConsent'),
    rejectConsentRequest: record('rejectConsent'),
  } as unknown as HydraAdmin;
  return { hydra, calls };
}

describe('login and consent pages (stub Hydra admin)', () => {
  let db: Db;
  let server: Server;
  let base: string;
  let stub: ReturnType<typeof stubHydra>;
  let sub: string;

  beforeAll(async () => {
    db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    const users = createUserStore(db);
    sub = (await users.add('alice@example.com', 'correct horse')).id;
    stub = stubHydra();
    const app = express();
    // The stub is swapped per test through this indirection.
    const hydra = new Proxy({} as HydraAdmin, { get: (_t, k) => (stub.hydra as never)[k] });
    app.use(createLoginRouter({ hydra, users, resources: RESOURCES, hydraPublicUrl: new URL('http://127.0.0.1:4444'), log: createLogger('silent') }));
    await new Promise<void>((r) => (server = app.listen(0, '127.0.0.1', () => r())));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  beforeEach(() => {
    stub = stubHydra();
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await db.destroy();
  });

  const post = (path: string, form: [string, string][]) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });

  it('shows a login form with labelled Email and Password fields, a Sign in button and strict headers', async () => {
    const res = await fetch(`${base}/login?login_challenge=lc`);
    expect(res.status).toBe(200);
    const doc = parse(await res.text());
    const labels = doc.querySelectorAll('label').map((l) => [l.textContent.trim(), doc.querySelector(`#${l.getAttribute('for')}`)?.getAttribute('name')]);
    expect(labels).toEqual([['Email', 'email'], ['Password', 'password']]);
    expect(doc.querySelector('button')?.textContent.trim()).toBe('Sign in');
    expect(doc.toString()).toContain('Test &lt;Client&gt;');
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(res.headers.get('content-security-policy')).toContain('form-action');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it('shows an error for a wrong password with 401 and accepts nothing', async () => {
    const res = await post('/login', [['challenge', 'lc'], ['email', 'alice@example.com'], ['password', 'wrong password']]);
    expect(res.status).toBe(401);
    expect(await res.text()).toContain('Wrong email or password.');
    expect(stub.calls.map((c) => c.method)).not.toContain('acceptLogin');
  });

  it("accepts the login with the user's id as subject and follows Hydra's redirect", async () => {
    const res = await post('/login', [['challenge', 'lc'], ['email', 'ALICE@example.com'], ['password', 'correct horse']]);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('http://127.0.0.1:4444/next?after=acceptLogin');
    expect(stub.calls.find((c) => c.method === 'acceptLogin')?.body).toMatchObject({ subject: sub });
  });

  it('grants only requested scopes: a forged scope field does not widen the grant', async () => {
    const res = await post('/consent', [['challenge', 'cc'], ['decision', 'allow'], ['scope', 'notes:read'], ['scope', 'admin:everything']]);
    expect(res.status).toBe(302);
    const body = stub.calls.find((c) => c.method === 'acceptConsent')?.body as AcceptConsent;
    // offline_access is added by the refresh-token policy (client may use refresh_token).
    expect(body.grant_scope.sort()).toEqual(['notes:read', 'offline_access']);
    expect(body.grant_access_token_audience).toEqual(['http://127.0.0.1:3000/mcp']);
  });

  it('rejects with access_denied when the person clicks Deny', async () => {
    const res = await post('/consent', [['challenge', 'cc'], ['decision', 'deny']]);
    expect(res.status).toBe(302);
    expect(stub.calls.find((c) => c.method === 'rejectConsent')?.body).toMatchObject({ error: 'access_denied' });
    expect(stub.calls.map((c) => c.method)).not.toContain('acceptConsent');
  });

  it.each([
    ['GET /login without a challenge', () => fetch(`${base}/login`)],
    ['GET /consent with an empty challenge', () => fetch(`${base}/consent?consent_challenge=`)],
    ['POST /consent with an unknown decision', () => post('/consent', [['challenge', 'cc'], ['decision', 'maybe']])],
  ])('answers %s with 400 and never calls Hydra', async (_case, send) => {
    const res = await send();
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('missing or malformed');
    expect(stub.calls).toEqual([]);
  });

  it('shows a readable 410 page for a used or expired challenge', async () => {
    const res = await fetch(`${base}/login?login_challenge=gone`);
    expect(res.status).toBe(410);
    const text = await res.text();
    expect(text).toContain('Start again from your app');
    expect(text).not.toMatch(/at \w+ \(/); // no stack trace
  });
});
