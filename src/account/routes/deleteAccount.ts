import express from 'express';
import { z } from 'zod';
import { CsrfField } from '../../web/csrf.js';
import { messagePage } from '../../web/layout.js';
import { parse, send } from '../../web/pageKit.js';
import { clearCookie } from '../../web/cookies.js';
import { deleteAccountPage, type DeleteAccountErrors } from '../accountPages.js';
import { type AccountContext, CSRF_BINDING, type DeleteProof, requireUserFor, SESSION_COOKIE } from './context.js';

export interface DeleteAccountOptions {
  proof: DeleteProof;
  /** The one account-removal path (src/account/accountRemoval.ts), as this page needs it. */
  deleteAccount: (sub: string) => Promise<void>;
}

const Password = z.string().max(1024).default('');
const DeleteForm = z.object({ csrf: CsrfField, password: Password, confirm: z.literal('yes').optional().catch(undefined) });
/** The form that deletes the account: bound to the signed-in person as well. */
const deleteBinding = (sub: string) => `account-delete|${sub}`;

/** GET/POST /account/delete: what happens, a copy to download, then the proof and an "I understand" box. */
export function deleteAccountRoutes(ctx: AccountContext, { proof, deleteAccount }: DeleteAccountOptions): express.Router {
  const { session, csrf, page, form, log } = ctx;
  const router = express.Router();

  router.get('/account/delete', page(async (req, res) => {
    const user = await session.user(req);
    if (!user) return res.redirect(303, '/account');
    if (!(await proof.recent(req, res))) return;
    send(res, 200, deleteAccountPage({ csrf: csrf.tokenFor(req, res, deleteBinding(user.id)), exportCsrf: csrf.tokenFor(req, res, CSRF_BINDING), email: user.email, askPassword: proof.askPassword }));
  }));

  router.post('/account/delete', form, page(async (req, res) => {
    const input = parse(DeleteForm, req.body, 'form');
    const user = await requireUserFor(ctx, req, deleteBinding, input.csrf);
    const again = (status: number, errors: DeleteAccountErrors) =>
      send(res, status, deleteAccountPage({ csrf: input.csrf, exportCsrf: csrf.tokenFor(req, res, CSRF_BINDING), email: user.email, errors, askPassword: proof.askPassword }));
    const errors: DeleteAccountErrors = {};
    if (!input.password && proof.askPassword) errors.password = 'Enter your password.';
    if (input.confirm !== 'yes') errors.confirm = 'Tick the box to confirm that you want your account deleted.';
    if (Object.keys(errors).length) return again(400, errors);
    // A sign-in gone stale while the page was open: signing in again comes back to this page.
    if (!(await proof.recent(req, res))) return;
    const refused = await proof.check(req, res, user, input.password);
    if (refused) return again(refused.status, { form: refused.errors.form, password: refused.errors.field });

    try {
      await deleteAccount(user.id);
    } catch (e) {
      log.error('account deletion by user did not finish', { sub: user.id, error: e });
      res.set('Retry-After', '5');
      return send(res, 503, messagePage({
        title: 'Your account was not fully deleted',
        message: 'Deleting stopped part-way. Sign in and try again in a moment: it continues where it stopped. If it keeps failing, ask the operator.',
      }));
    }
    clearCookie(res, SESSION_COOKIE, ctx.cookie);
    log.info('account deleted by user', { sub: user.id });
    send(res, 200, messagePage({ title: 'Your account has been deleted', message: 'Your account and everything stored for it are gone, and no app can use it any more.' }));
  }));

  return router;
}
