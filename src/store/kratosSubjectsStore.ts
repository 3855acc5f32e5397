import type { Db } from './database.js';

/** An identity that signed in here, as the identity sweep sees it. */
export interface KratosSubject {
  sub: string;
  /** ISO-8601; set while the identity is suspended (deactivated in Kratos). */
  suspendedAt?: string;
  /** ISO-8601; set once the current suspension's revocations are done. */
  revokedAt?: string;
}

/** What the refusal list needs: who is suspended, and who was reactivated within the window. */
export interface Suspensions {
  /** Every token of these subjects is refused. */
  suspended: string[];
  /** Reactivated at or after `since`: their tokens issued before `at` (ISO-8601) are refused. */
  reactivated: { sub: string; at: string }[];
}

/**
 * IDENTITY=kratos: the Kratos identities that signed in here. Kratos tells no
 * one when an identity is deleted or deactivated (its admin API has no hook
 * for it), so the identity sweep (src/account/identitySweep.ts) asks Kratos
 * about each of these, and records a deactivation here as a suspension.
 * Deleted with the rest of a person's rows when they are removed.
 */
export interface KratosSubjectsStore {
  /** Note that `sub` signed in at `at` (a second call only moves last_seen_at). */
  record(sub: string, at: Date): Promise<void>;
  /** Up to `limit` subjects after `after`, in sub order (keyset paging for the sweep). */
  page(after: string | undefined, limit: number): Promise<KratosSubject[]>;
  /** Suspend `sub` from `at`; true when this call did (a suspension already recorded keeps its time). */
  suspend(sub: string, at: Date): Promise<boolean>;
  /** The current suspension's revocations are done. */
  markRevoked(sub: string, at: Date): Promise<void>;
  /** Lift `sub`'s suspension at `at`; true when this call did (one not suspended is left alone). */
  reactivate(sub: string, at: Date): Promise<boolean>;
  /** Suspended subjects, and those reactivated at or after `since`. */
  suspensions(since: Date): Promise<Suspensions>;
}

export function kratosSubjectsStore(db: Db): KratosSubjectsStore {
  return {
    async record(sub, at) {
      if (!sub) throw new TypeError('kratosSubjectsStore.record: sub must be a non-empty string');
      const when = at.toISOString();
      await db
        .insertInto('kratos_subjects')
        .values({ sub, first_seen_at: when, last_seen_at: when })
        .onConflict((oc) => oc.column('sub').doUpdateSet({ last_seen_at: when }))
        .execute();
    },
    async page(after, limit) {
      let q = db.selectFrom('kratos_subjects').select(['sub', 'suspended_at', 'revoked_at']);
      if (after !== undefined) q = q.where('sub', '>', after);
      return (await q.orderBy('sub').limit(limit).execute()).map((r) => ({
        sub: r.sub,
        ...(r.suspended_at ? { suspendedAt: r.suspended_at } : {}),
        ...(r.revoked_at ? { revokedAt: r.revoked_at } : {}),
      }));
    },
    async suspend(sub, at) {
      // Conditional update: on several replicas at once, one suspension (the first) is recorded.
      const r = await db
        .updateTable('kratos_subjects')
        .set({ suspended_at: at.toISOString(), revoked_at: null })
        .where('sub', '=', sub)
        .where('suspended_at', 'is', null)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },
    async markRevoked(sub, at) {
      await db.updateTable('kratos_subjects').set({ revoked_at: at.toISOString() }).where('sub', '=', sub).where('suspended_at', 'is not', null).execute();
    },
    async reactivate(sub, at) {
      const r = await db
        .updateTable('kratos_subjects')
        .set({ suspended_at: null, revoked_at: null, reactivated_at: at.toISOString() })
        .where('sub', '=', sub)
        .where('suspended_at', 'is not', null)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },
    async suspensions(since) {
      const [suspended, reactivated] = await Promise.all([
        db.selectFrom('kratos_subjects').select('sub').where('suspended_at', 'is not', null).execute(),
        // ISO-8601 UTC text sorts as time does, in both dialects.
        db.selectFrom('kratos_subjects').select(['sub', 'reactivated_at']).where('reactivated_at', '>=', since.toISOString()).execute(),
      ]);
      return { suspended: suspended.map((r) => r.sub), reactivated: reactivated.map((r) => ({ sub: r.sub, at: r.reactivated_at! })) };
    },
  };
}
