import type { Logger } from '../log/logger.js';
import type { KratosSubjectsStore } from '../store/kratosSubjectsStore.js';
import type { RemoveAccount } from './accountRemoval.js';
import type { AccountSuspension } from './accountSuspension.js';

/** What Kratos says of an identity: `gone` when it has none with that id. */
export type IdentityState = 'active' | 'inactive' | 'gone';

export interface IdentitySweepOptions {
  /** The identities that signed in here. */
  subjects: KratosSubjectsStore;
  /** Whether Kratos still has this identity, and whether it is active; throws when Kratos cannot say (then nothing is changed). */
  stateOf: (sub: string) => Promise<IdentityState>;
  /** Whether Kratos has any identity at all: a guard against a wrong KRATOS_ADMIN_URL or an emptied database. */
  hasAnyIdentity: () => Promise<boolean>;
  /** The one removal path: ends Hydra's consents and sessions, refuses the tokens, deletes the data. */
  removeAccount: RemoveAccount;
  /** Deactivated: access ended as by a removal, data kept; reactivated: new sign-ins work again. */
  suspension: Pick<AccountSuspension, 'suspend' | 'reactivate'>;
  log: Logger;
  /** How often the sweep runs (ms); 0: never on its own (runOnce only). */
  everyMs: number;
  /** Most removals in one run; the rest wait for the next (a mass deletion is more likely a mistake than a decision). */
  maxRemovalsPerRun?: number;
  pageSize?: number;
}

export interface SweepReport {
  checked: number;
  removed: string[];
  /** Deactivated identities whose access this run ended (or finished ending). */
  suspended: string[];
  /** Suspended identities found active again: their suspension is lifted (by this run, or a replica's just before). */
  reactivated: string[];
  /** Why the run stopped early, when it did. */
  stopped?: 'kratos-unavailable' | 'no-identities' | 'limit';
}

/**
 * IDENTITY=kratos: an identity deleted or deactivated in Kratos (admin API,
 * console, another tool) loses its access here too. Kratos calls no one when
 * that happens, so this asks, every `everyMs`, about each identity that
 * signed in here. For those Kratos no longer has it runs the account
 * removal: Hydra's consents (with their tokens) and login sessions revoked,
 * its tokens refused at once, its tool data and connected accounts deleted.
 * For those deactivated it suspends the account: the same revocations and
 * refusal, no data deleted; reactivated, the suspension is lifted. Safe on
 * every replica at once (each step is idempotent). Between sweeps such an
 * identity's access token lives at most until the next run or its expiry.
 */
export function createIdentitySweep(options: IdentitySweepOptions) {
  const { subjects, stateOf, removeAccount, log } = options;
  const maxRemovals = options.maxRemovalsPerRun ?? 100;
  const pageSize = options.pageSize ?? 200;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<SweepReport> | undefined;

  async function sweep(): Promise<SweepReport> {
    const report: SweepReport = { checked: 0, removed: [], suspended: [], reactivated: [] };
    const gone: string[] = [];
    const inactive: string[] = [];
    const active: string[] = [];
    let after: string | undefined;
    try {
      for (;;) {
        const page = await subjects.page(after, pageSize);
        for (const { sub, suspendedAt, revokedAt } of page) {
          report.checked++;
          const state = await stateOf(sub);
          if (state === 'gone') gone.push(sub);
          // Suspended and its revocations done: nothing left to do until it changes.
          else if (state === 'inactive' && !(suspendedAt && revokedAt)) inactive.push(sub);
          else if (state === 'active' && suspendedAt) active.push(sub);
        }
        if (page.length < pageSize) break;
        after = page[page.length - 1]!.sub;
      }
      if (gone.length && !(await options.hasAnyIdentity())) {
        log.error('identity sweep: Kratos has no identities at all; removing no one (check KRATOS_ADMIN_URL and Kratos\'s database)', { missing: gone.length });
        return { ...report, stopped: 'no-identities' };
      }
    } catch (e) {
      log.warn('identity sweep skipped: Kratos could not be asked', { error: e });
      return { ...report, stopped: 'kratos-unavailable' };
    }
    for (const sub of inactive) {
      try {
        await options.suspension.suspend(sub);
        report.suspended.push(sub);
      } catch (e) {
        // The suspension is recorded first: its tokens are refused already; the next run finishes it.
        log.error('identity sweep: suspension did not finish; the next run continues it', { sub, error: e });
      }
    }
    for (const sub of active) {
      try {
        await options.suspension.reactivate(sub);
        report.reactivated.push(sub);
      } catch (e) {
        log.error('identity sweep: reactivation did not finish; the next run continues it', { sub, error: e });
      }
    }
    for (const sub of gone.slice(0, maxRemovals)) {
      try {
        await removeAccount({ deletedAccount: sub });
        report.removed.push(sub);
        log.info('identity deleted in Kratos: access ended and data deleted here', { sub });
      } catch (e) {
        // The removal is recorded first: its tokens are refused already; the next run finishes it.
        log.error('identity sweep: removal did not finish; the next run continues it', { sub, error: e });
      }
    }
    if (gone.length > maxRemovals) {
      log.warn('identity sweep: more identities gone than one run removes; the rest follow in the next runs', { gone: gone.length, removed: report.removed.length });
      report.stopped = 'limit';
    }
    return report;
  }

  return {
    /** One sweep now (a run already going is joined, not doubled). */
    runOnce(): Promise<SweepReport> {
      running ??= sweep().finally(() => {
        running = undefined;
      });
      return running;
    },
    start() {
      if (timer || options.everyMs <= 0) return;
      timer = setInterval(() => void this.runOnce(), options.everyMs);
      // Never what keeps the process alive.
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}

export type IdentitySweep = ReturnType<typeof createIdentitySweep>;
