import express from 'express';
import { z } from 'zod';
import { parse, send } from '../../web/pageKit.js';
import { loginPage } from '../pages.js';
import { createSignIn, SignInFields } from '../../account/signIn.js';
import type { LoginThrottle } from '../../limits/throttle.js';
import { ACCOUNT_GONE, Challenge, clientName, type PageContext, REMEMBER_SECONDS, type SignInAttemptOutcome } from './context.js';

export interface LoginHandlerOptions {
  /** Failed-sign-in policy. */
  throttle: LoginThrottle;
  /** How to wait out a throttle delay (tests pass a recorder). */
  wait?: (ms: number) => Promise<unknown>;
}

const LoginQuery = z.object({ login_challenge: Challenge });
const LoginForm = SignInFields.extend({ challenge: Challenge, remember: z.literal('yes').optional() });

/** urls.login: Hydra sends the browser here to sign in; we accept or refuse through its admin API. */
export function loginHandler(ctx: PageContext, options: LoginHandlerOptions): express.Router {
  const { hydra, users, log, csrf, page, form } = ctx;
  const router = express.Router();
  const signIn = createSignIn({ users, csrf, log, throttle: options.throttle, ...(options.wait ? { wait: options.wait } : {}), ...(ctx.audit ? { audit: ctx.audit } : {}) });

  router.get('/login', page(async (req, res) => {
    const { login_challenge: challenge } = parse(LoginQuery, req.query, 'login_challenge');
    const request = await hydra.getLoginRequest(challenge);
    if (request.skip) {
      // Hydra remembers this browser's sign-in ("keep me signed in"): no form,
      // unless the account was removed since (its sessions may outlive the row by a moment).
      if (!(await users.findById(request.subject))) {
        const { redirect_to } = await hydra.rejectLoginRequest(challenge, ACCOUNT_GONE);
        log.info('remembered sign-in refused: account removed', { sub: request.subject });
        return res.redirect(302, redirect_to);
      }
      const { redirect_to } = await hydra.acceptLoginRequest(challenge, { subject: request.subject });
      return res.redirect(302, redirect_to);
    }
    const html = loginPage({ challenge, csrf: csrf.tokenFor(req, res, challenge), clientName: clientName(request.client) });
    send(res, 200, html);
  }));

  router.post('/login', form, page(async (req, res) => {
    // Whatever throws before the end (a bad or forged form, Hydra failing) is an attempt that ended in error.
    let counted: SignInAttemptOutcome = 'error';
    try {
      const input = signIn.readForm(req, LoginForm, (form) => form.challenge);
      const request = await hydra.getLoginRequest(input.challenge);
      const outcome = await signIn.attempt(req, res, input, { client_id: request.client?.client_id });
      if (!outcome.ok) {
        counted = outcome.reason;
        const html = loginPage({ challenge: input.challenge, csrf: input.csrf, clientName: clientName(request.client), email: input.email, error: outcome.error });
        return send(res, outcome.status, html);
      }
      const { user } = outcome;
      const remember = input.remember === 'yes';
      const { redirect_to } = await hydra.acceptLoginRequest(input.challenge, {
        subject: user.id,
        remember,
        ...(remember ? { remember_for: REMEMBER_SECONDS } : {}),
      });
      counted = 'ok';
      log.info('signed in', { sub: user.id, client_id: request.client?.client_id, remember });
      res.redirect(302, redirect_to);
    } finally {
      ctx.onSignInAttempt?.('password', counted);
    }
  }));

  return router;
}
