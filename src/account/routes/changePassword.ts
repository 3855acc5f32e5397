import express from 'express';
import { z } from 'zod';
import { HydraError } from '../../hydra/index.js';
import { CsrfField } from '../../web/csrf.js';
import { parse, send } from '../../web/pageKit.js';
import { changePasswordPage, type ChangePasswordErrors } from '../accountPages.js';
import { checkPassword, UserInputError, type UserStore } from '../userStore.js';
import type { BuiltInSession, PasswordRecheck } from './builtInSession.js';
import { type AccountContext, requireUserFor } from './context.js';

export interface ChangePasswordOptions {
  users: UserStore;
  session: BuiltInSession;
  recheck: PasswordRecheck;
}

const Password = z.string().max(1024).default('');
const PasswordForm = z.object({ csrf: CsrfField, 'current-password': Password, 'new-password': Password, 'repeat-password': Password });
/** The form that changes the password: bound to the signed-in person as well. */
const passwordBinding = (sub: string) => `account-password|${sub}`;

/**
 * GET/POST /account/password (built-in session). The new password ends every
 * other sign-in: other /account cookies by the new stamp, Hydra's login
 * sessions through its admin API; this browser gets a fresh cookie.
 */
export function changePasswordRoutes(ctx: AccountContext, { users, session, recheck }: ChangePasswordOptions): express.Router {
  const { hydra, csrf, page, form, log } = ctx;
  const router = express.Router();

  router.get('/account/password', page(async (req, res) => {
    const user = await session.user(req);
    if (!user) return res.redirect(303, '/account');
    send(res, 200, changePasswordPage({ csrf: csrf.tokenFor(req, res, passwordBinding(user.id)), email: user.email }));
  }));

  router.post('/account/password', form, page(async (req, res) => {
    const input = parse(PasswordForm, req.body, 'form');
    const user = await requireUserFor(ctx, req, passwordBinding, input.csrf);
    const again = (status: number, errors: ChangePasswordErrors) => send(res, status, changePasswordPage({ csrf: input.csrf, email: user.email, errors }));
    const current = input['current-password'];
    const next = input['new-password'];
    // The new password's own checks first: they cost no password check and count no failure.
    const errors: ChangePasswordErrors = {};
    if (!current) errors.current = 'Enter your current password.';
    try {
      checkPassword(next);
      if (next !== input['repeat-password']) errors.repeat = 'The two new passwords are not the same.';
    } catch (e) {
      if (!(e instanceof UserInputError)) throw e;
      errors.next = next ? `The new ${e.message}.` : 'Enter a new password.';
    }
    if (Object.keys(errors).length) return again(400, errors);
    const refused = await recheck(req, res, user, current, 'account-password');
    if (refused) return again(refused.status, { form: refused.errors.form, current: refused.errors.field });

    await users.setPassword(user.email, next);
    await session.start(res, user);
    let done = 'password';
    try {
      await hydra.revokeLoginSessions(user.id);
    } catch (e) {
      if (!(e instanceof HydraError)) throw e;
      log.warn('password changed; Hydra login sessions not ended', { sub: user.id, status: e.status, error: e.error });
      done = 'password-sessions-pending';
    }
    log.info('password changed by user', { sub: user.id });
    res.redirect(303, `/account?done=${done}`);
  }));

  return router;
}
