import express, { type Response } from 'express';
import type { HydraAdmin } from '../hydra/index.js';
import type { Logger } from '../log/logger.js';
import type { Signer } from '../web/cookies.js';
import { Csrf } from '../web/csrf.js';
import { pageHandler } from '../web/pageKit.js';
import type { LoginThrottle } from '../limits/throttle.js';
import type { ConnectLinks } from '../connections/connectLink.js';
import type { ConnectFlow } from '../connections/connectFlow.js';
import type { Kratos } from '../kratos/index.js';
import type { RecordAccountEvent } from '../audit/audit.js';
import type { CursorKey } from '../tools/cursor.js';
import { createSignIn } from './signIn.js';
import type { UserStore } from './userStore.js';
import { addConnectionRoutes } from './connectionRoutes.js';
import { type ActivityReader, addActivityRoutes } from './activityRoutes.js';
import { accountSignInRoute } from './routes/accountSignIn.js';
import { builtInSession, passwordProof, passwordRecheck } from './routes/builtInSession.js';
import { changePasswordRoutes } from './routes/changePassword.js';
import { type AccountContext, CSRF_BINDING, type DeleteProof } from './routes/context.js';
import { deleteAccountRoutes } from './routes/deleteAccount.js';
import { exportDataRoute } from './routes/exportData.js';
import { homeRoute } from './routes/home.js';
import { kratosFlowRoutes } from './routes/kratosFlows.js';
import { kratosSession, recentSignInProof } from './routes/kratosSession.js';
import { revokeConsentRoute } from './routes/revokeConsent.js';
import { signOutEverywhereRoute } from './routes/signOutEverywhere.js';

export interface AccountRouterOptions {
  hydra: HydraAdmin;
  users: UserStore;
  signer: Signer;
  secureCookies: boolean;
  /** Shared with the OAuth sign-in page, so both count the same failures. */
  throttle: LoginThrottle;
  /** How to wait out a throttle delay (tests pass a recorder). */
  wait?: (ms: number) => Promise<unknown>;
  /**
   * Everything stored for a person, as the pieces of one JSON document
   * (src/store/export.ts; the CLI's `export` prints the same).
   */
  exportData: (sub: string) => AsyncIterable<string>;
  /** The one account-removal path (src/account/accountRemoval.ts), as this page needs it. */
  deleteAccount: (sub: string) => Promise<void>;
  log: Logger;
  now?: () => number;
  /** Connected accounts (issue 14): their section and pages; absent when no provider is configured. */
  connections?: { flow: ConnectFlow; links: ConnectLinks };
  /**
   * IDENTITY=kratos: the person is whoever Kratos's session says (no cookie of
   * ours); signing in, the password and "sign out everywhere" go through
   * Kratos; `publicBaseUrl` is where Kratos sends the browser back to.
   */
  kratos?: { client: Kratos; publicBaseUrl: URL };
  /** Account sign-ins and withdrawn consents go to the audit trail; its reader serves /account/activity (src/account/activityRoutes.ts). */
  audit?: { record: RecordAccountEvent; activity: ActivityReader; cursorKey: CursorKey };
}

/**
 * /account: people see which apps hold a consent from them and withdraw it
 * (Hydra then revokes that app's tokens), sign out everywhere, change their
 * password, download their data and delete their account.
 *
 * Who is signed in comes from one account session, picked here for the
 * identity backend (./routes/builtInSession.ts: our own signed cookie over
 * the users table; ./routes/kratosSession.ts: Kratos's session), and the
 * routes that differ between the two are mounted for that backend; the rest
 * (./routes/, one file per action) ask only the session.
 */
export function createAccountRouter(options: AccountRouterOptions): express.Router {
  const { log } = options;
  const cookie = { secure: options.secureCookies };
  const shared: Omit<AccountContext, 'session'> = {
    hydra: options.hydra,
    log,
    csrf: new Csrf(options.signer, cookie),
    cookie,
    page: pageHandler(log),
    form: express.urlencoded({ extended: false, limit: '16kb' }),
    now: options.now ?? Date.now,
    ...(options.audit ? { audit: options.audit.record } : {}),
  };
  const { ctx, proof, routes } = options.kratos ? kratosBackend(options.kratos, shared) : builtInBackend(options, shared);
  const { session, csrf, page } = ctx;
  const router = express.Router();
  router.use(homeRoute(ctx, { activity: options.audit !== undefined, ...(options.connections ? { connections: options.connections.flow } : {}) }));
  router.use(...routes);
  if (options.connections) {
    addConnectionRoutes(router, { ...options.connections, sessionSub: (req) => session.sub(req), csrf, cookie, page, signInBinding: CSRF_BINDING, log });
  }
  if (options.audit) {
    const { signInUrl } = session;
    addActivityRoutes(router, {
      ...options.audit,
      users: session.directory,
      sessionSub: (req) => session.sub(req),
      signInToken: (req, res) => csrf.tokenFor(req, res, CSRF_BINDING),
      page,
      ...(signInUrl ? { signIn: (res: Response) => res.redirect(303, signInUrl('/account/activity')) } : {}),
    });
  }
  router.use(revokeConsentRoute(ctx));
  router.use(signOutEverywhereRoute(ctx));
  router.use(exportDataRoute(ctx, options.exportData));
  router.use(deleteAccountRoutes(ctx, { proof, deleteAccount: options.deleteAccount }));
  return router;
}

/** What one identity backend brings: its session, how a person proves it is them before deletion, and its own routes. */
interface Backend {
  ctx: AccountContext;
  proof: DeleteProof;
  routes: express.Router[];
}

/** Our own cookie over the users table: sign-in and password change here, behind the shared sign-in throttle. */
function builtInBackend(options: AccountRouterOptions, shared: Omit<AccountContext, 'session'>): Backend {
  const { users, throttle, wait } = options;
  const session = builtInSession({ users, signer: options.signer, cookie: shared.cookie, now: shared.now });
  const signIn = createSignIn({ users, csrf: shared.csrf, log: shared.log, throttle, ...(wait ? { wait } : {}), ...(shared.audit ? { audit: shared.audit } : {}) });
  const recheck = passwordRecheck(signIn);
  const ctx = { ...shared, session };
  return { ctx, proof: passwordProof(recheck), routes: [accountSignInRoute(ctx, session, signIn), changePasswordRoutes(ctx, { users, session, recheck })] };
}

/** IDENTITY=kratos: Kratos's session; signing in and the password are Kratos's flows. */
function kratosBackend(kratos: NonNullable<AccountRouterOptions['kratos']>, shared: Omit<AccountContext, 'session'>): Backend {
  const session = kratosSession({ client: kratos.client, publicBaseUrl: kratos.publicBaseUrl, now: shared.now });
  const ctx = { ...shared, session };
  return { ctx, proof: recentSignInProof(session), routes: [kratosFlowRoutes(ctx, session)] };
}
