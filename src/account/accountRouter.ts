import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import { HydraError, type HydraAdmin } from '../hydra/index.js';
import type { Logger } from '../log/logger.js';
import { changePasswordPage, type ChangePasswordErrors, deleteAccountPage, type DeleteAccountErrors } from './accountPages.js';
import { clearCookie, readCookie, setCookie, type Signer } from '../web/cookies.js';
import { Csrf } from '../web/csrf.js';
import { BadRequest, pageHandler, parse, SECURITY_HEADERS, send } from '../web/pageKit.js';
import { messagePage } from '../web/layout.js';
import { accountPage, accountSignInPage } from './accountPages.js';
import { CsrfField } from '../web/csrf.js';
import { createSignIn, SignInFields } from './signIn.js';
import type { LoginThrottle } from '../limits/throttle.js';
import { checkPassword, type User, UserInputError, type UserStore } from './userStore.js';
import type { ConnectLinks } from '../connections/connectLink.js';
import type { Kratos, Session } from '../kratos/index.js';
import { identityAsUser, kratosAccountDirectory } from './kratosDirectory.js';
import type { ConnectFlow } from '../connections/connectFlow.js';
import { connectionsSection } from './connectionPages.js';
import { addConnectionRoutes, connectionFormToken } from './connectionRoutes.js';
import { type ActivityReader, addActivityRoutes } from './activityRoutes.js';
import type { RecordAccountEvent } from '../audit/audit.js';
import type { CursorKey } from '../tools/cursor.js';

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

const COOKIE = 'hmcp_account';
/** With Kratos, deleting the account needs a sign-in this recent (Kratos's privileged_session_max_age, kratos/kratos.yml). */
const PRIVILEGED_SECONDS = 15 * 60;
const SESSION_SECONDS = 15 * 60;
/** The account page's forms (sign-in, remove access, sign out everywhere, download). */
const CSRF_BINDING = 'account';
/** The two forms that change the account itself: bound to the signed-in person as well. */
const passwordBinding = (sub: string) => `account-password|${sub}`;
const deleteBinding = (sub: string) => `account-delete|${sub}`;
const AccountSignInFields = SignInFields.extend({ next: z.string().max(200).optional() });
const RevokeForm = z.object({ csrf: CsrfField, client: z.string().min(1).max(255) });
const CsrfForm = z.object({ csrf: CsrfField });
const Password = z.string().max(1024).default('');
const PasswordForm = z.object({ csrf: CsrfField, 'current-password': Password, 'new-password': Password, 'repeat-password': Password });
const DeleteForm = z.object({ csrf: CsrfField, password: Password, confirm: z.literal('yes').optional().catch(undefined) });
const NOTICES: Record<string, string> = {
  revoked: 'Access removed. The app must ask you again to use your account.',
  password: 'Password changed. Every other sign-in has ended.',
  disconnected: 'Disconnected. The service was told to revoke the access it gave.',
  'disconnected-not-revoked':
    'Disconnected here, but the service could not be told just now: tools can no longer use it, and you may also remove the access in that service\'s own settings.',
  settings: 'Your changes are saved. A new password ends every other sign-in.',
  'password-sessions-pending':
    'Password changed, but other sign-ins could not be ended just now (the authorization server did not answer). Use "Sign out everywhere" below in a moment.',
};

/**
 * /account: people see which apps hold a consent from them and withdraw it
 * (Hydra then revokes that app's tokens), sign out everywhere, change their
 * password, download their data and delete their account.
 *
 * The session is our own short signed cookie, `sub|expiry|password stamp`:
 * nothing else identifies the person, and it is not Hydra's login session.
 * The stamp changes with the password, so a password change ends every
 * other /account session at once while this browser gets a fresh cookie and
 * stays signed in; Hydra's login sessions of the person (remembered sign-ins,
 * this browser's included) are all ended through its admin API.
 */
