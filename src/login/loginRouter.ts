import express from 'express';
import { z } from 'zod';
import type { ConsentRequest, HydraAdmin } from '../hydra/index.js';
import type { ResourceSet } from '../auth/resource.js';
import { describeScope, isRequiredScope, OFFLINE_SCOPES } from '../auth/scopes.js';
import type { Logger } from '../log/logger.js';
import type { Signer } from './cookies.js';
import { Csrf } from './csrf.js';
import { pageHandler, parse, send } from './pageKit.js';
import { consentPage, errorPage, loginPage, logoutPage, messagePage, STYLESHEET, STYLESHEET_PATH } from './pages.js';
import { CsrfField, createSignIn, SignInFields } from './signIn.js';
import { LoginThrottle } from './throttle.js';
import type { UserStore } from './userStore.js';

export interface LoginRouterOptions {
  hydra: HydraAdmin;
  users: UserStore;
  /** This server's resource URLs, granted as token audience at consent (RFC 8707). */
  resources: ResourceSet;
  /** Signs CSRF tokens; the same secret on every replica. */
  signer: Signer;
  /** Mark cookies Secure (the public URL is https). */
  secureCookies: boolean;
  /** First-party clients whose users are not asked for consent. */
  trustedClientIds: readonly string[];
  log: Logger;
  /** Failed-sign-in policy; defaults to LoginThrottle's. */
  throttle?: LoginThrottle;
  /** How to wait out a throttle delay (tests pass a recorder). */
  wait?: (ms: number) => Promise<unknown>;
}

/** How long "keep me signed in" and "remember this decision" last. */
export const REMEMBER_SECONDS = 30 * 24 * 3600;

// Hydra's challenges are opaque strings; bound their size before they reach Hydra.
const Challenge = z.string().min(1).max(2048);
const LoginQuery = z.object({ login_challenge: Challenge });
const ConsentQuery = z.object({ consent_challenge: Challenge });
const LogoutQuery = z.object({ logout_challenge: Challenge });
const LoginForm = SignInFields.extend({ challenge: Challenge, remember: z.literal('yes').optional() });
const ConsentForm = z.object({
  challenge: Challenge,
  csrf: CsrfField,
  decision: z.enum(['allow', 'deny']),
  // One checked box arrives as a string, several as an array.
  scope: z.union([z.string().max(200), z.array(z.string().max(200)).max(64)]).optional(),
  remember: z.literal('yes').optional(),
});
const LogoutForm = z.object({ challenge: Challenge, csrf: CsrfField, decision: z.enum(['yes', 'no']) });
// Hydra's redirect to urls.error (RFC 6749 §4.1.2.1 error fields); shown escaped, bounded.
const OAuthErrorQuery = z.object({
  error: z.string().min(1).max(100).catch('unknown_error'),
  error_description: z.string().max(500).optional().catch(undefined),
});

/**
 * The identity side Hydra delegates to (urls.login / urls.consent /
 * urls.logout): our pages, accepted or rejected through Hydra's admin API.
 */
/** Hydra still holds a sign-in for a subject whose account was removed. */
const ACCOUNT_GONE = { error: 'access_denied', error_description: 'This account no longer exists', status_code: 403 };

