import express from 'express';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { UserStore } from '../../../src/account/userStore.js';
import { ResourceSet } from '../../../src/auth/resource.js';
import type { HydraAdmin } from '../../../src/hydra/index.js';
import type { Kratos, SelfServiceFlow, Session } from '../../../src/kratos/index.js';
import { createLogger } from '../../../src/log/logger.js';
import { Metrics } from '../../../src/metrics/metrics.js';
import { requiredFreshness } from '../../../src/signin/handlers/kratosLogin.js';
import { createLoginRouter } from '../../../src/signin/loginRouter.js';
import { Signer } from '../../../src/web/cookies.js';
import { serve } from '../../auth/handlers/serve.js';
import { sample } from '../../support/metricSamples.js';

describe('requiredFreshness: what a client asks of the sign-in (OIDC prompt and max_age)', () => {
  const at = (q: string) => requiredFreshness(`https://hydra.example/oauth2/auth?client_id=c&${q}`);
  it.each([
    ['prompt=login', { promptLogin: true }],
    ['prompt=consent%20login', { promptLogin: true }],
    ['max_age=300', { promptLogin: false, maxAge: 300 }],
    ['max_age=0', { promptLogin: false, maxAge: 0 }],
    ['prompt=login&max_age=5', { promptLogin: true }],
  ])('%s', (q, expected) => expect(at(q)).toEqual(expected));
  it.each(['', 'prompt=consent', 'max_age=-1', 'max_age=abc', 'max_age=1e3', 'max_age=9999999999'])('nothing demanded by "%s"', (q) => expect(at(q)).toBeUndefined());
  it('no or an unparsable request URL: nothing demanded', () => {
    expect(requiredFreshness(undefined)).toBeUndefined();
    expect(requiredFreshness('not a url')).toBeUndefined();
  });
});

/**
 * signin_attempts_total{method="kratos"}: the form posts to Kratos, so what
 * we see of an attempt is its end: back at /login from Kratos (signed in, or
 * not), or Kratos's refused flow rendered at /kratos/login. The real login
 * router over stubs of Kratos and Hydra's admin API.
 */
describe('sign-in with Kratos: signin_attempts_total', () => {
  const KRATOS = new URL('http://127.0.0.1:4433');
  let session: Session | undefined;
  let flow: SelfServiceFlow;
  let metrics: Metrics;
  let base: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const kratos = {
      public: {
        browserFlowUrl: (kind: string) => new URL(`/self-service/${kind}/browser`, KRATOS),
        whoami: async () => session,
        getFlow: async () => flow,
      },
      admin: { getIdentity: async () => undefined },
    } as unknown as Kratos;
    const hydra = {
      getLoginRequest: async () => ({ challenge: 'lc', skip: false, subject: '', client: { client_id: 'c1' }, request_url: 'http://h/oauth2/auth' }),
      acceptLoginRequest: async () => ({ redirect_to: 'http://127.0.0.1:4444/next' }),
    } as unknown as HydraAdmin;
    const app = express();
    app.use(
      createLoginRouter({
        hydra,
        users: {} as UserStore,
        resources: new ResourceSet([new URL('http://127.0.0.1:3000/mcp')]),
        signer: new Signer('s'.repeat(32)),
        secureCookies: false,
        trustedClientIds: [],
        log: createLogger('silent'),
        kratos: { client: kratos, publicUrl: KRATOS, publicBaseUrl: new URL('http://127.0.0.1:3000') },
        onSignInAttempt: (method, outcome) => metrics.signInAttempt(method, outcome),
      }),
    );
    ({ base, close } = await serve(app));
  });
  afterAll(() => close());
  beforeEach(() => {
    metrics = new Metrics();
    session = undefined;
  });

  const count = (outcome: string) => sample(metrics, 'signin_attempts_total', { method: 'kratos', outcome });
  const get = (path: string) => fetch(`${base}${path}`, { redirect: 'manual' });
  const aFlow = (messages: SelfServiceFlow['ui']['messages']): SelfServiceFlow => ({ id: 'f1', type: 'browser', ui: { action: `${KRATOS.origin}/self-service/login?flow=f1`, method: 'POST', nodes: [], messages } });
  const signedInJustNow: Session = { id: 's1', active: true, authenticated_at: new Date().toISOString(), identity: { id: 'kratos-identity-1', schema_id: 'default', traits: {} } };

  it('back from Kratos with its session: ok', async () => {
    session = signedInJustNow;
    expect((await get('/login?login_challenge=lc&kratos=returned')).status).toBe(302);
    expect(await count('ok')).toBe(1);
  });

  it('back from Kratos without a session (its cookie does not reach us): error', async () => {
    expect((await get('/login?login_challenge=lc&kratos=returned')).status).toBe(502);
    expect(await count('error')).toBe(1);
  });

  it('Kratos refused the password (its flow comes back with message 4000006): invalid_credentials; another refusal: error', async () => {
    flow = aFlow([{ id: 4000006, type: 'error', text: 'The provided credentials are invalid.' }]);
    expect((await get('/kratos/login?flow=f1')).status).toBe(200);
    expect(await count('invalid_credentials')).toBe(1);
    flow = aFlow([{ id: 4000002, type: 'error', text: 'Property password is missing.' }]);
    await get('/kratos/login?flow=f1');
    expect(await count('error')).toBe(1);
  });

  it('no attempt: a fresh form, or /login on the way to Kratos, or with a session already there', async () => {
    flow = aFlow([]);
    await get('/kratos/login?flow=f1');
    expect((await get('/login?login_challenge=lc')).status).toBe(303);
    session = signedInJustNow;
    expect((await get('/login?login_challenge=lc')).status).toBe(302);
    expect(await metrics.registry.metrics()).not.toMatch(/^signin_attempts_total\{/m);
  });
});
