import type { Request, RequestHandler, Response } from 'express';
import type { HydraAdmin } from '../../hydra/index.js';
import type { Logger } from '../../log/logger.js';
import type { RecordAccountEvent } from '../../audit/audit.js';
import type { CookieOptions } from '../../web/cookies.js';
import type { Csrf } from '../../web/csrf.js';
import { BadRequest, type pageHandler } from '../../web/pageKit.js';
import type { User, UserStore } from '../userStore.js';

/**
 * Who is signed in to /account, as one identity backend says: our own
 * cookie over the users table (./builtInSession.ts) or Kratos's session
 * (./kratosSession.ts). The router picks one; the routes ask only this.
 */
export interface AccountSession {
  /** The signed-in person's `sub`, or undefined. */
  sub(req: Request): Promise<string | undefined>;
  /** The signed-in person, or undefined. */
  user(req: Request): Promise<User | undefined>;
  /** Finds a person by `sub` (the activity page): our users table, or Kratos's identities. */
  directory: Pick<UserStore, 'findById'>;
  /** Where a browser without a session signs in, coming back to `returnTo` (Kratos's login flow); absent: our own form, shown in place. */
  signInUrl?(returnTo: string): string;
  /** "Sign out everywhere": end the sessions the identity backend keeps (Hydra's are ended by the route). */
  endSessions(sub: string): Promise<void>;
}

/** A refused password check: the status, and the messages for the form and for the password field. */
export interface Refusal {
  status: number;
  errors: { form?: string; field?: string };
}

/** How a person shows it is them before their account is deleted (each session's file has its own). */
export interface DeleteProof {
  /** The form asks for the password; else a recent sign-in at the identity backend stands for it. */
  askPassword: boolean;
  /** Before the page, and again before deleting: false when the browser was sent to sign in again instead. */
  recent(req: Request, res: Response): Promise<boolean>;
  /** The password typed on the form: undefined when right, else what to show on the form. */
  check(req: Request, res: Response, user: User, password: string): Promise<Refusal | undefined>;
}

/** What the router (../accountRouter.ts) builds once and hands to each route factory. */
export interface AccountContext {
  hydra: HydraAdmin;
  log: Logger;
  session: AccountSession;
  /** The one CSRF scheme of every form. */
  csrf: Csrf;
  cookie: CookieOptions;
  /** Wraps a handler so Hydra and input failures become readable pages. */
  page: ReturnType<typeof pageHandler>;
  /** The urlencoded body parser every form shares (bounded). */
  form: RequestHandler;
  now: () => number;
  /** Account events for the audit trail; absent: not recorded. */
  audit?: RecordAccountEvent;
}

/** The built-in session's cookie; "sign out everywhere" and a deleted account clear it whichever the backend. */
export const SESSION_COOKIE = 'hmcp_account';
/** The account page's forms (sign-in, remove access, sign out everywhere, download). */
export const CSRF_BINDING = 'account';
const SESSION_ENDED = 'Your account session has ended. Sign in again.';

/** For the account page's forms: the CSRF token first, then the session. */
export async function requireSession(ctx: AccountContext, req: Request, token: string): Promise<string> {
  ctx.csrf.require(req, CSRF_BINDING, token);
  const sub = await ctx.session.sub(req);
  if (!sub) throw new BadRequest(SESSION_ENDED);
  return sub;
}

/** For the forms bound to the person: the session first, then the token issued for it. */
export async function requireUserFor(ctx: AccountContext, req: Request, binding: (sub: string) => string, token: string): Promise<User> {
  const user = await ctx.session.user(req);
  if (!user) throw new BadRequest(SESSION_ENDED);
  ctx.csrf.require(req, binding(user.id), token);
  return user;
}
