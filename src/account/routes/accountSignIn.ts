import express from 'express';
import { z } from 'zod';
import { send } from '../../web/pageKit.js';
import { accountSignInPage } from '../accountPages.js';
import { type SignIn, SignInFields } from '../signIn.js';
import type { BuiltInSession } from './builtInSession.js';
import { type AccountContext, CSRF_BINDING } from './context.js';

const AccountSignInFields = SignInFields.extend({ next: z.string().max(200).optional() });
/** Only back to a connect page of ours: never an open redirect. */
const NEXT = /^\/account\/connections\/[a-z][a-z0-9_-]{0,31}\/connect(\?e=[A-Za-z0-9_.-]{1,80})?$/;

/** POST /account/sign-in (built-in session): the throttled sign-in steps, then our cookie. */
export function accountSignInRoute(ctx: AccountContext, session: BuiltInSession, signIn: SignIn): express.Router {
  const router = express.Router();
  router.post('/account/sign-in', ctx.form, ctx.page(async (req, res) => {
    const input = signIn.readForm(req, AccountSignInFields, () => CSRF_BINDING);
    const next = input.next && NEXT.test(input.next) ? input.next : undefined;
    const outcome = await signIn.attempt(req, res, input, { page: 'account' });
    if (!outcome.ok) return send(res, outcome.status, accountSignInPage({ csrf: input.csrf, email: input.email, error: outcome.error, ...(next ? { next } : {}) }));
    await session.start(res, outcome.user);
    res.redirect(303, next ?? '/account');
  }));
  return router;
}
