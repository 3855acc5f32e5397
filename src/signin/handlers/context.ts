import type { RequestHandler } from 'express';
import { z } from 'zod';
import type { HydraAdmin } from '../../hydra/index.js';
import type { Logger } from '../../log/logger.js';
import type { Csrf } from '../../web/csrf.js';
import type { pageHandler } from '../../web/pageKit.js';
import type { UserStore } from '../../account/userStore.js';
import type { RecordAccountEvent } from '../../audit/audit.js';

/** What the router (../loginRouter.ts) builds once and hands to each endpoint's handler. */
export interface PageContext {
  hydra: HydraAdmin;
  users: UserStore;
  log: Logger;
  /** The one CSRF scheme of every form, bound to the Hydra challenge the form answers. */
  csrf: Csrf;
  /** Wraps a handler so Hydra and input failures become readable pages. */
  page: ReturnType<typeof pageHandler>;
  /** The urlencoded body parser every form shares (bounded). */
  form: RequestHandler;
  /** The audit trail's account events (sign-in, consent); absent: not recorded. */
  audit?: RecordAccountEvent;
  /** Told of every sign-in form submission and how it ended (signin_attempts_total). */
  onSignInAttempt?: SignInAttemptListener;
}

/**
 * How a sign-in ended: "error" when it could not be decided (a bad or forged
 * form, Hydra or Kratos failing). Kratos never answers locked or rate_limited
 * to us: it has no lockout, and its refusals reach us only as the flow's messages.
 */
export type SignInAttemptOutcome = 'ok' | 'invalid_credentials' | 'locked' | 'rate_limited' | 'error';
export type SignInAttemptListener = (method: 'password' | 'kratos', outcome: SignInAttemptOutcome) => void;

// Hydra's challenges are opaque strings; bound their size before they reach Hydra.
export const Challenge = z.string().min(1).max(2048);

/** How long "keep me signed in" and "remember this decision" last. */
export const REMEMBER_SECONDS = 30 * 24 * 3600;

/** Hydra still holds a sign-in for a subject whose account was removed. */
export const ACCOUNT_GONE = { error: 'access_denied', error_description: 'This account no longer exists', status_code: 403 };

export function clientName(client: { client_name?: string; client_id?: string } | undefined | null): string {
  return client?.client_name || client?.client_id || 'An application';
}
