import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { type ConsentRequest, type HydraAdmin, HydraError } from '../auth/hydraAdmin.js';
import type { ResourceSet } from '../auth/resource.js';
import { describeScope, OFFLINE_SCOPES } from '../auth/scopes.js';
import type { Logger } from '../log/logger.js';
import { consentPage, errorPage, loginPage, messagePage, STYLESHEET, STYLESHEET_PATH } from './pages.js';
import type { UserStore } from './userStore.js';

export interface LoginRouterOptions {
  hydra: HydraAdmin;
  users: UserStore;
  /** This server's resource URLs, granted as token audience at consent (RFC 8707). */
  resources: ResourceSet;
  /** Hydra's public URL as browsers see it (its issuer): our forms' submissions are redirected there. */
  hydraPublicUrl: URL;
  log: Logger;
}

// Hydra's challenges are opaque strings; bound their size before they reach Hydra.
const Challenge = z.string().min(1).max(2048);
const LoginQuery = z.object({ login_challenge: Challenge });
const ConsentQuery = z.object({ consent_challenge: Challenge });
const LogoutQuery = z.object({ logout_challenge: Challenge });
const LoginForm = z.object({ challenge: Challenge, email: z.string().max(320), password: z.string().max(1024) });
const ConsentForm = z.object({
  challenge: Challenge,
  decision: z.enum(['allow', 'deny']),
  // One checked box arrives as a string, several as an array.
  scope: z.union([z.string(), z.array(z.string())]).optional(),
});

const WRONG_CREDENTIALS = 'Wrong email or password.';

/**
 * The identity side Hydra delegates to (urls.login / urls.consent /
 * urls.logout): our pages, accepted or rejected through Hydra's admin API.
 */
export function createLoginRouter(options: LoginRouterOptions): express.Router {
  const { hydra, users, log } = options;
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '16kb' });
  const hydraOrigin = options.hydraPublicUrl.origin;
  const page = pageHandler(log);

  router.get(STYLESHEET_PATH, (_req, res) => {
    res.type('text/css').set('Cache-Control', 'public, max-age=3600').send(STYLESHEET);
  });

  router.get('/login', page(async (req, res) => {
    const { login_challenge: challenge } = parse(LoginQuery, req.query, 'login_challenge');
    const request = await hydra.getLoginRequest(challenge);
    if (request.skip) {
      // Hydra already knows this browser's user (remembered session): no form.
      const { redirect_to } = await hydra.acceptLoginRequest(challenge, { subject: request.subject });
      return res.redirect(302, redirect_to);
    }
    send(res, 200, loginPage({ challenge, clientName: clientName(request.client) }), [hydraOrigin]);
  }));

  router.post('/login', form, page(async (req, res) => {
    const { challenge, email, password } = parse(LoginForm, req.body, 'sign-in form');
    const request = await hydra.getLoginRequest(challenge);
    const user = await users.verify(email, password);
    if (!user) {
      log.info('sign-in failed', { client_id: request.client?.client_id });
      return send(res, 401, loginPage({ challenge, clientName: clientName(request.client), email, error: WRONG_CREDENTIALS }), [hydraOrigin]);
    }
    const { redirect_to } = await hydra.acceptLoginRequest(challenge, { subject: user.id, remember: false });
    log.info('signed in', { sub: user.id, client_id: request.client?.client_id });
    res.redirect(302, redirect_to);
  }));

  router.get('/consent', page(async (req, res) => {
    const { consent_challenge: challenge } = parse(ConsentQuery, req.query, 'consent_challenge');
    const request = await hydra.getConsentRequest(challenge);
    if (request.skip) {
      // Consent remembered earlier: grant again what was asked, under the same policy.
      const { redirect_to } = await hydra.acceptConsentRequest(challenge, grantFor(request, request.requested_scope ?? [], options.resources));
      return res.redirect(302, redirect_to);
    }
    const user = request.subject ? await users.findById(request.subject) : undefined;
    const html = consentPage({
      challenge,
      clientName: clientName(request.client),
      scopes: (request.requested_scope ?? []).map((name) => ({ name, description: describeScope(name) })),
      resources: options.resources.audienceFor(request.request_url),
      userEmail: user?.email,
    });
    send(res, 200, html, [hydraOrigin, ...redirectOrigins(request)]);
  }));

  router.post('/consent', form, page(async (req, res) => {
    const { challenge, decision, scope } = parse(ConsentForm, req.body, 'consent form');
    const request = await hydra.getConsentRequest(challenge);
    if (decision === 'deny') {
      const { redirect_to } = await hydra.rejectConsentRequest(challenge, {
        error: 'access_denied',
        error_description: 'The user denied access',
        status_code: 403,
      });
      log.info('consent denied', { sub: request.subject, client_id: request.client?.client_id });
      return res.redirect(302, redirect_to);
    }
    const checked = scope === undefined ? [] : Array.isArray(scope) ? scope : [scope];
    const grant = grantFor(request, checked, options.resources);
    const { redirect_to } = await hydra.acceptConsentRequest(challenge, grant);
    log.info('consent granted', { sub: request.subject, client_id: request.client?.client_id, scopes: grant.grant_scope });
    res.redirect(302, redirect_to);
  }));

  router.get('/logout', page(async (req, res) => {
    const { logout_challenge: challenge } = parse(LogoutQuery, req.query, 'logout_challenge');
    await hydra.getLogoutRequest(challenge);
    const { redirect_to } = await hydra.acceptLogoutRequest(challenge);
    res.redirect(302, redirect_to);
  }));

  // urls.error: Hydra sends the browser here when a flow cannot continue.
  router.get('/oauth-error', (req, res) => {
    const error = typeof req.query.error === 'string' ? req.query.error : 'unknown_error';
    const description = typeof req.query.error_description === 'string' ? req.query.error_description : '';
    send(res, 400, errorPage({ title: 'Sign-in could not continue', message: `${error}${description ? `: ${description}` : ''}` }));
  });

  router.get('/logged-out', (_req, res) => send(res, 200, messagePage({ title: 'Signed out', message: 'You have been signed out.' })));

  return router;
}

