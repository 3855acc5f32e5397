import { setTimeout as sleep } from 'node:timers/promises';
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { Logger } from '../log/logger.js';
import { type Csrf, CsrfField } from '../web/csrf.js';
import { parse } from '../web/pageKit.js';
import type { LoginThrottle } from '../limits/throttle.js';
import type { User, UserStore } from './userStore.js';
import type { RecordAccountEvent } from '../audit/audit.js';

/** What every sign-in form posts; the OAuth login form adds its challenge and "keep me signed in". */
export const SignInFields = z.object({
  csrf: CsrfField,
  email: z.string().max(320),
  password: z.string().max(1024),
});
export type SignInFields = z.infer<typeof SignInFields>;

export interface SignInOptions {
  users: UserStore;
  /** One throttle for every sign-in form, so failures on one count on all. */
  throttle: LoginThrottle;
  /** Issues and checks the forms' CSRF tokens. */
  csrf: Csrf;
  log: Logger;
  /** How to wait out a throttle delay (tests pass a recorder). */
  wait?: (ms: number) => Promise<unknown>;
  /** Records sign-ins in the audit trail (never the email or password). */
  audit?: RecordAccountEvent;
}

/**
 * A refused attempt carries the status, the sentence to show on the form, and
 * why (for metrics): a wrong password, the account locked after too many
 * failures, or the client address refused for the same.
 */
export type SignInOutcome = { ok: true; user: User } | { ok: false; status: 401 | 429; error: string; reason: 'invalid_credentials' | 'locked' | 'rate_limited' };

export interface SignIn {
  /**
   * Parse a posted sign-in form and check its CSRF token against what the
   * form acts on (`binding`); throws BadRequest before anything else is done.
   */
  readForm<T extends SignInFields>(req: Request, schema: z.ZodType<T>, binding: (form: T) => string): T;
  /**
   * Check the password behind the throttle: refused outright (429, with
   * Retry-After) when locked, else after the throttle's delay; failures and
   * successes are recorded. `context` is added to the log lines.
   */
  attempt(req: Request, res: Response, form: SignInFields, context?: Record<string, unknown>): Promise<SignInOutcome>;
}

const WRONG_CREDENTIALS = 'Wrong email or password.';

/** The throttle's key for an account: the email as people type it, trimmed and case-folded. */
const accountKey = (email: string) => email.trim().toLowerCase();

/**
 * The sign-in steps shared by the OAuth login page (/login) and the account
 * page (/account/sign-in), kept in one place so the two cannot drift apart
 * (one once skipped the throttle's delay).
 */
export function createSignIn(options: SignInOptions): SignIn {
  const { users, throttle, csrf, log } = options;
  const wait = options.wait ?? ((ms: number) => sleep(ms));
  /** Which form it was, for the record: the account page's sign-in, or its password re-check before a change. */
  const where = (context: Record<string, unknown>) =>
    typeof context.page === 'string' ? { detail: context.page === 'account' ? 'account page' : `password check (${context.page.slice(0, 40)})` } : {};
  /**
   * A failed attempt is recorded under the account's sub when the email names
   * one (its owner should see it), else with no sub and no email: an attempt
   * on an unknown address identifies nobody worth recording.
   */
  const recordFailure = async (form: SignInFields, context: Record<string, unknown>, outcome: 'refused' | 'rate_limited') => {
    if (!options.audit) return;
    const target = await users.findByEmail(form.email).catch(() => undefined);
    const clientId = typeof context.client_id === 'string' ? context.client_id : undefined;
    options.audit({ kind: 'sign_in_failed', outcome, ...(target ? { sub: target.id, ...where(context) } : { detail: 'unknown account' }), ...(clientId ? { clientId } : {}) });
  };
  return {
    readForm(req, schema, binding) {
      const form = parse(schema, req.body, 'sign-in form');
      csrf.require(req, binding(form), form.csrf);
      return form;
    },

    async attempt(req, res, form, context = {}) {
      const account = accountKey(form.email);
      const address = req.ip ?? 'unknown';
      const verdict = await throttle.begin(account, address);
      if (!verdict.allowed) {
        log.warn('sign-in throttled', { ...context, retry_after: verdict.retryAfterSeconds });
        await recordFailure(form, context, 'rate_limited');
        // RFC 6585 §4: 429 may say how long to wait.
        res.set('Retry-After', String(verdict.retryAfterSeconds));
        const minutes = Math.ceil(verdict.retryAfterSeconds / 60);
        const reason = verdict.lockedBy === 'account' ? 'locked' : 'rate_limited';
        return { ok: false, status: 429, error: `Too many failed attempts. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`, reason };
      }
      if (verdict.delayMs) await wait(verdict.delayMs);
      const user = await users.verify(form.email, form.password);
      if (!user) {
        // begin() counted the attempt: it stays counted as a failure.
        log.info('sign-in failed', context);
        await recordFailure(form, context, 'refused');
        return { ok: false, status: 401, error: WRONG_CREDENTIALS, reason: 'invalid_credentials' };
      }
      await throttle.recordSuccess(account, address);
      options.audit?.({ kind: 'sign_in_ok', outcome: 'ok', sub: user.id, ...(typeof context.client_id === 'string' ? { clientId: context.client_id } : {}), ...where(context) });
      return { ok: true, user };
    },
  };
}
