import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import type { ConnectLinks } from '../connections/connectLink.js';
import { ConnectError, type ConnectFlow } from '../connections/connectFlow.js';
import type { Logger } from '../log/logger.js';
import { connectDonePage, connectPage } from './connectionPages.js';
import { clearCookie, type CookieOptions, readCookie, setCookie } from '../web/cookies.js';
import type { Csrf } from '../web/csrf.js';
import { BadRequest, parse, send } from '../web/pageKit.js';
import { messagePage } from '../web/layout.js';
import { accountSignInPage } from './accountPages.js';
import { CsrfField } from '../web/csrf.js';

export interface ConnectionRoutesOptions {
  flow: ConnectFlow;
  links: ConnectLinks;
  /** The signed-in person of the account session (AccountSession, src/account/routes/context.ts). */
  sessionSub(req: Request): Promise<string | undefined>;
  csrf: Csrf;
  cookie: CookieOptions;
  /** The account router's page wrapper (errors → pages). */
  page: (handler: (req: Request, res: Response) => Promise<void>) => express.RequestHandler;
  /** The account sign-in form's CSRF binding. */
  signInBinding: string;
  log: Logger;
}

const ProviderName = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/);
const ConnectForm = z.object({ csrf: CsrfField, e: z.string().max(80).optional() });
const DisconnectForm = z.object({ csrf: CsrfField });
const connectBinding = (sub: string, provider: string) => `connect|${provider}|${sub}`;
const bindingCookie = (provider: string) => `hmcp_connect_${provider}`;
/** Long enough for a sign-in and consent at the provider, no longer than the attempt lives. */
const ATTEMPT_SECONDS = 10 * 60;

/**
 * Connected accounts on /account (issue 14): connect (confirm page → the
 * provider's authorization-code flow), the callback, disconnect. Every form
 * is CSRF-bound to the signed-in person and the provider.
 */
export function addConnectionRoutes(router: express.Router, o: ConnectionRoutesOptions): void {
  const form = express.urlencoded({ extended: false, limit: '4kb' });
  const providerOf = (req: Request) => {
    const p = ProviderName.safeParse(req.params.provider);
    if (!p.success || !o.flow.has(p.data)) throw new ConnectError('unknown_provider', 'No such service is configured here.', 404);
    return p.data;
  };
  const refused = (res: Response, e: ConnectError) => send(res, e.status, messagePage({ title: 'Not connected', message: e.message }));
  // A ConnectError anywhere in a route (an unknown provider in the path included) is its own page and status, never a 500.
  const page = (handler: (req: Request, res: Response) => Promise<void>) =>
    o.page(async (req, res) => {
      try {
        await handler(req, res);
      } catch (e) {
        if (e instanceof ConnectError) return refused(res, e);
        throw e;
      }
    });

  // The link a tool's elicitation points at, and the account page's Connect button: a page to confirm.
  router.get('/account/connections/:provider/connect', page(async (req, res) => {
    const provider = providerOf(req);
    const e = typeof req.query.e === 'string' ? req.query.e : undefined;
    const sub = await o.sessionSub(req);
    if (!sub) {
      // Sign in here, then come back to this very link.
      const next = `/account/connections/${provider}/connect${e ? `?e=${encodeURIComponent(e)}` : ''}`;
      return send(res, 200, accountSignInPage({ csrf: o.csrf.tokenFor(req, res, o.signInBinding), next, intro: `Sign in to connect your ${o.flow.displayName(provider)} account.` }));
    }
    if (e !== undefined && !o.links.verify(e, sub, provider)) {
      return send(res, 403, messagePage({ title: 'This link is not for you', message: 'This link was made for another account, or it is damaged. Nothing was connected. Ask the app again, signed in as yourself.' }));
    }
    send(res, 200, connectPage({ csrf: o.csrf.tokenFor(req, res, connectBinding(sub, provider)), provider, displayName: o.flow.displayName(provider), fromApp: e !== undefined, e }));
  }));

  router.post('/account/connections/:provider/connect', form, page(async (req, res) => {
    const provider = providerOf(req);
    const input = parse(ConnectForm, req.body, 'form');
    const sub = await o.sessionSub(req);
    if (!sub) throw new BadRequest('Your account session has ended. Sign in again.');
    o.csrf.require(req, connectBinding(sub, provider), input.csrf);
    const elicitationId = input.e ? o.links.verify(input.e, sub, provider) : undefined;
    if (input.e && !elicitationId) throw new BadRequest('This link was made for another account, or it is damaged.');
    const { authorizationUrl, browserBinding } = await o.flow.begin(sub, provider, elicitationId);
    setCookie(res, bindingCookie(provider), browserBinding, { ...o.cookie, maxAgeSeconds: ATTEMPT_SECONDS });
    res.redirect(303, authorizationUrl.href);
  }));

  // The provider sends the browser back here (the redirect URI registered there).
  router.get('/account/connections/:provider/callback', page(async (req, res) => {
    const provider = providerOf(req);
    const callbackUrl = new URL(req.originalUrl, 'http://callback.invalid');
    const browserBinding = readCookie(req, bindingCookie(provider));
    clearCookie(res, bindingCookie(provider), o.cookie);
    await o.flow.finish({ provider, callbackUrl, browserBinding, sub: await o.sessionSub(req) });
    send(res, 200, connectDonePage({ displayName: o.flow.displayName(provider) }));
  }));

  router.post('/account/connections/:provider/disconnect', form, page(async (req, res) => {
    const provider = providerOf(req);
    const input = parse(DisconnectForm, req.body, 'form');
    const sub = await o.sessionSub(req);
    if (!sub) throw new BadRequest('Your account session has ended. Sign in again.');
    o.csrf.require(req, connectBinding(sub, provider), input.csrf);
    const { revoked } = await o.flow.disconnect(sub, provider);
    res.redirect(303, `/account?done=${revoked ? 'disconnected' : 'disconnected-not-revoked'}`);
  }));
}

/** The CSRF token of a connection's Connect/Disconnect form on the account page. */
export const connectionFormToken = (csrf: Csrf, req: Request, res: Response, sub: string, provider: string) => csrf.tokenFor(req, res, connectBinding(sub, provider));
