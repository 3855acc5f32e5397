import { createHash } from 'node:crypto';
import type { HydraAdmin } from '../hydra/index.js';
import type { Logger } from '../log/logger.js';
import { normaliseEmail, type User, UserInputError, type UserStore } from './userStore.js';
import type { Db } from '../store/database.js';
import type { RemovedSubject, RemovedSubjectsStore } from '../store/removedSubjectsStore.js';
import { deleteSubjectData, SUBJECT_TABLES, type SubjectTable } from '../store/subjectData.js';

/**
 * Who to remove: by the token subject, or by the email they sign in with; or
 * a subject whose account the directory already deleted (an identity deleted
 * in Kratos: src/account/identitySweep.ts), so only its access and data remain.
 */
export type RemovalTarget = { sub: string } | { email: string } | { deletedAccount: string };

/** The steps of a removal, in order; each is safe to run again. */
export type RemovalStep = 'recorded' | 'hydra' | 'data' | 'user' | 'hydra-again' | 'completed';

export interface RemovalReport {
  sub: string;
  /**
   * `removed`: this run did the whole removal. `finished`: it completed one
   * that an earlier run began and did not finish. `nothing-left`: it was
   * already complete, so nothing was done.
   */
  outcome: 'removed' | 'finished' | 'nothing-left';
  /** Rows deleted by this run, per table (`users` is the account itself). */
  deleted: Record<SubjectTable | 'users', number>;
}

/** No account, and no removal of one, matches the target (bad input: nothing was changed). */
export class UnknownAccountError extends UserInputError {
  override name = 'UnknownAccountError';
}

/** A step failed after the removal was recorded: the subject's tokens are refused; running the removal again finishes it. */
export class RemovalIncompleteError extends Error {
  override name = 'RemovalIncompleteError';
  constructor(
    readonly sub: string,
    readonly step: Exclude<RemovalStep, 'recorded'>,
    cause: unknown,
  ) {
    super(
      `removal of ${sub} stopped at the ${step} step (${cause instanceof Error ? cause.message : String(cause)}); ` +
        'the account is recorded as removed and its tokens are refused; run the removal again to finish it',
      { cause },
    );
  }
}

/**
 * Where accounts are found and, last, deleted: our users table (a UserStore),
 * or with IDENTITY=kratos Kratos's identities (scripts/user.ts adapts them).
 */
export type AccountDirectory = Pick<UserStore, 'findByEmail' | 'findById' | 'removeById'>;

export interface AccountRemovalOptions {
  db: Db;
  users: AccountDirectory;
  /** Hydra's admin API: where consents (with their tokens) and login sessions end. */
  hydra: Pick<HydraAdmin, 'revokeConsentSessions' | 'revokeLoginSessions'>;
  /** The shared removed-subjects table. */
  removed: RemovedSubjectsStore;
  log: Logger;
  /**
   * Told as soon as a removal is recorded, before Hydra is called: a server
   * process refuses the subject at once and closes its open MCP sessions.
   */
  onRecorded?: (sub: string) => void | Promise<void>;
  /**
   * Connected accounts: tell each provider to revoke what the person granted
   * (RFC 7009), before their rows are deleted. Best effort: a provider that
   * cannot be told does not stop the removal (the tokens are deleted here anyway).
   */
  revokeConnections?: (sub: string) => Promise<void>;
  now?: () => Date;
  /** For tests: runs after each step; throwing here stands in for a crash at that point. */
  afterStep?: (step: RemovalStep, sub: string) => void | Promise<void>;
}

export type RemoveAccount = (target: RemovalTarget) => Promise<RemovalReport>;

/** SHA-256 of the normalised email: lets a re-run by email find a finished removal without keeping the address. */
export function emailDigest(email: string): string {
  return createHash('sha256').update(normaliseEmail(email)).digest('hex');
}

