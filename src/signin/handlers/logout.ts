import express from 'express';
import { z } from 'zod';
import type { Kratos } from '../../kratos/index.js';
import type { Signer } from '../../web/cookies.js';
import { BadRequest, parse, send } from '../../web/pageKit.js';
import { messagePage } from '../../web/layout.js';
import { logoutPage } from '../pages.js';
import { CsrfField } from '../../web/csrf.js';
import { Challenge, type PageContext } from './context.js';

const LogoutQuery = z.object({ logout_challenge: Challenge });
const LogoutForm = z.object({ challenge: Challenge, csrf: CsrfField, decision: z.enum(['yes', 'no']) });
const ContinueQuery = z.object({ logout: z.string().min(1).max(4096) });

export interface LogoutOptions {
  /**
   * IDENTITY=kratos: signing out ends the Kratos session too, through Kratos's
   * browser logout flow, which comes back to `continueUrl` (on our public URL,
   * so Kratos's allowed_return_urls already admits it); `signer` binds that
   * return to the challenge the person confirmed.
   */
  kratos?: { client: Kratos; continueUrl: URL; signer: Signer };
}

/** Purpose label of the signed logout continuation: no other signed value of ours opens it. */
const CONTINUE = 'logout-continue|';

/**
 * urls.logout. Logout asks first: a link alone must not sign anyone out
 * (OIDC RP-Initiated Logout §3).
 */
export function logoutHandler(ctx: PageContext, options: LogoutOptions = {}): express.Router {
  const { hydra, log, csrf, page, form } = ctx;
  const router = express.Router();

  /** Accepting ends Hydra's login session for this browser and notifies the clients. */
  const finish = async (res: express.Response, challenge: string) => {
    const request = await hydra.getLogoutRequest(challenge);
    const { redirect_to } = await hydra.acceptLogoutRequest(challenge);
    log.info('signed out', { sub: request.subject });
    res.redirect(302, redirect_to);
  };

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
    const { kratos } = options;
    if (kratos) {
      // Kratos first: its flow ends the session and clears its cookie in this browser, then returns here to end Hydra's.
      const back = new URL(kratos.continueUrl);
      back.searchParams.set('logout', kratos.signer.sign(CONTINUE + input.challenge));
      const logoutUrl = await kratos.client.public.browserLogoutUrl(req.headers.cookie, back.href);
      if (logoutUrl) return res.redirect(303, logoutUrl.href);
    }
    await finish(res, input.challenge);
  }));

  if (options.kratos) {
    const { signer, continueUrl } = options.kratos;
    router.get(continueUrl.pathname, page(async (req, res) => {
      const { logout } = parse(ContinueQuery, req.query, 'logout continuation');
      const value = signer.unsign(logout);
      if (!value?.startsWith(CONTINUE)) throw new BadRequest('This sign-out link is not valid.');
      await finish(res, value.slice(CONTINUE.length));
    }));
  }

  return router;
}
