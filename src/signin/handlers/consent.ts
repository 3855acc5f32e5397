import express from 'express';
import { z } from 'zod';
import { mirroredUrl } from '../../auth/cimd/cimdClients.js';
import type { ResourceSet } from '../../auth/resource.js';
import { describeScope, isRequiredScope, OFFLINE_SCOPES } from '../../auth/scopes.js';
import type { ConsentRequest } from '../../hydra/index.js';
import { parse, send } from '../../web/pageKit.js';
import { errorPage } from '../../web/layout.js';
import { consentPage } from '../pages.js';
import { CsrfField } from '../../web/csrf.js';
import { ACCOUNT_GONE, Challenge, clientName, type PageContext, REMEMBER_SECONDS } from './context.js';

export interface ConsentHandlerOptions {
  /** This server's resource URLs, granted as token audience at consent (RFC 8707). */
  resources: ResourceSet;
  /** First-party clients whose users are not asked for consent. */
  trustedClientIds: readonly string[];
  /**
   * The signed-in subject's account, or undefined when it no longer exists.
   * Default: our users table; with IDENTITY=kratos, the Kratos identity.
   */
  findAccount?: (sub: string) => Promise<{ email?: string } | undefined>;
  /**
   * Why this authorization must not go on, or undefined (a metadata document
   * client whose current document no longer lists the redirect URI: a browser
   * may have gone to Hydra directly with it). Asked before any grant.
   */
  checkClient?: (request: ConsentRequest) => Promise<string | undefined>;
}

const ConsentQuery = z.object({ consent_challenge: Challenge });
const ConsentForm = z.object({
  challenge: Challenge,
  csrf: CsrfField,
  decision: z.enum(['allow', 'deny']),
  // One checked box arrives as a string, several as an array.
  scope: z.union([z.string().max(200), z.array(z.string().max(200)).max(64)]).optional(),
  remember: z.literal('yes').optional(),
});

/** urls.consent: the person allows or denies the scopes a client asks for; we tell Hydra. */
export function consentHandler(ctx: PageContext, options: ConsentHandlerOptions): express.Router {
  const { hydra, users, log, csrf, page, form } = ctx;
  const { resources } = options;
  const router = express.Router();
  const trusted = new Set(options.trustedClientIds);
  const findAccount = options.findAccount ?? ((sub: string) => users.findById(sub));
  /** Refused here, on our page: Hydra's refusal would send the browser to the very redirect URI in question. */
  const refusedClient = async (res: express.Response, request: ConsentRequest): Promise<boolean> => {
    const why = await options.checkClient?.(request);
    if (!why) return false;
    log.warn('consent refused: client check failed', { sub: request.subject, client_id: request.client?.client_id, reason: why });
    send(res, 400, errorPage({ title: 'This app cannot sign you in', message: why }));
    return true;
  };
  const refuseGone = async (res: express.Response, challenge: string, sub: string | undefined) => {
    const { redirect_to } = await hydra.rejectConsentRequest(challenge, ACCOUNT_GONE);
    log.info('consent refused: account removed', { sub });
    res.redirect(302, redirect_to);
  };

  /**
   * Hydra's skip: the newest remembered consent of this subject for this
   * client covers every requested scope (consent/strategy_default.go,
   * matchScopes). Our policy may offer more than was requested (offline
   * access): offer only what that remembered consent granted, so a skip never
   * grants more than the person did. Hydra lists consents newest first, the
   * same ones it matches (remembered, not themselves skipped, not expired).
   */
  const rememberedScopes = async (request: ConsentRequest): Promise<string[]> => {
    const clientId = request.client?.client_id;
    const sessions = await hydra.listConsentSessions(request.subject!);
    const remembered = sessions.find((s) => s.remember === true && s.consent_request?.client?.client_id === clientId);
    const requested = request.requested_scope ?? [];
    const granted = remembered?.grant_scope ?? [];
    return offeredScopes(request).filter((s) => requested.includes(s) || granted.includes(s));
  };

  router.get('/consent', page(async (req, res) => {
    const { consent_challenge: challenge } = parse(ConsentQuery, req.query, 'consent_challenge');
    const request = await hydra.getConsentRequest(challenge);
    // Remembered consent (Hydra's skip) and first-party clients: no question asked.
    const clientId = request.client?.client_id ?? '';
    // A sign-in accepted just before its account was removed must not become a grant.
    if (!(request.subject && (await findAccount(request.subject)))) return refuseGone(res, challenge, request.subject);
    if (await refusedClient(res, request)) return;
    if (request.skip || trusted.has(clientId)) {
      const scopes = trusted.has(clientId) ? offeredScopes(request) : await rememberedScopes(request);
      const grant = grantFor(request, scopes, resources, false);
      const { redirect_to } = await hydra.acceptConsentRequest(challenge, grant);
      log.info('consent granted without asking', { sub: request.subject, client_id: clientId, reason: request.skip ? 'remembered' : 'trusted client' });
      ctx.audit?.({ kind: 'consent_granted', outcome: 'ok', sub: request.subject!, clientId, detail: `${request.skip ? 'remembered' : 'trusted client'}; scopes ${grant.grant_scope.join(' ')}` });
      return res.redirect(302, redirect_to);
    }
    const user = await findAccount(request.subject!);
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
    csrf.require(req, input.challenge, input.csrf);
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
    if (!(request.subject && (await findAccount(request.subject)))) return refuseGone(res, input.challenge, request.subject);
    if (await refusedClient(res, request)) return;
    const checked = input.scope === undefined ? [] : Array.isArray(input.scope) ? input.scope : [input.scope];
    const grant = grantFor(request, checked, resources, input.remember === 'yes');
    const { redirect_to } = await hydra.acceptConsentRequest(input.challenge, grant);
    log.info('consent granted', { sub: request.subject, client_id: request.client?.client_id, scopes: grant.grant_scope, remember: grant.remember });
    ctx.audit?.({ kind: 'consent_granted', outcome: 'ok', sub: request.subject!, clientId: request.client?.client_id ?? '', detail: `scopes ${grant.grant_scope.join(' ')}` });
    res.redirect(302, redirect_to);
  }));

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
  const url = mirroredUrl(client);
  return url && URL.canParse(url) ? new URL(url).host : undefined;
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
