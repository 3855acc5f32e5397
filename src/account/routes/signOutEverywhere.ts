import express from 'express';
import { z } from 'zod';
import { clearCookie } from '../../web/cookies.js';
import { CsrfField } from '../../web/csrf.js';
import { messagePage } from '../../web/layout.js';
import { parse, send } from '../../web/pageKit.js';
import { type AccountContext, requireSession, SESSION_COOKIE } from './context.js';

const CsrfForm = z.object({ csrf: CsrfField });

/** POST /account/sign-out-everywhere: every remembered sign-in ends (Hydra's, and the identity backend's); apps keep their access. */
export function signOutEverywhereRoute(ctx: AccountContext): express.Router {
  const { hydra, session, page, form, log } = ctx;
  const router = express.Router();
  router.post('/account/sign-out-everywhere', form, page(async (req, res) => {
    const input = parse(CsrfForm, req.body, 'form');
    const sub = await requireSession(ctx, req, input.csrf);
    await hydra.revokeLoginSessions(sub);
    await session.endSessions(sub);
    clearCookie(res, SESSION_COOKIE, ctx.cookie);
    log.info('signed out everywhere', { sub });
    send(res, 200, messagePage({ title: 'Signed out everywhere', message: 'Every remembered sign-in has ended. Apps keep their access until you remove it.' }));
  }));
  return router;
}
