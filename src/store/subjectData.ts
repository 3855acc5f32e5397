import type { Db } from './database.js';
import type { Database } from './schema.js';

/**
 * Every table of data keyed by a person's `sub`, besides `users` itself (the
 * account) and `removed_subjects` (the removal's own record). A new table
 * with a `sub` column belongs here, or removing a person leaves it behind; the
 * store contract test checks this list against the live schema.
 */
export const SUBJECT_TABLES = ['notes', 'records', 'connections', 'connect_states'] as const satisfies readonly (keyof Database)[];
export type SubjectTable = (typeof SUBJECT_TABLES)[number];

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
