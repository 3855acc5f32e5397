import type { Server } from 'node:http';
import express from 'express';
import { parse } from 'node-html-parser';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type AcceptConsent, type ConsentRequest, type ConsentSession, type HydraAdmin, HydraError, type LoginRequest } from '../../src/hydra/index.js';
import { ResourceSet } from '../../src/auth/resource.js';
import { createLogger } from '../../src/log/logger.js';
import { Signer } from '../../src/web/cookies.js';
import { createLoginRouter } from '../../src/signin/loginRouter.js';
import { LoginThrottle } from '../../src/limits/throttle.js';
import { createUserStore } from '../../src/account/userStore.js';
import { type Db, openDatabase } from '../../src/store/database.js';

// Sign-in and account pages, not the key derivation's cost: scrypt at a test cost (test/support/cheapScrypt.ts).
vi.mock('node:crypto', async (real) => (await import('../support/cheapScrypt.js')).withCheapScrypt(await real()));

const RESOURCES = new ResourceSet([new URL('http://127.0.0.1:3000/mcp'), new URL('http://127.0.0.1:3000/sse')]);
const CLIENT = {
  client_id: 'client-1',
  client_name: 'Test <Client>',
  redirect_uris: ['http://127.0.0.1:6274/cb'],
  grant_types: ['authorization_code', 'refresh_token'],
  scope: 'openid offline_access offline notes:read notes:write',
};

/** Records what the pages ask of Hydra; challenges "gone" behave like used ones (stub Hydra admin). */
function stubHydra(subject = 'sub-1') {
  const calls: { method: string; challenge: string; body?: unknown }[] = [];
  const loginRequest: LoginRequest = { challenge: 'lc', skip: false, subject: '', client: CLIENT, request_url: 'http://h/oauth2/auth' };
  const consentRequest: ConsentRequest = {
    challenge: 'cc',
    subject,
    client: CLIENT,
    requested_scope: ['openid', 'notes:read', 'notes:write'],
    request_url: `http://h/oauth2/auth?resource=${encodeURIComponent('http://127.0.0.1:3000/mcp')}`,
  };
  /** What Hydra remembers the subject granted, newest first (listConsentSessions). */
  const consentSessions: ConsentSession[] = [];
  const gone = (c: string) => {
    if (c === 'gone') throw new HydraError(410, 'not_found', 'used');
    if (c === 'down') throw new HydraError(0, 'temporarily_unavailable', 'Hydra admin API unreachable');
  };
  const record = (method: string) => async (challenge: string, body?: unknown) => {
    gone(challenge);
    calls.push({ method, challenge, body });
    return { redirect_to: `http://127.0.0.1:4444/next?after=${method}` };
  };
  const hydra = {
    getLogoutRequest: async (c: string) => (gone(c), calls.push({ method: 'getLogout', challenge: c }), { challenge: c, subject: 'sub-1', client: CLIENT }),
    acceptLogoutRequest: record('acceptLogout'),
    rejectLogoutRequest: async (c: string) => void calls.push({ method: 'rejectLogout', challenge: c }),
    getLoginRequest: async (c: string) => (gone(c), calls.push({ method: 'getLogin', challenge: c }), loginRequest),
    acceptLoginRequest: record('acceptLogin'),
    rejectLoginRequest: record('rejectLogin'),
    getConsentRequest: async (c: string) => (gone(c), calls.push({ method: 'getConsent', challenge: c }), consentRequest),
    acceptConsentRequest: record('acceptConsent'),
    rejectConsentRequest: record('rejectConsent'),
    listConsentSessions: async () => consentSessions,
  } as unknown as HydraAdmin;
  return { hydra, calls, loginRequest, consentRequest, consentSessions, consentClient: (client: typeof CLIENT) => void (consentRequest.client = client) };
}

