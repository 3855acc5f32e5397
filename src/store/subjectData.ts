import type { Db } from './database.js';
import type { Database } from './schema.js';

/**
 * Every table of data keyed by a person's `sub`, besides `users` itself (the
 * account) and `removed_subjects` (the removal's own record). A new table
 * with a `sub` column belongs here, or removing a person leaves it behind; the
 * store contract test checks this list against the live schema.
 */
export const SUBJECT_TABLES = ['notes', 'records', 'connections', 'connect_states', 'kratos_subjects', 'mcp_sessions', 'mcp_stream_events'] as const satisfies readonly (keyof Database)[];
export type SubjectTable = (typeof SUBJECT_TABLES)[number];

/**
 * Tables with a `sub` column that a removal deliberately keeps: the audit
 * trail outlives the account (an operator must still be able to answer "what
 * was done for this sub"), holds no content, and is deleted by its own
 * retention (AUDIT_RETENTION_DAYS). Not in the data export either, which hands
 * back what a removal deletes; the person reads it on /account/activity.
 */
export const RETAINED_SUBJECT_TABLES = ['audit_events'] as const satisfies readonly (keyof Database)[];

/**
 * Delete every row of `sub` in every subject table, in one transaction.
 * Returns how many rows each table lost (all zero when there were none, so
 * running it again is harmless).
 */
export async function deleteSubjectData(db: Db, sub: string): Promise<Record<SubjectTable, number>> {
  if (!sub) throw new TypeError('deleteSubjectData: sub must be a non-empty string');
  return db.transaction().execute(async (trx) => {
    const counts = {} as Record<SubjectTable, number>;
    for (const table of SUBJECT_TABLES) {
      const r = await trx.deleteFrom(table).where('sub', '=', sub).executeTakeFirst();
      counts[table] = Number(r.numDeletedRows);
    }
    return counts;
  });
}
