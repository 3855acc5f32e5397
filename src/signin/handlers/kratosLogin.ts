import express from 'express';
import { z } from 'zod';
import type { Kratos, Session } from '../../kratos/index.js';
import { parse, send } from '../../web/pageKit.js';
import { errorPage } from '../../web/layout.js';
import { ACCOUNT_GONE, Challenge, type PageContext, type SignInAttemptOutcome } from './context.js';

export interface KratosLoginOptions {
  kratos: Kratos;
  /** Our /login as browsers reach it: where Kratos sends them back once signed in. */
  loginUrl: URL;
  /** Told of every identity that signs in (before Hydra hears of it): the identity sweep watches these. */
  onSignedIn?: (sub: string) => Promise<void>;
  now?: () => number;
}

/** Set on the return_to we give Kratos: back from Kratos without a session means its cookie never reaches us. */
const RETURNED = 'returned';
const LoginQuery = z.object({ login_challenge: Challenge, kratos: z.literal(RETURNED).optional().catch(undefined) });

/**
 * urls.login with IDENTITY=kratos (kratos/README.md, "Sign-in with Kratos").
 * Kratos's session decides who signs in: with one, we accept Hydra's login
 * challenge for the Kratos identity id; without one, the browser goes to
 * Kratos's login flow (rendered by /kratos/login), which returns it here.
 * Hydra remembers the sign-in for as long as Kratos's session lasts, so that
 * OIDC logout reaches our logout page (Hydra skips it without a session of its
 * own) and ends both; but a remembered sign-in counts only while Kratos's
 * session of the same identity does (ended elsewhere, it asks again).
 */
export function kratosLoginHandler(ctx: PageContext, options: KratosLoginOptions): express.Router {
  const { kratos, loginUrl } = options;
  const { hydra, log, page } = ctx;
  const router = express.Router();
  const now = options.now ?? Date.now;
  const returnUrl = (challenge: string) => {
    const back = new URL(loginUrl);
    back.searchParams.set('login_challenge', challenge);
    back.searchParams.set('kratos', RETURNED);
    return back;
  };

  router.get('/login', page(async (req, res) => {
    const query = parse(LoginQuery, req.query, 'login_challenge');
    // Back from Kratos: this request ends a sign-in form submitted there, and is counted however it ends.
    const returned = query.kratos === RETURNED;
    let counted: SignInAttemptOutcome = 'error';
    try {
      const challenge = query.login_challenge;
      const request = await hydra.getLoginRequest(challenge);
      // Hydra insists on the subject it remembers; it must still be a Kratos identity.
      if (request.skip && !(await kratos.admin.getIdentity(request.subject))) {
        const { redirect_to } = await hydra.rejectLoginRequest(challenge, ACCOUNT_GONE);
        log.info('remembered sign-in refused: identity removed from Kratos', { sub: request.subject });
        return res.redirect(302, redirect_to);
      }
      const session = await kratos.public.whoami(req.headers.cookie);
      const demand = requiredFreshness(request.request_url);
      // prompt=login: the password on this very request (on the way back, "just now" is what Kratos's refresh gives).
      const fresh =
        session !== undefined &&
        (demand === undefined ||
          (demand.promptLogin ? query.kratos === RETURNED && authenticatedWithin(session, JUST_NOW_SECONDS, now()) : authenticatedWithin(session, demand.maxAge, now())));
      if (session && !fresh && query.kratos !== RETURNED) {
        // prompt=login or max_age: the password again, even though Kratos has a session (OIDC Core §3.1.2.1).
        return res.redirect(303, kratos.public.browserFlowUrl('login', returnUrl(challenge).href, { refresh: true }).href);
      }
      if (session && fresh) {
        const sub = session.identity.id;
        if (request.skip && sub !== request.subject) {
          // Hydra remembers another person in this browser than Kratos now has: never swap them silently.
          const { redirect_to } = await hydra.rejectLoginRequest(challenge, OTHER_ACCOUNT);
          log.info('remembered sign-in refused: Kratos has another identity in this browser', { sub: request.subject, kratos_sub: sub });
          return res.redirect(302, redirect_to);
        }
        await options.onSignedIn?.(sub);
        const { redirect_to } = await hydra.acceptLoginRequest(challenge, { subject: sub, remember: true, remember_for: secondsLeft(session, now()) });
        counted = 'ok';
        log.info('signed in with Kratos', { sub, client_id: request.client?.client_id });
        ctx.audit?.({ kind: 'sign_in_ok', outcome: 'ok', sub, ...(request.client?.client_id ? { clientId: request.client.client_id } : {}), detail: 'kratos' });
        return res.redirect(302, redirect_to);
      }
      if (session && query.kratos === RETURNED) {
        // Back from a refreshed sign-in that is still too old: the clocks disagree; stop rather than loop.
        log.error('back from Kratos with a sign-in older than the client allows (clock skew between Kratos and this server?)', { client_id: request.client?.client_id });
        return send(res, 502, errorPage({ title: 'Sign-in could not continue', message: 'The account service did not confirm a recent sign-in. Try again in a moment.' }));
      }
      if (query.kratos === RETURNED) {
        // Kratos only sends the browser back after a sign-in: its session cookie is not reaching this server.
        log.error('back from Kratos without a Kratos session: its session cookie does not reach this server (cookie domain?)', { client_id: request.client?.client_id });
        return send(res, 502, errorPage({ title: 'Sign-in could not continue', message: 'The account service signed you in, but this server cannot see that sign-in. The operator needs to serve both on one cookie domain.' }));
      }
      res.redirect(303, kratos.public.browserFlowUrl('login', returnUrl(challenge).href).href);
    } finally {
      if (returned) ctx.onSignInAttempt?.('kratos', counted);
    }
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

/** A fresh sign-in the client demands: prompt=login (the password on this request), or its max_age in seconds; undefined when any session will do. */
export function requiredFreshness(requestUrl: string | undefined): { promptLogin: true } | { promptLogin: false; maxAge: number } | undefined {
  if (!requestUrl || !URL.canParse(requestUrl)) return undefined;
  const params = new URL(requestUrl).searchParams;
  if ((params.get('prompt') ?? '').split(' ').includes('login')) return { promptLogin: true };
  const maxAge = params.get('max_age');
  return maxAge !== null && /^\d{1,9}$/.test(maxAge) ? { promptLogin: false, maxAge: Number(maxAge) } : undefined;
}

/** "Just now": the round trip from Kratos's refreshed sign-in back here, with room for a slow request. */
const JUST_NOW_SECONDS = 120;

/** Hydra's memory of the sign-in ends with Kratos's session (at least a second: 0 would mean "forever" to Hydra). */
function secondsLeft(session: Session, now: number): number {
  const end = session.expires_at ? Date.parse(session.expires_at) : NaN;
  return Number.isFinite(end) ? Math.max(1, Math.floor((end - now) / 1000)) : 1;
}

const OTHER_ACCOUNT = {
  error: 'access_denied',
  error_description: 'This browser is now signed in to a different account. Sign out, then try again.',
  status_code: 403,
};

function authenticatedWithin(session: Session, seconds: number, now: number): boolean {
  const at = session.authenticated_at ? Date.parse(session.authenticated_at) : NaN;
  return Number.isFinite(at) && now - at <= Math.max(seconds, 0) * 1000 + CLOCK_SKEW_MS;
}

/** Kratos and this server may disagree on the time by a little. */
const CLOCK_SKEW_MS = 5000;
