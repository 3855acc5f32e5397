import express from 'express';
import type { AccountContext } from './context.js';
import type { KratosSession } from './kratosSession.js';

/**
 * IDENTITY=kratos: signing in and changing the password are Kratos's flows,
 * so our forms for them only send the browser on. Kratos's settings flow
 * (rendered by /kratos/settings) changes the password, then comes back.
 */
export function kratosFlowRoutes(ctx: AccountContext, session: KratosSession): express.Router {
  const { page, form } = ctx;
  const router = express.Router();
  router.post('/account/sign-in', form, page(async (_req, res) => res.redirect(303, '/account')));
  router.get('/account/password', page(async (_req, res) => res.redirect(303, session.flowUrl('settings', '/account?done=settings'))));
  router.post('/account/password', form, page(async (_req, res) => res.redirect(303, '/account/password')));
  return router;
}
