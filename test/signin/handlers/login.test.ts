import { afterEach, describe, expect, it, vi } from 'vitest';
import { LoginThrottle } from '../../../src/limits/throttle.js';
import { Metrics } from '../../../src/metrics/metrics.js';
import { ALICE, type SignInApp, startSignInApp } from '../../account/signInApp.js';
import { sample } from '../../support/metricSamples.js';

// Sign-in outcomes, not the key derivation's cost: scrypt at a test cost (test/support/cheapScrypt.ts).
vi.mock('node:crypto', async (real) => (await import('../../support/cheapScrypt.js')).withCheapScrypt(await real()));

/**
 * signin_attempts_total{method="password"}: every submission of our /login
 * form, counted once with how it ended (the real router, user store and
 * throttle on SQLite; Hydra's admin API a stub that accepts).
 */
describe('POST /login (password): signin_attempts_total', () => {
  let app: SignInApp;
  let metrics: Metrics;
  const start = async (throttle?: LoginThrottle) => {
    metrics = new Metrics();
    app = await startSignInApp({ ...(throttle ? { throttle } : {}), onSignInAttempt: (method, outcome) => metrics.signInAttempt(method, outcome) });
  };
  afterEach(() => app.close());
  const count = (outcome: string) => sample(metrics, 'signin_attempts_total', { method: 'password', outcome });
  const attempt = (email: string, password: string) => app.endpoints['/login'](email, password);

  it('a right password: ok; a wrong one: invalid_credentials', async () => {
    await start();
    expect((await attempt(ALICE.email, ALICE.password)).status).toBe(302);
    expect((await attempt(ALICE.email, 'wrong password')).status).toBe(401);
    expect(await count('ok')).toBe(1);
    expect(await count('invalid_credentials')).toBe(1);
  });

  it('the account locked after ten failures: locked, even with the right password', async () => {
    await start();
    for (let i = 0; i < 10; i++) await attempt(ALICE.email, 'wrong password');
    expect((await attempt(ALICE.email, ALICE.password)).status).toBe(429);
    expect(await count('invalid_credentials')).toBe(10);
    expect(await count('locked')).toBe(1);
  });

  it("the client address refused after failures across accounts: rate_limited", async () => {
    await start(new LoginThrottle({ lockAfter: { account: 100, address: 2 }, freeFailures: 100 }));
    await attempt('bob@example.com', 'x');
    await attempt('carol@example.com', 'x');
    expect((await attempt(ALICE.email, ALICE.password)).status).toBe(429);
    expect(await count('rate_limited')).toBe(1);
  });

  it('a form whose CSRF token is not ours: error (counted, though no password was checked)', async () => {
    await start();
    const form = await app.formOf('/login?login_challenge=lc');
    const res = await app.post('/login', [['challenge', 'lc'], ['csrf', 'forged'], ['email', ALICE.email], ['password', ALICE.password]], form.cookie);
    expect(res.status).toBe(400);
    expect(await count('error')).toBe(1);
    expect(await count('ok')).toBeUndefined();
  });

  it('the form page itself (GET) is not an attempt', async () => {
    await start();
    await app.formOf('/login?login_challenge=lc');
    expect(await metrics.registry.metrics()).not.toMatch(/^signin_attempts_total\{/m);
  });
});