describe('login and consent pages (stub Hydra admin)', () => {
  let db: Db;
  let server: Server;
  let base: string;
  let stub: ReturnType<typeof stubHydra>;
  let sub: string;
  let throttle: LoginThrottle;
  let waits: number[];

  beforeAll(async () => {
    db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    const users = createUserStore(db);
    sub = (await users.add('alice@example.com', 'correct horse')).id;
    stub = stubHydra(sub);
    const app = express();
    // The stub is swapped per test through this indirection.
    const hydra = new Proxy({} as HydraAdmin, { get: (_t, k) => (stub.hydra as never)[k] });
    app.use(
      createLoginRouter({
        hydra,
        users,
        resources: RESOURCES,
        signer: new Signer('x'.repeat(32)),
        secureCookies: false,
        trustedClientIds: ['first-party'],
        throttle: new Proxy({} as LoginThrottle, { get: (_t, k) => { const v = (throttle as never)[k]; return typeof v === 'function' ? (v as Function).bind(throttle) : v; } }),
        wait: async (ms) => void waits.push(ms),
        log: createLogger('silent'),
      }),
    );
    await new Promise<void>((r) => (server = app.listen(0, '127.0.0.1', () => r())));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  beforeEach(() => {
    stub = stubHydra(sub);
    throttle = new LoginThrottle();
    waits = [];
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await db.destroy();
  });

  /** Open the form page like a browser: keep its CSRF cookie and hidden token. */
  async function formOf(path: string) {
    const res = await fetch(`${base}${path}`);
    const cookie = (res.headers.getSetCookie()[0] ?? '').split(';')[0]!;
    const csrf = parse(await res.text()).querySelector('input[name=csrf]')?.getAttribute('value') ?? '';
    stub.calls.length = 0;
    return { cookie, csrf };
  }
  const post = (path: string, form: [string, string][], session?: { cookie: string; csrf: string }) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(session ? { cookie: session.cookie } : {}) },
      body: new URLSearchParams([...(session ? [['csrf', session.csrf] as [string, string]] : []), ...form]).toString(),
    });
  const login = async (form: [string, string][]) => post('/login', [['challenge', 'lc'], ...form], await formOf('/login?login_challenge=lc'));
  const consent = async (form: [string, string][]) => post('/consent', [['challenge', 'cc'], ...form], await formOf('/consent?consent_challenge=cc'));

  it('shows a login form with labelled Email and Password fields, a Sign in button and strict headers', async () => {
    const res = await fetch(`${base}/login?login_challenge=lc`);
    expect(res.status).toBe(200);
    const doc = parse(await res.text());
    const labels = doc.querySelectorAll('label').map((l) => [l.textContent.trim(), doc.querySelector(`#${l.getAttribute('for')}`)?.getAttribute('name')]);
    expect(labels).toEqual([['Email', 'email'], ['Password', 'password'], ['Keep me signed in on this device', 'remember']]);
    expect(doc.querySelector('button')?.textContent.trim()).toBe('Sign in');
    expect(doc.toString()).toContain('Test &lt;Client&gt;');
  });

  // form-action is left out on purpose: Chrome applies it to the redirect chain after a submission (see pageKit.ts).
  const CSP = "default-src 'none'; style-src 'self'; img-src 'self' https:; frame-ancestors 'none'; base-uri 'none'";
  it.each([
    ['the login form', '/login?login_challenge=lc'],
    ['the consent page', '/consent?consent_challenge=cc'],
    ['a 400 page', '/login'],
    ['a 410 page', '/consent?consent_challenge=gone'],
    ['the OAuth error page', '/oauth-error?error=access_denied'],
  ])('sends the security headers on %s', async (_case, path) => {
    const res = await fetch(`${base}${path}`);
    expect(res.headers.get('content-security-policy')).toBe(CSP);
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const html = await res.text();
    // The CSP allows no inline style or script, so the pages must not need any.
    expect(html).not.toMatch(/<script|<style|\sstyle=|\son\w+=/i);
    expect(html).toContain('<meta name="viewport"');
  });

  it('serves the one stylesheet the pages link to', async () => {
    const res = await fetch(`${base}/login-assets/style.css`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/css/);
    expect(res.headers.get('x-content-type-options')).toBeNull(); // served as a plain asset, not a page
    expect(await res.text()).toContain('body{');
  });

  it('shows an error for a wrong password with 401 and accepts nothing', async () => {
    const res = await login([['email', 'alice@example.com'], ['password', 'wrong password']]);
    expect(res.status).toBe(401);
    expect(await res.text()).toContain('Wrong email or password.');
    expect(stub.calls.map((c) => c.method)).not.toContain('acceptLogin');
  });

  it("accepts the login with the user's id as subject and follows Hydra's redirect", async () => {
    const res = await login([['email', 'ALICE@example.com'], ['password', 'correct horse']]);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('http://127.0.0.1:4444/next?after=acceptLogin');
    expect(stub.calls.find((c) => c.method === 'acceptLogin')?.body).toEqual({ subject: sub, remember: false });
  });

  it('grants only requested scopes: a forged scope field does not widen the grant', async () => {
    const res = await consent([['decision', 'allow'], ['scope', 'notes:read'], ['scope', 'offline_access'], ['scope', 'admin:everything']]);
    expect(res.status).toBe(302);
    const body = stub.calls.find((c) => c.method === 'acceptConsent')?.body as AcceptConsent;
    // openid is required; offline_access is offered by the refresh-token policy (client may use refresh_token).
    expect(body.grant_scope.sort()).toEqual(['notes:read', 'offline_access', 'openid']);
    expect(body.remember).toBe(false);
    expect(body.grant_access_token_audience).toEqual(['http://127.0.0.1:3000/mcp']);
  });

  it('offers offline_access unasked to a client allowed refresh tokens, checked, and respects unticking it', async () => {
    const doc = parse(await (await fetch(`${base}/consent?consent_challenge=cc`)).text());
    const boxes = doc.querySelectorAll('input[type=checkbox][name=scope]').map((i) => [i.getAttribute('value'), i.hasAttribute('checked')]);
    expect(boxes).toEqual([['notes:read', true], ['notes:write', true], ['offline_access', true]]);
    expect(doc.toString()).toContain('Stay connected without asking you to sign in again');
    await consent([['decision', 'allow'], ['scope', 'notes:read']]);
    expect((stub.calls.find((c) => c.method === 'acceptConsent')?.body as AcceptConsent).grant_scope).toEqual(['openid', 'notes:read']);
  });

  it.each([
    ['lacks the refresh_token grant', { grant_types: ['authorization_code'] }],
    ['is not registered for an offline scope', { scope: 'openid notes:read notes:write' }],
  ])('never grants offline_access to a client that %s, even when the form asks', async (_case, change) => {
    stub.consentClient({ ...CLIENT, ...change });
    await consent([['decision', 'allow'], ['scope', 'notes:read'], ['scope', 'offline_access'], ['scope', 'offline']]);
    expect((stub.calls.find((c) => c.method === 'acceptConsent')?.body as AcceptConsent).grant_scope).toEqual(['openid', 'notes:read']);
  });

  it('shows the client, each scope with its description and the audience on the consent page', async () => {
    const doc = parse(await (await fetch(`${base}/consent?consent_challenge=cc`)).text());
    const text = doc.textContent;
    expect(doc.toString()).toContain('Test &lt;Client&gt;');
    expect(text).toContain('Read your notes');
    expect(text).toContain('Create and delete your notes');
    expect(text).toContain('http://127.0.0.1:3000/mcp');
    expect(doc.querySelector('input[name=challenge]')?.getAttribute('value')).toBe('cc');
    const buttons = doc.querySelectorAll('button').map((b) => [b.textContent.trim(), b.getAttribute('name'), b.getAttribute('value')]);
    expect(buttons).toEqual([['Allow', 'decision', 'allow'], ['Deny', 'decision', 'deny']]);
  });

  it('accepts a remembered login (skip) at once with the known subject', async () => {
    Object.assign(stub.loginRequest, { skip: true, subject: sub });
    const res = await fetch(`${base}/login?login_challenge=lc`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('http://127.0.0.1:4444/next?after=acceptLogin');
    expect(stub.calls.find((c) => c.method === 'acceptLogin')?.body).toEqual({ subject: sub });
  });

  const remembered = (clientId: string, grant: string[], remember = true): ConsentSession => ({ remember, grant_scope: grant, consent_request: { client: { ...CLIENT, client_id: clientId } } });
  const ASKED = ['openid', 'notes:read', 'notes:write'];
  it.each([
    ['offline access granted before: granted again', [remembered('client-1', [...ASKED, 'offline_access'])], [...ASKED, 'offline_access']],
    ['issue 26 #3: offline access unticked before: not granted', [remembered('client-1', ASKED)], ASKED],
    ['issue 26 #3: the newest remembered consent of this client decides', [remembered('client-1', ASKED), remembered('client-1', [...ASKED, 'offline_access'])], ASKED],
    ['issue 26 #3: another client’s or an unremembered consent grants nothing extra', [remembered('client-2', [...ASKED, 'offline_access']), remembered('client-1', [...ASKED, 'offline_access'], false)], ASKED],
    ['issue 26 #3: none found (withdrawn meanwhile): only what was requested', [], ASKED],
  ])('accepts a remembered consent (skip) at once with our audience; %s', async (_case, sessions, scopes) => {
    stub.consentRequest.skip = true;
    stub.consentSessions.push(...sessions);
    const res = await fetch(`${base}/consent?consent_challenge=cc`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(stub.calls.find((c) => c.method === 'acceptConsent')?.body).toEqual({
      grant_scope: scopes,
      grant_access_token_audience: ['http://127.0.0.1:3000/mcp'],
      remember: false,
    });
  });

  it('refuses a remembered login (skip) for a subject whose account was removed: rejectLogin, no acceptLogin', async () => {
    Object.assign(stub.loginRequest, { skip: true, subject: 'removed-sub' });
    const res = await fetch(`${base}/login?login_challenge=lc`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(stub.calls.find((c) => c.method === 'rejectLogin')?.body).toMatchObject({ error: 'access_denied', error_description: 'This account no longer exists' });
    expect(stub.calls.map((c) => c.method)).not.toContain('acceptLogin');
  });

  it.each([
    ['a remembered consent (skip)', async () => ((stub.consentRequest.skip = true), fetch(`${base}/consent?consent_challenge=cc`, { redirect: 'manual' }))],
    ['the consent page', () => fetch(`${base}/consent?consent_challenge=cc`, { redirect: 'manual' })],
  ])('refuses %s for a subject whose account was removed mid-flow: rejectConsent, no grant', async (_case, open) => {
    stub.consentRequest.subject = 'removed-sub';
    const res = await open();
    expect(res.status).toBe(302);
    expect(stub.calls.find((c) => c.method === 'rejectConsent')?.body).toMatchObject({ error: 'access_denied', error_description: 'This account no longer exists' });
    expect(stub.calls.map((c) => c.method)).not.toContain('acceptConsent');
  });

  it('refuses Allow for a subject whose account was removed after the page was shown: rejectConsent, no grant', async () => {
    const shown = await formOf('/consent?consent_challenge=cc');
    stub.consentRequest.subject = 'removed-sub';
    const res = await post('/consent', [['challenge', 'cc'], ['decision', 'allow'], ['scope', 'notes:read']], shown);
    expect(res.status).toBe(302);
    expect(stub.calls.map((c) => c.method)).toContain('rejectConsent');
    expect(stub.calls.map((c) => c.method)).not.toContain('acceptConsent');
  });

  it('rejects with access_denied when the person clicks Deny', async () => {
    const res = await consent([['decision', 'deny']]);
    expect(res.status).toBe(302);
    expect(stub.calls.find((c) => c.method === 'rejectConsent')?.body).toEqual({
      error: 'access_denied',
      error_description: 'The user denied access',
      status_code: 403,
    });
    expect(stub.calls.map((c) => c.method)).not.toContain('acceptConsent');
  });

  it.each([
    ['GET /login without a challenge', () => fetch(`${base}/login`)],
    ['GET /consent with an empty challenge', () => fetch(`${base}/consent?consent_challenge=`)],
    ['GET /logout with a repeated challenge', () => fetch(`${base}/logout?logout_challenge=a&logout_challenge=b`)],
    ['GET /login with an oversized challenge', () => fetch(`${base}/login?login_challenge=${'x'.repeat(3000)}`)],
    ['POST /login without a challenge', async () => post('/login', [['email', 'alice@example.com'], ['password', 'correct horse']])],
    ['POST /consent with an unknown decision', async () => consent([['decision', 'maybe']])],
  ])('answers %s with 400 and never calls Hydra', async (_case, send) => {
    const res = await send();
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('missing or malformed');
    expect(stub.calls).toEqual([]);
  });

  it.each([
    ['no CSRF token or cookie', () => post('/login', [['challenge', 'lc'], ['email', 'alice@example.com'], ['password', 'correct horse']])],
    ['a token issued for another challenge', async () => {
      const other = await formOf('/login?login_challenge=other');
      return post('/login', [['challenge', 'lc'], ['email', 'alice@example.com'], ['password', 'correct horse']], other);
    }],
    ['a token without its cookie', async () => {
      const { csrf } = await formOf('/login?login_challenge=lc');
      return post('/login', [['challenge', 'lc'], ['email', 'alice@example.com'], ['password', 'correct horse']], { cookie: '', csrf });
    }],
  ])('refuses a sign-in with %s (CSRF) and accepts nothing', async (_case, send) => {
    const res = await send();
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('did not come from this site');
    expect(stub.calls.map((c) => c.method)).not.toContain('acceptLogin');
  });

  it('maps "keep me signed in" to Hydra remember / remember_for', async () => {
    await login([['email', 'alice@example.com'], ['password', 'correct horse'], ['remember', 'yes']]);
    expect(stub.calls.find((c) => c.method === 'acceptLogin')?.body).toEqual({ subject: sub, remember: true, remember_for: 2592000 });
  });

  it('remembers a consent decision when asked', async () => {
    await consent([['decision', 'allow'], ['scope', 'notes:read'], ['remember', 'yes']]);
    expect(stub.calls.find((c) => c.method === 'acceptConsent')?.body).toMatchObject({ remember: true, remember_for: 2592000 });
  });

  it('marks required scopes on the consent page and grants them even if the form omits them', async () => {
    const html = await (await fetch(`${base}/consent?consent_challenge=cc`)).text();
    expect(html).toMatch(/openid<\/code> <span class="required">\(required\)<\/span>/);
    await consent([['decision', 'allow']]);
    expect((stub.calls.find((c) => c.method === 'acceptConsent')?.body as AcceptConsent).grant_scope).toContain('openid');
  });

  it('slows down repeated failures with growing delays, then refuses with 429 and Retry-After', async () => {
    const wrong = () => login([['email', 'alice@example.com'], ['password', 'wrong password']]);
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await wrong()).status);
    expect(statuses).toEqual(Array(10).fill(401));
    expect(waits).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000]);
    const locked = await login([['email', 'alice@example.com'], ['password', 'correct horse']]);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(stub.calls.map((c) => c.method)).not.toContain('acceptLogin');
  });

  it('skips the consent page for a trusted first-party client', async () => {
    stub.consentClient({ ...CLIENT, client_id: 'first-party' });
    const res = await fetch(`${base}/consent?consent_challenge=cc`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(stub.calls.map((c) => c.method)).toContain('acceptConsent');
  });

  it('issue 26 #3: a trusted first-party client, remembered or not, keeps our offline-access policy (it never shows the page)', async () => {
    stub.consentClient({ ...CLIENT, client_id: 'first-party' });
    stub.consentRequest.skip = true;
    await fetch(`${base}/consent?consent_challenge=cc`, { redirect: 'manual' });
    expect((stub.calls.find((c) => c.method === 'acceptConsent')?.body as AcceptConsent).grant_scope).toEqual(['openid', 'notes:read', 'notes:write', 'offline_access']);
  });

  it('asks before signing out, and signs out only on "Sign out"', async () => {
    const page = await fetch(`${base}/logout?logout_challenge=lo`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Sign out?');
    expect(stub.calls.map((c) => c.method)).not.toContain('acceptLogout');
    const stay = await post('/logout', [['challenge', 'lo'], ['decision', 'no']], await formOf('/logout?logout_challenge=lo'));
    expect(stay.status).toBe(200);
    expect(stub.calls.map((c) => c.method)).toEqual(['rejectLogout']);
    const out = await post('/logout', [['challenge', 'lo'], ['decision', 'yes']], await formOf('/logout?logout_challenge=lo'));
    expect(out.status).toBe(302);
    expect(stub.calls.map((c) => c.method)).toContain('acceptLogout');
  });

  it('shows the login form (200, fresh CSRF cookie) to a browser whose CSRF cookie has a bad percent-encoding, not a 500', async () => {
    const res = await fetch(`${base}/login?login_challenge=lc`, { headers: { cookie: 'hmcp_csrf=%E0%A4%A' } });
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie().filter((c) => c.startsWith('hmcp_csrf=')).length).toBe(1);
    expect(parse(await res.text()).querySelector('input[name=csrf]')?.getAttribute('value')).toBeTruthy();
  });

  it('shows a readable 410 page for a used or expired challenge', async () => {
    const res = await fetch(`${base}/login?login_challenge=gone`);
    expect(res.status).toBe(410);
    const text = await res.text();
    expect(text).toContain('Start again from your app');
    expect(text).not.toMatch(/at \w+ \(/); // no stack trace
  });

  it('shows a 503 page with Retry-After when Hydra cannot be reached', async () => {
    const res = await fetch(`${base}/consent?consent_challenge=down`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await res.text()).toContain('cannot be reached');
  });

  it("shows Hydra's error and description on /oauth-error, escaped", async () => {
    const res = await fetch(`${base}/oauth-error?error=invalid_request&error_description=${encodeURIComponent('<b>bad</b> redirect_uri')}`);
    expect(res.status).toBe(400);
    const html = await res.text();
    expect(html).toContain('invalid_request: &lt;b&gt;bad&lt;/b&gt; redirect_uri');
    expect(html).not.toContain('<b>bad</b>');
  });
});
