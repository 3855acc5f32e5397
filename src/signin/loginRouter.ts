import express from 'express';
import type { HydraAdmin } from '../hydra/index.js';
import type { ResourceSet } from '../auth/resource.js';
import type { Logger } from '../log/logger.js';
import type { Signer } from '../web/cookies.js';
import { Csrf } from '../web/csrf.js';
import type { Kratos } from '../kratos/index.js';
import { consentHandler, type ConsentHandlerOptions } from './handlers/consent.js';
import type { PageContext, SignInAttemptListener } from './handlers/context.js';
import { kratosPageHandler } from './handlers/kratosErrors.js';
import { kratosFlowsHandler } from './handlers/kratosFlows.js';
import { kratosAccounts, kratosLoginHandler } from './handlers/kratosLogin.js';
import { loginHandler } from './handlers/login.js';
import { logoutHandler } from './handlers/logout.js';
import { oauthErrorHandler } from './handlers/oauthError.js';
import { pageHandler } from '../web/pageKit.js';
import { STYLESHEET, STYLESHEET_PATH } from '../web/layout.js';
import { LoginThrottle } from '../limits/throttle.js';
import type { RecordAccountEvent } from '../audit/audit.js';
import type { UserStore } from '../account/userStore.js';

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
  /**
   * IDENTITY=kratos: Kratos signs people in (its flows rendered under /kratos/),
   * our /login accepts Hydra's challenge for the Kratos identity. `publicBaseUrl`
   * is this server as browsers reach it; `publicUrl` is Kratos's.
   */
  kratos?: { client: Kratos; publicUrl: URL; publicBaseUrl: URL; onSignedIn?: (sub: string) => Promise<void> };
  /** Sign-ins and consents go to the audit trail (src/audit/). */
  audit?: RecordAccountEvent;
  /** Told of every sign-in form submission at /login, password or Kratos, and how it ended. */
  onSignInAttempt?: SignInAttemptListener;
  /** Asked at consent whether the authorization may go on (ConsentHandlerOptions.checkClient). */
  checkClient?: ConsentHandlerOptions['checkClient'];
}

/**
 * The identity side Hydra delegates to (urls.login / urls.consent /
 * urls.logout / urls.error): one handler per endpoint (./handlers/), mounted
 * here with what they share — the CSRF scheme, the page error handler, the
 * form parser — and the pages' stylesheet.
 */
export function createLoginRouter(options: LoginRouterOptions): express.Router {
  const { hydra, users, log } = options;
  const ctx: PageContext = {
    hydra,
    users,
    log,
    csrf: new Csrf(options.signer, { secure: options.secureCookies }),
    page: options.kratos ? kratosPageHandler(log) : pageHandler(log),
    form: express.urlencoded({ extended: false, limit: '16kb' }),
    ...(options.audit ? { audit: options.audit } : {}),
    ...(options.onSignInAttempt ? { onSignInAttempt: options.onSignInAttempt } : {}),
  };
  const router = express.Router();
  router.get(STYLESHEET_PATH, (_req, res) => {
    res.type('text/css').set('Cache-Control', 'public, max-age=3600').send(STYLESHEET);
  });
  const { kratos } = options;
  if (kratos) {
    router.use(kratosLoginHandler(ctx, { kratos: kratos.client, loginUrl: pageUrl(kratos.publicBaseUrl, 'login'), ...(kratos.onSignedIn ? { onSignedIn: kratos.onSignedIn } : {}) }));
    router.use(kratosFlowsHandler(ctx, { kratos: kratos.client, kratosPublicUrl: kratos.publicUrl }));
  } else {
    router.use(loginHandler(ctx, { throttle: options.throttle ?? new LoginThrottle(), ...(options.wait ? { wait: options.wait } : {}) }));
  }
  router.use(
    consentHandler(ctx, {
      resources: options.resources,
      trustedClientIds: options.trustedClientIds,
      ...(kratos ? { findAccount: kratosAccounts(kratos.client) } : {}),
      ...(options.checkClient ? { checkClient: options.checkClient } : {}),
    }),
  );
  router.use(logoutHandler(ctx, kratos ? { kratos: { client: kratos.client, continueUrl: pageUrl(kratos.publicBaseUrl, 'logout/continue'), signer: options.signer } } : {}));
  router.get('/oauth-error', oauthErrorHandler());
  return router;
}

/** One of our pages as browsers reach it (the public URL may carry a path prefix). */
const pageUrl = (publicBaseUrl: URL, path: string) => new URL(path, `${publicBaseUrl.href.replace(/\/+$/, '')}/`);