export function createLoginRouter(options: LoginRouterOptions): express.Router {
  const { hydra, users, log, resources } = options;
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '16kb' });
  const page = pageHandler(log);
  const csrf = new Csrf(options.signer, { secure: options.secureCookies });
  const signIn = createSignIn({
    users,
    csrf,
    log,
    throttle: options.throttle ?? new LoginThrottle(),
    ...(options.wait ? { wait: options.wait } : {}),
  });
  const trusted = new Set(options.trustedClientIds);
  const refuseGone = async (res: express.Response, challenge: string, sub: string | undefined) => {
    const { redirect_to } = await hydra.rejectConsentRequest(challenge, ACCOUNT_GONE);
    log.info('consent refused: account removed', { sub });
    res.redirect(302, redirect_to);
  };
  const checkCsrf = csrf.require.bind(csrf);

  router.get(STYLESHEET_PATH, (_req, res) => {
    res.type('text/css').set('Cache-Control', 'public, max-age=3600').send(STYLESHEET);
  });

  router.get('/login', page(async (req, res) => {
    const { login_challenge: challenge } = parse(LoginQuery, req.query, 'login_challenge');
    const request = await hydra.getLoginRequest(challenge);
    if (request.skip) {
      // Hydra remembers this browser's sign-in ("keep me signed in"): no form,
      // unless the account was removed since (its sessions may outlive the row by a moment).
      if (!(await users.findById(request.subject))) {
        const { redirect_to } = await hydra.rejectLoginRequest(challenge, ACCOUNT_GONE);
        log.info('remembered sign-in refused: account removed', { sub: request.subject });
        return res.redirect(302, redirect_to);
      }
      const { redirect_to } = await hydra.acceptLoginRequest(challenge, { subject: request.subject });
      return res.redirect(302, redirect_to);
    }
    const html = loginPage({ challenge, csrf: csrf.tokenFor(req, res, challenge), clientName: clientName(request.client) });
    send(res, 200, html);
  }));

  router.post('/login', form, page(async (req, res) => {
    const input = signIn.readForm(req, LoginForm, (form) => form.challenge);
    const request = await hydra.getLoginRequest(input.challenge);
    const outcome = await signIn.attempt(req, res, input, { client_id: request.client?.client_id });
    if (!outcome.ok) {
      const html = loginPage({ challenge: input.challenge, csrf: input.csrf, clientName: clientName(request.client), email: input.email, error: outcome.error });
      return send(res, outcome.status, html);
    }
    const { user } = outcome;
    const remember = input.remember === 'yes';
    const { redirect_to } = await hydra.acceptLoginRequest(input.challenge, {
      subject: user.id,
      remember,
      ...(remember ? { remember_for: REMEMBER_SECONDS } : {}),
    });
    log.info('signed in', { sub: user.id, client_id: request.client?.client_id, remember });
    res.redirect(302, redirect_to);
  }));

  router.get('/consent', page(async (req, res) => {
    const { consent_challenge: challenge } = parse(ConsentQuery, req.query, 'consent_challenge');
    const request = await hydra.getConsentRequest(challenge);
    // Remembered consent (Hydra's skip) and first-party clients: no question asked.
    const clientId = request.client?.client_id ?? '';
    // A sign-in accepted just before its account was removed must not become a grant.
    if (!(request.subject && (await users.findById(request.subject)))) return refuseGone(res, challenge, request.subject);
    if (request.skip || trusted.has(clientId)) {
      const grant = grantFor(request, offeredScopes(request), resources, false);
      const { redirect_to } = await hydra.acceptConsentRequest(challenge, grant);
      log.info('consent granted without asking', { sub: request.subject, client_id: clientId, reason: request.skip ? 'remembered' : 'trusted client' });
      return res.redirect(302, redirect_to);
    }
    const user = await users.findById(request.subject!);
    const html = consentPage({
      challenge,
      csrf: csrf.tokenFor(req, res, challenge),
      client: {
        name: clientName(request.client),
        uri: httpsUrl(request.client?.client_uri),
        logoUri: httpsUrl(request.client?.logo_uri),
        documentHost: documentHost(request.client),
      },
      scopes: offeredScopes(request).map((name) => ({ name, description: describe(name), required: isRequiredScope(name) })),
      resources: resources.audienceFor(request.request_url),
      userEmail: user?.email,
    });
    send(res, 200, html);
  }));

  router.post('/consent', form, page(async (req, res) => {
    const input = parse(ConsentForm, req.body, 'consent form');
    checkCsrf(req, input.challenge, input.csrf);
    const request = await hydra.getConsentRequest(input.challenge);
    if (input.decision === 'deny') {
      const { redirect_to } = await hydra.rejectConsentRequest(input.challenge, {
        error: 'access_denied',
        error_description: 'The user denied access',
        status_code: 403,
      });
      log.info('consent denied', { sub: request.subject, client_id: request.client?.client_id });
      return res.redirect(302, redirect_to);
    }
    if (!(request.subject && (await users.findById(request.subject)))) return refuseGone(res, input.challenge, request.subject);
    const checked = input.scope === undefined ? [] : Array.isArray(input.scope) ? input.scope : [input.scope];
    const grant = grantFor(request, checked, resources, input.remember === 'yes');
    const { redirect_to } = await hydra.acceptConsentRequest(input.challenge, grant);
    log.info('consent granted', { sub: request.subject, client_id: request.client?.client_id, scopes: grant.grant_scope, remember: grant.remember });
    res.redirect(302, redirect_to);
  }));

  // Logout asks first: a link alone must not sign anyone out (OIDC RP-Initiated Logout §3).
  router.get('/logout', page(async (req, res) => {
    const { logout_challenge: challenge } = parse(LogoutQuery, req.query, 'logout_challenge');
    const request = await hydra.getLogoutRequest(challenge);
    const html = logoutPage({ challenge, csrf: csrf.tokenFor(req, res, challenge), clientName: request.client?.client_name || request.client?.client_id });
    send(res, 200, html);
  }));

  router.post('/logout', form, page(async (req, res) => {
    const input = parse(LogoutForm, req.body, 'sign-out form');
    checkCsrf(req, input.challenge, input.csrf);
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

  // urls.error: Hydra sends the browser here when a flow cannot continue.
  router.get('/oauth-error', (req, res) => {
    const q = OAuthErrorQuery.safeParse(req.query);
    const { error, error_description: description } = q.success ? q.data : { error: 'unknown_error', error_description: undefined };
    send(res, 400, errorPage({ title: 'Sign-in could not continue', message: `${error}${description ? `: ${description}` : ''}` }));
  });

  return router;
}

/**
 * The scopes the consent page offers: those requested, plus our refresh-token
 * policy. MCP clients often forget to ask for offline_access, and their users
 * are then signed out every time the access token expires (an hour). So a
 * client allowed the refresh_token grant, and registered for an offline scope,
 * is offered it even unasked. It is shown like any other scope, checked by
 * default, so the person sees it and can untick it.
 */
function offeredScopes(request: ConsentRequest): string[] {
  const requested = [...new Set(request.requested_scope ?? [])];
  const client = request.client;
  if (!(client?.grant_types ?? []).includes('refresh_token') || requested.some((s) => OFFLINE_SCOPES.includes(s))) return requested;
  const registered = (client?.scope ?? '').split(' ');
  const offline = OFFLINE_SCOPES.find((s) => registered.includes(s));
  return offline ? [...requested, offline] : requested;
}

/**
 * What consent grants: the checked scopes among those offered (a forged form
 * field cannot widen the grant), required ones always, and this server as
 * audience.
 */
function grantFor(request: ConsentRequest, checked: string[], resources: ResourceSet, remember: boolean) {
  const scopes = offeredScopes(request).filter((s) => checked.includes(s) || isRequiredScope(s));
  return {
    grant_scope: scopes,
    // Hydra ignores the RFC 8707 `resource` parameter; consent is where it becomes `aud`.
    grant_access_token_audience: resources.audienceFor(request.request_url),
    remember,
    ...(remember ? { remember_for: REMEMBER_SECONDS } : {}),
  };
}

/** Scope wording; Hydra's `offline` alias reads like offline_access. */
function describe(scope: string): string {
  return describeScope(OFFLINE_SCOPES.includes(scope) ? 'offline_access' : scope);
}

/** The host of a client mirrored from its metadata document (marked by auth/cimd), else undefined. */
function documentHost(client: ConsentRequest['client']): string | undefined {
  if (client?.metadata?.cimd !== true || !URL.canParse(client.client_id)) return undefined;
  return new URL(client.client_id).host;
}

function clientName(client: { client_name?: string; client_id?: string } | undefined | null): string {
  return client?.client_name || client?.client_id || 'An application';
}

/** Only https URLs are shown as a client's site or logo (never javascript: or plain http). */
function httpsUrl(value: string | undefined): string | undefined {
  if (!value) return undefined;
  try {
    return new URL(value).protocol === 'https:' ? value : undefined;
  } catch {
    return undefined;
  }
}