/**
 * What consent grants: the checked scopes that were actually requested (a
 * forged form field cannot widen the grant), and this server as audience.
 * Policy: clients allowed the refresh_token grant also get offline_access, so
 * MCP clients that forget to ask for it do not log their users out hourly.
 */
function grantFor(request: ConsentRequest, checked: string[], resources: ResourceSet) {
  const requested = request.requested_scope ?? [];
  const scopes = new Set(checked.filter((s) => requested.includes(s)));
  const clientScopes = (request.client?.scope ?? '').split(' ');
  if ((request.client?.grant_types ?? []).includes('refresh_token') && !OFFLINE_SCOPES.some((s) => scopes.has(s))) {
    const offline = OFFLINE_SCOPES.find((s) => clientScopes.includes(s));
    if (offline) scopes.add(offline);
  }
  return {
    grant_scope: [...scopes],
    // Hydra ignores RFC 8707 `resource`; consent is where it becomes `aud`.
    grant_access_token_audience: resources.audienceFor(request.request_url),
    remember: false,
  };
}

function clientName(client: { client_name?: string; client_id?: string } | undefined | null): string {
  return client?.client_name || client?.client_id || 'An application';
}

/** Origins of the client's redirect URIs: where the browser goes after consent. */
function redirectOrigins(request: ConsentRequest): string[] {
  return (request.client?.redirect_uris ?? []).flatMap((u) => {
    try {
      return [new URL(u).origin];
    } catch {
      return [];
    }
  });
}

class BadRequest extends Error {}

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new BadRequest(`The ${what} is missing or malformed.`);
  return r.data;
}

/**
 * Security headers on every page. form-action lists where a submission may
 * lead, redirects included (CSP3 §6.3.1): ourselves, Hydra, and after consent
 * the client's redirect URI.
 */
function send(res: Response, status: number, html: string, formTargets: string[] = []): void {
  const formAction = ["'self'", ...new Set(formTargets)].join(' ');
  res
    .status(status)
    .set({
      'Content-Security-Policy': `default-src 'none'; style-src 'self'; img-src 'self'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Cache-Control': 'no-store',
    })
    .type('html')
    .send(html);
}

/** Wrap page handlers so Hydra and input failures become readable pages, never stack traces. */
const pageHandler = (log: Logger) => (handler: (req: Request, res: Response) => Promise<void>) => {
  return (req: Request, res: Response, _next: NextFunction) => {
    handler(req, res).catch((e: unknown) => {
      if (e instanceof BadRequest) return send(res, 400, errorPage({ title: 'Bad request', message: e.message }));
      if (e instanceof HydraError && !e.unavailable) {
        return send(res, 410, errorPage({ title: 'This sign-in request is no longer valid', message: 'It has expired or was already used. Start again from your app.' }));
      }
      if (e instanceof HydraError) {
        res.set('Retry-After', '5');
        return send(res, 503, errorPage({ title: 'Sign-in is unavailable', message: 'The authorization server cannot be reached. Try again in a moment.' }));
      }
      log.error('page failed', { path: req.path, error: e });
      send(res, 500, errorPage({ title: 'Something went wrong', message: 'The error was logged.' }));
    });
  };
};
