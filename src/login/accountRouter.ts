import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import type { HydraAdmin } from '../auth/hydraAdmin.js';
import type { Logger } from '../log/logger.js';
import { clearCookie, readCookie, setCookie, type Signer } from './cookies.js';
import { Csrf } from './csrf.js';
import { BadRequest, pageHandler, parse, send } from './pageKit.js';
import { accountPage, accountSignInPage, messagePage } from './pages.js';
import type { LoginThrottle } from './throttle.js';
import type { UserStore } from './userStore.js';

export interface AccountRouterOptions {
  hydra: HydraAdmin;
  users: UserStore;
  signer: Signer;
  secureCookies: boolean;
  /** Shared with the OAuth sign-in page, so both count the same failures. */
  throttle: LoginThrottle;
  log: Logger;
  now?: () => number;
}

const COOKIE = 'hmcp_account';
const SESSION_SECONDS = 15 * 60;
const CSRF_BINDING = 'account';
const SignInForm = z.object({ csrf: z.string().max(200).default(''), email: z.string().max(320), password: z.string().max(1024) });
const RevokeForm = z.object({ csrf: z.string().max(200).default(''), client: z.string().min(1).max(255) });
const CsrfForm = z.object({ csrf: z.string().max(200).default('') });
const NOTICES: Record<string, string> = { revoked: 'Access removed. The app must ask you again to use your account.' };

/**
 * /account: people see which apps hold a consent from them and withdraw it
 * (Hydra then revokes that app's tokens), or sign out everywhere. A short
 * signed cookie holds the signed-in `sub`; nothing else identifies the user.
 */
export function createAccountRouter(options: AccountRouterOptions): express.Router {
  const { hydra, users, signer, log, throttle } = options;
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '16kb' });
  const page = pageHandler(log);
  const cookieOpts = { secure: options.secureCookies };
  const csrf = new Csrf(signer, cookieOpts);
  const now = options.now ?? Date.now;

  const sessionSub = (req: Request): string | undefined => {
    const raw = readCookie(req, COOKIE);
    const value = raw ? signer.unsign(raw) : undefined;
    const [sub, exp] = value?.split('|') ?? [];
    return sub && Number(exp) > now() ? sub : undefined;
  };
  const requireSession = (req: Request, token: string): string => {
    if (!csrf.verify(req, CSRF_BINDING, token)) throw new BadRequest('The form has expired or did not come from this site. Go back and try again.');
    const sub = sessionSub(req);
    if (!sub) throw new BadRequest('Your account session has ended. Sign in again.');
    return sub;
  };

  router.get('/account', page(async (req, res) => {
    const sub = sessionSub(req);
    const user = sub ? await users.findById(sub) : undefined;
    const token = csrf.tokenFor(req, res, CSRF_BINDING);
    if (!user) return send(res, 200, accountSignInPage({ csrf: token }));
    const sessions = await hydra.listConsentSessions(user.id);
    const grants = sessions.map((s) => ({
      clientId: s.consent_request?.client?.client_id ?? '',
      clientName: s.consent_request?.client?.client_name || s.consent_request?.client?.client_id || 'Unknown app',
      scopes: s.grant_scope ?? [],
      grantedAt: s.handled_at,
      remembered: s.remember === true,
    }));
    // One line per app: Hydra keeps a consent per authorization.
    const byClient = [...new Map(grants.filter((g) => g.clientId).map((g) => [g.clientId, g])).values()];
    const notice = typeof req.query.done === 'string' ? NOTICES[req.query.done] : undefined;
    send(res, 200, accountPage({ csrf: token, email: user.email, grants: byClient, notice }));
  }));

  router.post('/account/sign-in', form, page(async (req, res) => {
    const input = parse(SignInForm, req.body, 'sign-in form');
    if (!csrf.verify(req, CSRF_BINDING, input.csrf)) throw new BadRequest('The form has expired or did not come from this site. Go back and try again.');
    const account = input.email.trim().toLowerCase();
    const address = req.ip ?? 'unknown';
    const verdict = throttle.check(account, address);
    if (!verdict.allowed) {
      res.set('Retry-After', String(verdict.retryAfterSeconds));
      return send(res, 429, accountSignInPage({ csrf: input.csrf, email: input.email, error: 'Too many failed attempts. Try again later.' }));
    }
    const user = await users.verify(input.email, input.password);
    if (!user) {
      throttle.recordFailure(account, address);
      return send(res, 401, accountSignInPage({ csrf: input.csrf, email: input.email, error: 'Wrong email or password.' }));
    }
    throttle.recordSuccess(account);
    setCookie(res, COOKIE, signer.sign(`${user.id}|${now() + SESSION_SECONDS * 1000}`), { ...cookieOpts, maxAgeSeconds: SESSION_SECONDS });
    res.redirect(303, '/account');
  }));

  router.post('/account/revoke', form, page(async (req, res) => {
    const input = parse(RevokeForm, req.body, 'form');
    const sub = requireSession(req, input.csrf);
    await hydra.revokeConsentSessions(sub, input.client);
    log.info('consent withdrawn by user', { sub, client_id: input.client });
    res.redirect(303, '/account?done=revoked');
  }));

  router.post('/account/sign-out-everywhere', form, page(async (req: Request, res: Response) => {
    const input = parse(CsrfForm, req.body, 'form');
    const sub = requireSession(req, input.csrf);
    await hydra.revokeLoginSessions(sub);
    clearCookie(res, COOKIE, cookieOpts);
    log.info('signed out everywhere', { sub });
    send(res, 200, messagePage({ title: 'Signed out everywhere', message: 'Every remembered sign-in has ended. Apps keep their access until you remove it.' }));
  }));

  return router;
}
