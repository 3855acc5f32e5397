/**
 * Keyset pagination: page 1 and page 1000 of one person's 100,000 notes cost
 * the same (notes_list reads `limit` + 1 rows from the (sub, created_at, id)
 * index wherever the cursor points). An OFFSET query to the same page is
 * timed beside them, as the contrast that shows the measurement can tell.
 * In process, on an embedded SQLite file, as `npm start` runs it.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { sql } from 'kysely';
import { openDatabase } from '../src/store/database.js';
import { notesStoreFor, type NotePosition } from '../src/store/notesStore.js';
import type { PaginationResult } from './results.js';
import { median } from './stats.js';

const SUB = 'bench-pagination-user';

/** µs per call of each of `fns`, batch by batch in turn (so drift hits all alike); median and range per fn. */
async function alternate(fns: (() => Promise<unknown>)[], perBatch: number, batches: number) {
  const runs: number[][] = fns.map(() => []);
  for (const fn of fns) for (let i = 0; i < 20; i++) await fn();
  for (let b = 0; b < batches; b++) {
    for (const [k, fn] of fns.entries()) {
      const t0 = performance.now();
      for (let i = 0; i < perBatch; i++) await fn();
      runs[k]!.push(((performance.now() - t0) * 1000) / perBatch);
    }
  }
  return runs;
}

export async function paginationCost(dir: string, opts: { notes: number; pageSize: number; page: number }): Promise<PaginationResult> {
  const db = await openDatabase({ kind: 'sqlite', path: join(dir, 'pagination.sqlite') });
  try {
    // One transaction, many rows per statement: 100,000 notes in a few seconds.
    const start = Date.parse('2026-01-01T00:00:00Z');
    await db.transaction().execute(async (trx) => {
      for (let i = 0; i < opts.notes; i += 500) {
        const rows = Array.from({ length: Math.min(500, opts.notes - i) }, (_, j) => ({
          id: randomUUID(),
          sub: SUB,
          title: `note ${i + j}`,
          body: 'x'.repeat(64),
          created_at: new Date(start + (i + j) * 1000).toISOString(),
        }));
        await trx.insertInto('notes').values(rows).execute();
      }
    });
    const notes = notesStoreFor(db, SUB);
    const skip = (opts.page - 1) * opts.pageSize;
    // Page N starts after the note just before it, newest first: the position its cursor carries.
    const before = await db
      .selectFrom('notes')
      .select(['created_at', 'id'])
      .where('sub', '=', SUB)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .offset(skip - 1)
      .limit(1)
      .executeTakeFirstOrThrow();
    const after: NotePosition = { createdAt: before.created_at, id: before.id };
    const first = () => notes.page({ limit: opts.pageSize });
    const deep = () => notes.page({ limit: opts.pageSize, after });
    const offset = () =>
      sql`select id, title, body, created_at from notes where sub = ${SUB} order by created_at desc, id desc limit ${opts.pageSize} offset ${skip}`.execute(db);
    // The deep page really is page N: same rows as OFFSET gives.
    const [viaCursor, viaOffset] = [await deep(), await offset()];
    if (viaCursor.notes[0]?.id !== (viaOffset.rows[0] as { id: string } | undefined)?.id) throw new Error('pagination bench: cursor and OFFSET disagree on the page');
    const [p1, pN, off] = await alternate([first, deep, offset], 50, 9);
    const ratios = p1!.map((t, i) => pN![i]! / t);
    return {
      notes: opts.notes,
      pageSize: opts.pageSize,
      page: opts.page,
      firstPageMicroseconds: median(p1!),
      deepPageMicroseconds: median(pN!),
      offsetMicroseconds: median(off!),
      ratio: median(ratios),
      ratioRange: [Math.min(...ratios), Math.max(...ratios)],
    };
  } finally {
    await db.destroy();
  }
}
