import type { HydraAdmin } from '../hydra/index.js';
import type { Logger } from '../log/logger.js';
import type { KratosSubjectsStore } from '../store/kratosSubjectsStore.js';

export interface AccountSuspensionOptions {
  /** Where a suspension is recorded (the `kratos_subjects` row every replica reads). */
  subjects: Pick<KratosSubjectsStore, 'suspend' | 'markRevoked' | 'reactivate'>;
  /** Hydra's admin API: where consents (with their access and refresh tokens) and login sessions end. */
  hydra: Pick<HydraAdmin, 'revokeConsentSessions' | 'revokeLoginSessions'>;
  /** End the identity's sessions at the identity service (Kratos), so that a reactivation asks for the password again. */
  endIdentitySessions: (sub: string) => Promise<unknown>;
  /** Told as soon as a suspension is recorded, before Hydra is called: this process refuses the subject at once. */
  onSuspended?: (sub: string) => void | Promise<void>;
  /** Told when this process lifted a suspension at `at`: tokens issued before then stay refused. */
  onReactivated?: (sub: string, at: Date) => void | Promise<void>;
  log: Logger;
  now?: () => Date;
}

/**
 * An identity deactivated in Kratos loses its access here as a deleted one
 * does, but keeps its data: Kratos already refuses it sign-in, yet the
 * refresh tokens it holds never pass sign-in or consent again, and each
 * rotation renews their life. In order, each step safe to run again and on
 * several replicas at once:
 *
 * 1. record the suspension: from here every replica refuses the subject's
 *    tokens (within its refresh interval; this process at once);
 * 2. revoke every Hydra consent of the subject (which deletes the access and
 *    refresh tokens issued under them) and every login session, and end its
 *    Kratos sessions;
 * 3. mark those revocations done (until then each sweep tries again).
 *
 * Reactivation lifts the refusal for new tokens only: those issued before it
 * stay refused for the retention period (src/account/removedSubjects.ts).
 */
export function createAccountSuspension(options: AccountSuspensionOptions) {
  const { subjects, hydra, log } = options;
  const now = options.now ?? (() => new Date());
  return {
    async suspend(sub: string): Promise<void> {
      const recorded = await subjects.suspend(sub, now());
      await options.onSuspended?.(sub);
      await hydra.revokeConsentSessions(sub);
      await hydra.revokeLoginSessions(sub);
      await options.endIdentitySessions(sub);
      await subjects.markRevoked(sub, now());
      log.info('identity deactivated in Kratos: access ended here, data kept', { sub, recorded });
    },
    async reactivate(sub: string): Promise<void> {
      const at = now();
      // Another replica may have lifted it first: its time stands, and this process reads it on its next refresh.
      if (!(await subjects.reactivate(sub, at))) return;
      await options.onReactivated?.(sub, at);
      log.info('identity reactivated in Kratos: new sign-ins work again', { sub });
    },
  };
}

export type AccountSuspension = ReturnType<typeof createAccountSuspension>;