export function createAccountRouter(options: AccountRouterOptions): express.Router {
  const { hydra, users, signer, log, throttle } = options;
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '16kb' });
  const page = pageHandler(log);
  const cookieOpts = { secure: options.secureCookies };
  const csrf = new Csrf(signer, cookieOpts);
  const signIn = createSignIn({ users, csrf, log, throttle, ...(options.wait ? { wait: options.wait } : {}), ...(options.audit ? { audit: options.audit.record } : {}) });
  const now = options.now ?? Date.now;

  const startSession = async (res: Response, user: User) => {
    const stamp = await users.passwordStamp(user.id);
    setCookie(res, COOKIE, signer.sign(`${user.id}|${now() + SESSION_SECONDS * 1000}|${stamp}`), { ...cookieOpts, maxAgeSeconds: SESSION_SECONDS });
  };
  const { kratos } = options;
  // One whoami per request, however many checks of the person a handler makes.
  const kratosSessions = new WeakMap<Request, Promise<Session | undefined>>();
  const kratosSession = (req: Request) => {
    let session = kratosSessions.get(req);
    if (!session) kratosSessions.set(req, (session = kratos!.client.public.whoami(req.headers.cookie)));
    return session;
  };
  const kratosUrl = (path: string) => new URL(path.replace(/^\//, ''), `${kratos!.publicBaseUrl.href.replace(/\/+$/, '')}/`).href;
  /** The signed-in person: a well-signed, unexpired cookie whose stamp matches their password now (with Kratos: its session). */
  const sessionSub = async (req: Request): Promise<string | undefined> => {
    if (kratos) return (await kratosSession(req))?.identity.id;
    const raw = readCookie(req, COOKIE);
    const value = raw ? signer.unsign(raw) : undefined;
    const [sub, exp, stamp] = value?.split('|') ?? [];
    if (!sub || !stamp || !(Number(exp) > now())) return undefined;
    return (await users.passwordStamp(sub)) === stamp ? sub : undefined;
  };
  const sessionUser = async (req: Request): Promise<User | undefined> => {
    if (kratos) {
      const session = await kratosSession(req);
      return session && identityAsUser(session.identity);
    }
    const sub = await sessionSub(req);
    return sub ? users.findById(sub) : undefined;
  };
  const SESSION_ENDED = 'Your account session has ended. Sign in again.';
  const requireSession = async (req: Request, token: string): Promise<string> => {
    csrf.require(req, CSRF_BINDING, token);
    const sub = await sessionSub(req);
    if (!sub) throw new BadRequest(SESSION_ENDED);
    return sub;
  };
  /** For the forms bound to the person: the session first, then the token issued for it. */
  const requireUserFor = async (req: Request, binding: (sub: string) => string, token: string): Promise<User> => {
    const user = await sessionUser(req);
    if (!user) throw new BadRequest(SESSION_ENDED);
    csrf.require(req, binding(user.id), token);
    return user;
  };
  /** Check the person's current password behind the sign-in throttle: undefined when right, else the status and message. */
  const recheckPassword = async (req: Request, res: Response, user: User, password: string, pageName: string) => {
    const outcome = await signIn.attempt(req, res, { csrf: '', email: user.email, password }, { page: pageName, sub: user.id });
    if (outcome.ok) return undefined;
    return outcome.status === 429
      ? { status: 429, errors: { form: outcome.error } }
      : { status: 401, errors: { field: 'That is not your current password.' } };
  };

  router.get('/account', page(async (req, res) => {
    const user = await sessionUser(req);
    // With Kratos, signing in is Kratos's login flow, which comes back here.
    if (!user && kratos) return res.redirect(303, kratos.client.public.browserFlowUrl('login', kratosUrl('/account')).href);
    const token = csrf.tokenFor(req, res, CSRF_BINDING);
    if (!user) return send(res, 200, accountSignInPage({ csrf: token }));
    const sessions = await hydra.listConsentSessions(user.id);
    const grants = sessions.map((s) => ({
      clientId: s.consent_request?.client?.client_id ?? '',
      clientName: s.consent_request?.client?.client_name || s.consent_request?.client?.client_id || 'Unknown app',
      scopes: s.grant_scope ?? [],
      grantedAt: s.handled_at,
      remembered: s.remember === true,
    }));
    // One line per app: Hydra keeps a consent per authorization.
    const byClient = [...new Map(grants.filter((g) => g.clientId).map((g) => [g.clientId, g])).values()];
    const done = typeof req.query.done === 'string' ? req.query.done : undefined;
    const notice = done && Object.hasOwn(NOTICES, done) ? NOTICES[done] : undefined;
    const connections = options.connections
      ? connectionsSection(await options.connections.flow.list(user.id), (provider) => connectionFormToken(csrf, req, res, user.id, provider))
      : undefined;
    send(res, 200, accountPage({ csrf: token, email: user.email, grants: byClient, notice, connections, activity: options.audit !== undefined }));
  }));

  router.post('/account/sign-in', form, page(async (req, res) => {
    if (kratos) return res.redirect(303, '/account');
    const input = signIn.readForm(req, AccountSignInFields, () => CSRF_BINDING);
    // Only back to a connect page of ours: never an open redirect.
    const next = input.next && /^\/account\/connections\/[a-z][a-z0-9_-]{0,31}\/connect(\?e=[A-Za-z0-9_.-]{1,80})?$/.test(input.next) ? input.next : undefined;
    const outcome = await signIn.attempt(req, res, input, { page: 'account' });
    if (!outcome.ok) return send(res, outcome.status, accountSignInPage({ csrf: input.csrf, email: input.email, error: outcome.error, ...(next ? { next } : {}) }));
    await startSession(res, outcome.user);
    res.redirect(303, next ?? '/account');
  }));

  if (options.connections) {
    addConnectionRoutes(router, { ...options.connections, sessionSub, csrf, cookie: cookieOpts, page, signInBinding: CSRF_BINDING, log });
  }

  if (options.audit) {
    addActivityRoutes(router, {
      ...options.audit,
      users: kratos ? kratosAccountDirectory(kratos.client.admin) : users,
      sessionSub,
      signInToken: (req, res) => csrf.tokenFor(req, res, CSRF_BINDING),
      page,
      ...(kratos ? { signIn: (res: Response) => res.redirect(303, kratos.client.public.browserFlowUrl('login', kratosUrl('/account/activity')).href) } : {}),
    });
  }

  router.post('/account/revoke', form, page(async (req, res) => {
    const input = parse(RevokeForm, req.body, 'form');
    const sub = await requireSession(req, input.csrf);
    await hydra.revokeConsentSessions(sub, input.client);
    log.info('consent withdrawn by user', { sub, client_id: input.client });
    options.audit?.record({ kind: 'consent_revoked', outcome: 'ok', sub, clientId: input.client });
    res.redirect(303, '/account?done=revoked');
  }));

  router.post('/account/sign-out-everywhere', form, page(async (req: Request, res: Response) => {
    const input = parse(CsrfForm, req.body, 'form');
    const sub = await requireSession(req, input.csrf);
    await hydra.revokeLoginSessions(sub);
    // Kratos's sessions of the person too, this browser's included.
    if (kratos) await kratos.client.admin.revokeSessions(sub);
    clearCookie(res, COOKIE, cookieOpts);
    log.info('signed out everywhere', { sub });
    send(res, 200, messagePage({ title: 'Signed out everywhere', message: 'Every remembered sign-in has ended. Apps keep their access until you remove it.' }));
  }));

  // --- Change password -------------------------------------------------------

  router.get('/account/password', page(async (req, res) => {
    // Kratos's settings flow (rendered by /kratos/settings) changes the password, then comes back.
    if (kratos) return res.redirect(303, kratos.client.public.browserFlowUrl('settings', kratosUrl('/account?done=settings')).href);
    const user = await sessionUser(req);
    if (!user) return res.redirect(303, '/account');
    send(res, 200, changePasswordPage({ csrf: csrf.tokenFor(req, res, passwordBinding(user.id)), email: user.email }));
  }));

  router.post('/account/password', form, page(async (req, res) => {
    if (kratos) return res.redirect(303, '/account/password');
    const input = parse(PasswordForm, req.body, 'form');
    const user = await requireUserFor(req, passwordBinding, input.csrf);
    const again = (status: number, errors: ChangePasswordErrors) => send(res, status, changePasswordPage({ csrf: input.csrf, email: user.email, errors }));
    const current = input['current-password'];
    const next = input['new-password'];
    // The new password's own checks first: they cost no password check and count no failure.
    const errors: ChangePasswordErrors = {};
    if (!current) errors.current = 'Enter your current password.';
    try {
      checkPassword(next);
      if (next !== input['repeat-password']) errors.repeat = 'The two new passwords are not the same.';
    } catch (e) {
      if (!(e instanceof UserInputError)) throw e;
      errors.next = next ? `The new ${e.message}.` : 'Enter a new password.';
    }
    if (Object.keys(errors).length) return again(400, errors);
    const refused = await recheckPassword(req, res, user, current, 'account-password');
    if (refused) return again(refused.status, { form: refused.errors.form, current: refused.errors.field });

    await users.setPassword(user.email, next);
    // Every other sign-in ends: other /account cookies by the new stamp,
    // Hydra's remembered sign-ins here. This browser gets a fresh cookie.
    await startSession(res, user);
    let done = 'password';
    try {
      await hydra.revokeLoginSessions(user.id);
    } catch (e) {
      if (!(e instanceof HydraError)) throw e;
      log.warn('password changed; Hydra login sessions not ended', { sub: user.id, status: e.status, error: e.error });
      done = 'password-sessions-pending';
    }
    log.info('password changed by user', { sub: user.id });
    res.redirect(303, `/account?done=${done}`);
  }));

  // --- Download my data ------------------------------------------------------

  router.post('/account/export', form, page(async (req, res) => {
    const input = parse(CsrfForm, req.body, 'form');
    const sub = await requireSession(req, input.csrf);
    const pieces = options.exportData(sub)[Symbol.asyncIterator]();
    // The first piece before any header: a failing database still gets the usual error page.
    const first = await pieces.next();
    const rest = { [Symbol.asyncIterator]: () => pieces };
    res
      .status(200)
      .set({ ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8' })
      .attachment(`hydra-mcp-data-${new Date(now()).toISOString().slice(0, 10)}.json`);
    log.info('data export by user', { sub });
    try {
      await pipeline(Readable.from((async function* () {
        if (!first.done) yield first.value;
        yield* rest;
      })()), res);
    } catch (e) {
      // Headers are gone: the download is cut short (the browser reports it failed), never a page.
      log.error('data export failed part-way', { sub, error: e });
    }
  }));

  // --- Delete my account -----------------------------------------------------

  /** With Kratos: whether its session's sign-in is recent enough to delete the account (else Kratos asks for the password again). */
  const recentKratosSignIn = async (req: Request) => {
    const session = await kratosSession(req);
    const at = session?.authenticated_at ? Date.parse(session.authenticated_at) : NaN;
    return session !== undefined && now() - at <= PRIVILEGED_SECONDS * 1000;
  };
  const reauthenticate = (res: Response) =>
    res.redirect(303, kratos!.client.public.browserFlowUrl('login', kratosUrl('/account/delete'), { refresh: true }).href);

  router.get('/account/delete', page(async (req, res) => {
    const user = await sessionUser(req);
    if (!user) return res.redirect(303, '/account');
    if (kratos && !(await recentKratosSignIn(req))) return reauthenticate(res);
    send(res, 200, deleteAccountPage({ csrf: csrf.tokenFor(req, res, deleteBinding(user.id)), exportCsrf: csrf.tokenFor(req, res, CSRF_BINDING), email: user.email, askPassword: !kratos }));
  }));

  router.post('/account/delete', form, page(async (req, res) => {
    const input = parse(DeleteForm, req.body, 'form');
    const user = await requireUserFor(req, deleteBinding, input.csrf);
    const again = (status: number, errors: DeleteAccountErrors) =>
      send(res, status, deleteAccountPage({ csrf: input.csrf, exportCsrf: csrf.tokenFor(req, res, CSRF_BINDING), email: user.email, errors, askPassword: !kratos }));
    const errors: DeleteAccountErrors = {};
    if (!input.password && !kratos) errors.password = 'Enter your password.';
    if (input.confirm !== 'yes') errors.confirm = 'Tick the box to confirm that you want your account deleted.';
    if (Object.keys(errors).length) return again(400, errors);
    if (kratos) {
      // The sign-in went stale while the page was open: Kratos asks for the password, then this page again.
      if (!(await recentKratosSignIn(req))) return reauthenticate(res);
    } else {
      const refused = await recheckPassword(req, res, user, input.password, 'account-delete');
      if (refused) return again(refused.status, { form: refused.errors.form, password: refused.errors.field });
    }

    try {
      await options.deleteAccount(user.id);
    } catch (e) {
      log.error('account deletion by user did not finish', { sub: user.id, error: e });
      res.set('Retry-After', '5');
      return send(res, 503, messagePage({
        title: 'Your account was not fully deleted',
        message: 'Deleting stopped part-way. Sign in and try again in a moment: it continues where it stopped. If it keeps failing, ask the operator.',
      }));
    }
    clearCookie(res, COOKIE, cookieOpts);
    log.info('account deleted by user', { sub: user.id });
    send(res, 200, messagePage({ title: 'Your account has been deleted', message: 'Your account and everything stored for it are gone, and no app can use it any more.' }));
  }));

  return router;
}
