import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ALICE, type SignInApp, startSignInApp } from './signInApp.js';

// Sign-in and account pages, not the key derivation's cost: scrypt at a test cost (test/support/cheapScrypt.ts).
vi.mock('node:crypto', async (real) => (await import('../support/cheapScrypt.js')).withCheapScrypt(await real()));

const ENDPOINTS = ['/login', '/account/sign-in'] as const;
type Endpoint = (typeof ENDPOINTS)[number];

describe('one sign-in for /login and /account/sign-in (stub Hydra admin)', () => {
  let app: SignInApp;
  beforeEach(async () => {
    app = await startSignInApp();
  });
  afterEach(async () => {
    await app.close();
  });
  const attempt = (endpoint: Endpoint, email: string, password: string) => app.endpoints[endpoint](email, password);

  it.each(ENDPOINTS)('%s waits out the throttle delay after the free failures (the /account/sign-in bypass)', async (endpoint) => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await attempt(endpoint, ALICE.email, 'wrong password')).status);
    expect(statuses).toEqual(Array(6).fill(401));
    // Three failures are free; then 500 ms, doubled each time.
    expect(app.waits).toEqual([500, 1000, 2000]);
  });

  it.each(ENDPOINTS)('%s refuses with 429 and Retry-After once the account is locked, even with the right password', async (endpoint) => {
    for (let i = 0; i < 10; i++) await attempt(endpoint, ALICE.email, 'wrong password');
    const locked = await attempt(endpoint, ALICE.email, ALICE.password);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await locked.text()).toContain('Too many failed attempts. Try again in 15 minutes.');
    expect(app.accepted).toEqual([]);
    expect(locked.headers.getSetCookie().some((c) => c.startsWith('hmcp_account='))).toBe(false);
  });

  it.each([
    ['/login', '/account/sign-in'],
    ['/account/sign-in', '/login'],
  ] as const)('failures on %s slow down %s for the same account: one throttle, one delay', async (first, then) => {
    for (let i = 0; i < 4; i++) await attempt(first, ALICE.email, 'wrong password');
    app.waits.length = 0;
    expect((await attempt(then, ALICE.email, 'wrong password')).status).toBe(401);
    expect(app.waits).toEqual([1000]);
  });

  it.each(ENDPOINTS)('%s normalises the email before counting failures (case and spaces do not reset the count)', async (endpoint) => {
    const spellings = [ALICE.email, ' ALICE@example.com', 'Alice@Example.COM ', 'alice@EXAMPLE.com', '  alice@example.com  '];
    for (const email of spellings) await attempt(endpoint, email, 'wrong password');
    expect(app.waits).toEqual([500, 1000]);
  });

  it.each(ENDPOINTS)("%s clears the account's failures on the right password: 9 failures, a success and 1 more do not lock it", async (endpoint) => {
    for (let i = 0; i < 9; i++) await attempt(endpoint, ALICE.email, 'wrong password');
    expect([302, 303]).toContain((await attempt(endpoint, ALICE.email, ALICE.password)).status);
    expect((await attempt(endpoint, ALICE.email, 'wrong password')).status).toBe(401);
    // Without the reset this would be the tenth failure in the window, and a 429.
    expect([302, 303]).toContain((await attempt(endpoint, ALICE.email, ALICE.password)).status);
  });

  it('signs in on /login with the user as subject, and on /account/sign-in with the session cookie', async () => {
    const login = await attempt('/login', ALICE.email, ALICE.password);
    expect(login.status).toBe(302);
    expect(app.accepted).toEqual([{ subject: app.alice.id, remember: false }]);
    const account = await attempt('/account/sign-in', 'ALICE@example.com', ALICE.password);
    expect(account.status).toBe(303);
    expect(account.headers.get('location')).toBe('/account');
    expect(account.headers.getSetCookie().some((c) => c.startsWith('hmcp_account='))).toBe(true);
  });

  it.each(ENDPOINTS)('%s shows "Wrong email or password." with 401 for an unknown email', async (endpoint) => {
    const res = await attempt(endpoint, 'nobody@example.com', ALICE.password);
    expect(res.status).toBe(401);
    expect(await res.text()).toContain('Wrong email or password.');
  });

  // One CSRF check: the same field, the same refusal, and a token bound to what the form acts on.
  const CSRF_CASES = [
    ['/login', 'no token', async () => app.post('/login', [['challenge', 'lc'], ['email', ALICE.email], ['password', ALICE.password]], (await app.formOf('/login?login_challenge=lc')).cookie)],
    ['/account/sign-in', 'no token', async () => app.post('/account/sign-in', [['email', ALICE.email], ['password', ALICE.password]], (await app.formOf('/account')).cookie)],
    ['/login', "the account form's token", async () => {
      const f = await app.formOf('/account');
      return app.post('/login', [['challenge', 'lc'], ['csrf', f.csrf], ['email', ALICE.email], ['password', ALICE.password]], f.cookie);
    }],
    ['/account/sign-in', "the login form's token", async () => {
      const f = await app.formOf('/login?login_challenge=lc');
      return app.post('/account/sign-in', [['csrf', f.csrf], ['email', ALICE.email], ['password', ALICE.password]], f.cookie);
    }],
    ['/account/sign-in', 'a token without its cookie', async () => {
      const f = await app.formOf('/account');
      return app.post('/account/sign-in', [['csrf', f.csrf], ['email', ALICE.email], ['password', ALICE.password]]);
    }],
  ] as const;
  it.each(CSRF_CASES)('%s refuses a form with %s (CSRF), before the throttle or the password are looked at', async (_endpoint, _case, send) => {
    const res = await send();
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('The form has expired or did not come from this site.');
    expect(app.accepted).toEqual([]);
    expect(res.headers.getSetCookie().some((c) => c.startsWith('hmcp_account='))).toBe(false);
    expect(app.waits).toEqual([]);
  });
});
