import type { Server } from 'node:http';
import express from 'express';
import { parse } from 'node-html-parser';
import type { HydraAdmin, LoginRequest } from '../../src/hydra/index.js';
import { ResourceSet } from '../../src/auth/resource.js';
import { createLogger } from '../../src/log/logger.js';
import { createAccountRouter } from '../../src/account/accountRouter.js';
import { Signer } from '../../src/web/cookies.js';
import { createLoginRouter } from '../../src/signin/loginRouter.js';
import type { SignInAttemptListener } from '../../src/signin/handlers/context.js';
import { LoginThrottle } from '../../src/limits/throttle.js';
import { createUserStore } from '../../src/account/userStore.js';
import { openDatabase } from '../../src/store/database.js';
import { rateCountersStore } from '../../src/store/windowCounters.js';

export const ALICE = { email: 'alice@example.com', password: 'correct horse' };

/**
 * Both sign-in endpoints (/login and /account/sign-in) in one real Express
 * app, as app.ts wires them: one user store, one throttle shared by both
 * (counting in the database's table), and a recorder in place of the
 * throttle's sleep. Hydra's admin API is a stub
 * that answers the login challenge "lc" and lists no consents.
 */
export async function startSignInApp(options: { throttle?: LoginThrottle; onSignInAttempt?: SignInAttemptListener } = {}) {
  const db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
  const users = createUserStore(db);
  const alice = await users.add(ALICE.email, ALICE.password);
  const accepted: { subject: string }[] = [];
  const loginRequest: LoginRequest = {
    challenge: 'lc',
    skip: false,
    subject: '',
    client: { client_id: 'client-1', client_name: 'Test Client', redirect_uris: ['http://127.0.0.1:6274/cb'] },
    request_url: 'http://h/oauth2/auth',
  };
  const hydra = {
    getLoginRequest: async () => loginRequest,
    acceptLoginRequest: async (_c: string, body: { subject: string }) => (accepted.push(body), { redirect_to: 'http://127.0.0.1:4444/next' }),
    listConsentSessions: async () => [],
  } as unknown as HydraAdmin;
  const signer = new Signer('s'.repeat(32));
  const throttle = options.throttle ?? new LoginThrottle({ counters: rateCountersStore(db) });
  const waits: number[] = [];
  const wait = async (ms: number) => void waits.push(ms);
  const log = createLogger('silent');
  const app = express();
  app.use(
    createLoginRouter({
      hydra,
      users,
      resources: new ResourceSet([new URL('http://127.0.0.1:3000/mcp')]),
      signer,
      secureCookies: false,
      trustedClientIds: [],
      throttle,
      wait,
      log,
      ...(options.onSignInAttempt ? { onSignInAttempt: options.onSignInAttempt } : {}),
    }),
  );
  app.use(
    createAccountRouter({
      hydra,
      users,
      signer,
      secureCookies: false,
      throttle,
      wait,
      log,
      // Not used by the sign-in tests (test/login/accountRouter.test.ts covers them).
      exportData: async function* () {},
      deleteAccount: async () => {},
    }),
  );
  let server!: Server;
  await new Promise<void>((r) => (server = app.listen(0, '127.0.0.1', () => r())));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  /** Open a form page like a browser: keep its CSRF cookie and the hidden token. */
  const formOf = async (path: string, cookie?: string) => {
    const res = await fetch(`${base}${path}`, { headers: cookie ? { cookie } : {} });
    const set = res.headers.getSetCookie().find((c) => c.startsWith('hmcp_csrf='));
    const csrf = parse(await res.text()).querySelector('input[name=csrf]')?.getAttribute('value') ?? '';
    return { cookie: set ? set.split(';')[0]! : (cookie ?? ''), csrf };
  };
  const post = (path: string, form: ReadonlyArray<readonly [string, string]>, cookie = '') =>
    fetch(`${base}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
      body: new URLSearchParams(form.map(([k, v]) => [k, v])).toString(),
    });

  /** The two sign-in forms, each opened fresh and posted with its own CSRF token. */
  const endpoints = {
    '/login': async (email: string, password: string) => {
      const f = await formOf('/login?login_challenge=lc');
      return post('/login', [['challenge', 'lc'], ['csrf', f.csrf], ['email', email], ['password', password]], f.cookie);
    },
    '/account/sign-in': async (email: string, password: string) => {
      const f = await formOf('/account');
      return post('/account/sign-in', [['csrf', f.csrf], ['email', email], ['password', password]], f.cookie);
    },
  };

  return {
    base,
    alice,
    accepted,
    waits,
    formOf,
    post,
    endpoints,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await db.destroy();
    },
  };
}

export type SignInApp = Awaited<ReturnType<typeof startSignInApp>>;
