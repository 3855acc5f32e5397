import type { Db } from './database.js';

/** One removal, as the `removed_subjects` table records it. */
export interface RemovedSubject {
  sub: string;
  /** When the removal began (ISO-8601): the subject's tokens are refused from then on. */
  removedAt: string;
  /**
   * When every step was done (ISO-8601); undefined while the removal is
   * unfinished. The refusal window runs from here: tokens issued while an
   * unfinished removal was re-run live on past its start.
   */
  completedAt?: string;
}

/**
 * The list of removed subjects. A removal writes its row first, so every
 * replica reading this table refuses the subject's tokens even if the
 * removal stops half-way; the row is marked complete when the last step is
 * done, and pruned some time after.
 */
export interface RemovedSubjectsStore {
  /** Record `sub` as removed at `at`. A second call keeps the first row (and its time). */
  record(sub: string, emailDigest: string, at: Date): Promise<RemovedSubject>;
  find(sub: string): Promise<RemovedSubject | undefined>;
  /** The newest removal recorded for an email digest. */
  findByEmailDigest(emailDigest: string): Promise<RemovedSubject | undefined>;
  complete(sub: string, at: Date): Promise<void>;
  /** Subjects to refuse now: completed at or after `since`, or not yet completed (whatever their age). */
  refusedSince(since: Date): Promise<RemovedSubject[]>;
  /** Delete removals completed before `before`; returns how many. Unfinished ones stay. */
  prune(before: Date): Promise<number>;
}

type Row = { sub: string; removed_at: string; completed_at: string | null };
const toRemoved = (r: Row): RemovedSubject => ({
  sub: r.sub,
  removedAt: r.removed_at,
  ...(r.completed_at ? { completedAt: r.completed_at } : {}),
});
const COLUMNS = ['sub', 'removed_at', 'completed_at'] as const;

export function removedSubjectsStore(db: Db): RemovedSubjectsStore {
  return {
    async record(sub, emailDigest, at) {
      if (!sub) throw new TypeError('removedSubjectsStore.record: sub must be a non-empty string');
      await db
        .insertInto('removed_subjects')
        .values({ sub, email_digest: emailDigest, removed_at: at.toISOString(), completed_at: null })
        .onConflict((oc) => oc.column('sub').doNothing())
        .execute();
      return toRemoved(await db.selectFrom('removed_subjects').select(COLUMNS).where('sub', '=', sub).executeTakeFirstOrThrow());
    },
    async find(sub) {
      const row = await db.selectFrom('removed_subjects').select(COLUMNS).where('sub', '=', sub).executeTakeFirst();
      return row && toRemoved(row);
    },
    async findByEmailDigest(emailDigest) {
      const row = await db
        .selectFrom('removed_subjects')
        .select(COLUMNS)
        .where('email_digest', '=', emailDigest)
        .orderBy('removed_at', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row && toRemoved(row);
    },
    async complete(sub, at) {
      await db.updateTable('removed_subjects').set({ completed_at: at.toISOString() }).where('sub', '=', sub).execute();
    },
    async refusedSince(since) {
      // ISO-8601 UTC text sorts as time does, in both dialects.
      const rows = await db
        .selectFrom('removed_subjects')
        .select(COLUMNS)
        .where((eb) => eb.or([eb('completed_at', '>=', since.toISOString()), eb('completed_at', 'is', null)]))
        .execute();
      return rows.map(toRemoved);
    },
    async prune(before) {
      const r = await db
        .deleteFrom('removed_subjects')
        .where('completed_at', '<', before.toISOString())
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    },
  };
}
