import type { Db } from './database.js';

/**
 * IDENTITY=kratos: the Kratos identities that signed in here. Kratos tells no
 * one when an identity is deleted (its admin API has no hook for it), so the
 * identity sweep (src/account/identitySweep.ts) asks Kratos about each of
 * these. Deleted with the rest of a person's rows when they are removed.
 */
export interface KratosSubjectsStore {
  /** Note that `sub` signed in at `at` (a second call only moves last_seen_at). */
  record(sub: string, at: Date): Promise<void>;
  /** Up to `limit` subjects after `after`, in sub order (keyset paging for the sweep). */
  page(after: string | undefined, limit: number): Promise<string[]>;
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
      let q = db.selectFrom('kratos_subjects').select('sub');
      if (after !== undefined) q = q.where('sub', '>', after);
      return (await q.orderBy('sub').limit(limit).execute()).map((r) => r.sub);
    },
  };
}
