import type { Request, Response } from 'express';
import { type CookieOptions, readCookie, setCookie, type Signer } from '../../web/cookies.js';
import type { SignIn } from '../signIn.js';
import type { User, UserStore } from '../userStore.js';
import { type AccountSession, type DeleteProof, type Refusal, SESSION_COOKIE } from './context.js';

const SESSION_SECONDS = 15 * 60;

export interface BuiltInSession extends AccountSession {
  /** Signs the person in on this browser: a fresh cookie stamped with their password now. */
  start(res: Response, user: User): Promise<void>;
}

/**
 * The built-in account session: our own short signed cookie,
 * `sub|expiry|password stamp`. Nothing else identifies the person, and it is
 * not Hydra's login session. The stamp changes with the password, so a
 * password change ends every other /account session at once.
 */
export function builtInSession(o: { users: UserStore; signer: Signer; cookie: CookieOptions; now: () => number }): BuiltInSession {
  const { users, signer, now } = o;
  /** A well-signed, unexpired cookie whose stamp matches the person's password now. */
  const sub = async (req: Request): Promise<string | undefined> => {
    const raw = readCookie(req, SESSION_COOKIE);
    const value = raw ? signer.unsign(raw) : undefined;
    const [id, exp, stamp] = value?.split('|') ?? [];
    if (!id || !stamp || !(Number(exp) > now())) return undefined;
    return (await users.passwordStamp(id)) === stamp ? id : undefined;
  };
  return {
    sub,
    async user(req) {
      const id = await sub(req);
      return id ? users.findById(id) : undefined;
    },
    directory: users,
    // Hydra's login sessions are all there is beside this cookie.
    endSessions: async () => undefined,
    async start(res, user) {
      const stamp = await users.passwordStamp(user.id);
      setCookie(res, SESSION_COOKIE, signer.sign(`${user.id}|${now() + SESSION_SECONDS * 1000}|${stamp}`), { ...o.cookie, maxAgeSeconds: SESSION_SECONDS });
    },
  };
}

/** Checks the signed-in person's current password behind the sign-in throttle: undefined when right. */
export type PasswordRecheck = (req: Request, res: Response, user: User, password: string, pageName: string) => Promise<Refusal | undefined>;

export function passwordRecheck(signIn: SignIn): PasswordRecheck {
  return async (req, res, user, password, pageName) => {
    const outcome = await signIn.attempt(req, res, { csrf: '', email: user.email, password }, { page: pageName, sub: user.id });
    if (outcome.ok) return undefined;
    return outcome.status === 429
      ? { status: 429, errors: { form: outcome.error } }
      : { status: 401, errors: { field: 'That is not your current password.' } };
  };
}

/** Deleting the account with the built-in session: the person types their password again. */
export function passwordProof(recheck: PasswordRecheck): DeleteProof {
  return {
    askPassword: true,
    recent: async () => true,
    check: (req, res, user, password) => recheck(req, res, user, password, 'account-delete'),
  };
}
