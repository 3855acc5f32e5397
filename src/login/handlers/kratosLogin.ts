import express from 'express';
import { z } from 'zod';
import type { Kratos } from '../../kratos/index.js';
import { parse, send } from '../pageKit.js';
import { errorPage } from '../pages.js';
import { ACCOUNT_GONE, Challenge, type PageContext } from './context.js';

export interface KratosLoginOptions {
  kratos: Kratos;
  /** Our /login as browsers reach it: where Kratos sends them back once signed in. */
  loginUrl: URL;
}

/** Set on the return_to we give Kratos: back from Kratos without a session means its cookie never reaches us. */
const RETURNED = 'returned';
const LoginQuery = z.object({ login_challenge: Challenge, kratos: z.literal(RETURNED).optional().catch(undefined) });

/**
 * urls.login with IDENTITY=kratos (kratos/README.md, "Sign-in with Kratos").
 * Kratos's session decides who signs in: with one, we accept Hydra's login
 * challenge for the Kratos identity id; without one, the browser goes to
 * Kratos's login flow (rendered by /kratos/login), which returns it here.
 * No Hydra "remember": Kratos's session is the one memory of a sign-in, so
 * ending it (or Kratos revoking it) counts at the next authorization.
 */
export function kratosLoginHandler(ctx: PageContext, { kratos, loginUrl }: KratosLoginOptions): express.Router {
  const { hydra, log, page } = ctx;
  const router = express.Router();

  router.get('/login', page(async (req, res) => {
    const query = parse(LoginQuery, req.query, 'login_challenge');
    const challenge = query.login_challenge;
    const request = await hydra.getLoginRequest(challenge);
    if (request.skip) {
      // Hydra insists on the subject it remembers; it must still be a Kratos identity.
      if (!(await kratos.admin.getIdentity(request.subject))) {
        const { redirect_to } = await hydra.rejectLoginRequest(challenge, ACCOUNT_GONE);
        log.info('remembered sign-in refused: identity removed from Kratos', { sub: request.subject });
        return res.redirect(302, redirect_to);
      }
      const { redirect_to } = await hydra.acceptLoginRequest(challenge, { subject: request.subject });
      return res.redirect(302, redirect_to);
    }
    const session = await kratos.public.whoami(req.headers.cookie);
    if (session) {
      const { redirect_to } = await hydra.acceptLoginRequest(challenge, { subject: session.identity.id, remember: false });
      log.info('signed in with Kratos', { sub: session.identity.id, client_id: request.client?.client_id });
      return res.redirect(302, redirect_to);
    }
    if (query.kratos === RETURNED) {
      // Kratos only sends the browser back after a sign-in: its session cookie is not reaching this server.
      log.error('back from Kratos without a Kratos session: its session cookie does not reach this server (cookie domain?)', { client_id: request.client?.client_id });
      return send(res, 502, errorPage({ title: 'Sign-in could not continue', message: 'The account service signed you in, but this server cannot see that sign-in. The operator needs to serve both on one cookie domain.' }));
    }
    const back = new URL(loginUrl);
    back.searchParams.set('login_challenge', challenge);
    back.searchParams.set('kratos', RETURNED);
    res.redirect(303, kratos.public.browserFlowUrl('login', back.href).href);
  }));

  return router;
}

/** The consent page's account check with Kratos: the subject is a Kratos identity, its email a trait. */
export function kratosAccounts(kratos: Kratos) {
  return async (sub: string): Promise<{ email?: string } | undefined> => {
    const identity = await kratos.admin.getIdentity(sub);
    if (!identity || identity.state === 'inactive') return undefined;
    return typeof identity.traits.email === 'string' ? { email: identity.traits.email } : {};
  };
}