/**
 * The one account-removal path (the `npm run user -- remove` CLI and the
 * "Delete my account" page both call it). In order, each step idempotent:
 *
 * 1. record the subject as removed: from here every replica refuses its
 *    tokens (within its refresh interval; this process at once);
 * 2. revoke every Hydra consent of the subject, which deletes the access and
 *    refresh tokens issued under them, and every login session;
 * 3. delete every row keyed by the subject in every store table;
 * 4. delete the account row, last, so a crash before it leaves the account
 *    findable by email and a re-run finishes the job;
 * 5. revoke at Hydra again: a sign-in that completed while the account row
 *    still existed (during steps 2–4) got a new login session and consent,
 *    and with them tokens; with the row gone no new sign-in can succeed;
 * 6. mark the removal complete.
 */
export function createAccountRemoval(options: AccountRemovalOptions): RemoveAccount {
  const { db, users, hydra, removed, log } = options;
  const now = options.now ?? (() => new Date());
  const after = async (step: RemovalStep, sub: string) => options.afterStep?.(step, sub);

  /** The subject to remove, its account if it still has one, and the removal an earlier run recorded. */
  async function resolve(target: RemovalTarget) {
    let user: User | undefined;
    let earlier: RemovedSubject | undefined;
    if ('email' in target) {
      user = await users.findByEmail(target.email);
      earlier = user ? await removed.find(user.id) : await removed.findByEmailDigest(emailDigest(target.email));
      if (!user && !earlier) throw new UnknownAccountError(`no user with email ${normaliseEmail(target.email)}`);
    } else if ('deletedAccount' in target) {
      const sub = target.deletedAccount;
      if (typeof sub !== 'string' || !sub) throw new UserInputError('sub must be a non-empty string');
      [user, earlier] = await Promise.all([users.findById(sub), removed.find(sub)]);
      // Back again (or never gone): not this path's to remove.
      if (user) throw new UserInputError(`the account of ${sub} still exists`);
      return { sub, user, earlier };
    } else {
      if (typeof target.sub !== 'string' || !target.sub) throw new UserInputError('sub must be a non-empty string');
      [user, earlier] = await Promise.all([users.findById(target.sub), removed.find(target.sub)]);
      if (!user && !earlier) throw new UnknownAccountError(`no user with sub ${target.sub}`);
    }
    return { sub: (user?.id ?? earlier?.sub)!, user, earlier };
  }

  return async function removeAccount(target) {
    const { sub, user, earlier } = await resolve(target);
    const deleted = { ...Object.fromEntries(SUBJECT_TABLES.map((t) => [t, 0])), users: 0 } as RemovalReport['deleted'];
    if (earlier?.completedAt && !user) return { sub, outcome: 'nothing-left', deleted };

    // 1. First, so the refusal holds whatever happens next. (An earlier row keeps its time.)
    //    An account deleted elsewhere left no email to find its removal by.
    if (!earlier) await removed.record(sub, user ? emailDigest(user.email) : '', now());
    await options.onRecorded?.(sub);
    await after('recorded', sub);
    const step = async (name: Exclude<RemovalStep, 'recorded'>, run: () => Promise<void>) => {
      try {
        await run();
        await after(name, sub);
      } catch (e) {
        if (e instanceof RemovalIncompleteError) throw e;
        log.error('account removal stopped; run it again to finish', { sub, step: name, error: e });
        throw new RemovalIncompleteError(sub, name, e);
      }
    };
    // 2. Hydra deletes the tokens of every consent it revokes (refresh tokens included);
    //    ending login sessions stops a remembered browser from signing in again.
    const revokeAtHydra = async () => {
      await hydra.revokeConsentSessions(sub);
      await hydra.revokeLoginSessions(sub);
    };
    await step('hydra', revokeAtHydra);
    // 3. Every row keyed by the subject, in one transaction (connected accounts revoked at their providers first).
    await step('data', async () => {
      await options.revokeConnections?.(sub).catch((e: unknown) => log.warn('account removal: connected accounts not revoked at their providers', { sub, error: e }));
      Object.assign(deleted, await deleteSubjectData(db, sub));
    });
    // 4. The account, last.
    await step('user', async () => {
      deleted.users = (await users.removeById(sub)) ? 1 : 0;
    });
    // 5. Whatever a sign-in during steps 2–4 was granted.
    await step('hydra-again', revokeAtHydra);
    await step('completed', async () => removed.complete(sub, now()));
    const outcome = earlier ? 'finished' : 'removed';
    log.info('account removed', { sub, outcome, deleted });
    return { sub, outcome, deleted };
  };
}
