import express from 'express';
import { z } from 'zod';
import { parse, send } from '../pageKit.js';
import { logoutPage, messagePage } from '../pages.js';
import { CsrfField } from '../signIn.js';
import { Challenge, type PageContext } from './context.js';

const LogoutQuery = z.object({ logout_challenge: Challenge });
const LogoutForm = z.object({ challenge: Challenge, csrf: CsrfField, decision: z.enum(['yes', 'no']) });

/**
 * urls.logout. Logout asks first: a link alone must not sign anyone out
 * (OIDC RP-Initiated Logout §3).
 */
export function logoutHandler(ctx: PageContext): express.Router {
  const { hydra, log, csrf, page, form } = ctx;
  const router = express.Router();

  router.get('/logout', page(async (req, res) => {
    const { logout_challenge: challenge } = parse(LogoutQuery, req.query, 'logout_challenge');
    const request = await hydra.getLogoutRequest(challenge);
    const html = logoutPage({ challenge, csrf: csrf.tokenFor(req, res, challenge), clientName: request.client?.client_name || request.client?.client_id });
    send(res, 200, html);
  }));

  router.post('/logout', form, page(async (req, res) => {
    const input = parse(LogoutForm, req.body, 'sign-out form');
    csrf.require(req, input.challenge, input.csrf);
    if (input.decision === 'no') {
      await hydra.rejectLogoutRequest(input.challenge);
      return send(res, 200, messagePage({ title: 'Still signed in', message: 'You were not signed out. You can close this page.' }));
    }
    const request = await hydra.getLogoutRequest(input.challenge);
    // Accepting ends Hydra's login session for this browser and notifies the clients.
    const { redirect_to } = await hydra.acceptLogoutRequest(input.challenge);
    log.info('signed out', { sub: request.subject });
    res.redirect(302, redirect_to);
  }));

  return router;
}
