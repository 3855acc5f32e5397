import { randomUUID } from 'node:crypto';
import type { Db } from './database.js';

export interface Note {
  id: string;
  title: string;
  body: string;
  createdAt: string;
}

/** Where a page of notes ends: the sort key of its last note. */
export interface NotePosition {
  createdAt: string;
  id: string;
}

export type NoteOrder = 'newest' | 'oldest';

/** Largest page `page()` reads. */
export const MAX_NOTES_PAGE = 1000;

export interface NotesPage {
  notes: Note[];
  /** Position to continue from; absent on the last page. */
  next?: NotePosition;
}

/**
 * Notes of one user. The subject is fixed when the object is made, so no
 * method can reach another user's rows: every query below is keyed by `sub`.
 */
export interface NotesStore {
  add(input: { title: string; body: string }): Promise<Note>;
  list(opts?: { limit?: number }): Promise<Note[]>;
  /**
   * One page in (created_at, id) order, newest first by default, starting
   * after `after` (exclusive). A keyset read: it costs the same on page 1 and
   * page 1000, and reads at most `limit` + 1 rows (the extra one only tells
   * whether another page follows).
   */
  page(opts: { limit: number; order?: NoteOrder; after?: NotePosition }): Promise<NotesPage>;
  get(id: string): Promise<Note | undefined>;
  /** True when a note of this user was deleted. */
  delete(id: string): Promise<boolean>;
}

export function notesStoreFor(db: Db, sub: string): NotesStore {
  if (!sub) throw new TypeError('notesStoreFor: sub must be a non-empty string');
  const cols = ['id', 'title', 'body', 'created_at'] as const;
  const toNote = (r: { id: string; title: string; body: string; created_at: string }): Note => ({
    id: r.id,
    title: r.title,
    body: r.body,
    createdAt: r.created_at,
  });
  return {
    async add({ title, body }) {
      const row = await db
        .insertInto('notes')
        .values({ id: randomUUID(), sub, title, body, created_at: new Date().toISOString() })
        .returning(cols)
        .executeTakeFirstOrThrow();
      return toNote(row);
    },
    async list({ limit = 100 } = {}) {
      const rows = await db.selectFrom('notes').select(cols).where('sub', '=', sub).orderBy('seq').limit(limit).execute();
      return rows.map(toNote);
    },
    async page({ limit, order = 'newest', after }) {
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_NOTES_PAGE) {
        throw new RangeError(`notes page limit must be an integer from 1 to ${MAX_NOTES_PAGE}`);
      }
      const dir = order === 'newest' ? 'desc' : 'asc';
      let q = db.selectFrom('notes').select(cols).where('sub', '=', sub);
      // Row-value comparison: served by the (sub, created_at, id) index in both
      // dialects, and the id breaks ties between notes written in the same millisecond.
      if (after) q = q.where((eb) => eb(eb.refTuple('created_at', 'id'), dir === 'desc' ? '<' : '>', eb.tuple(after.createdAt, after.id)));
      const rows = await q.orderBy('created_at', dir).orderBy('id', dir).limit(limit + 1).execute();
      const notes = rows.slice(0, limit).map(toNote);
      const last = notes[notes.length - 1];
      return rows.length > limit && last ? { notes, next: { createdAt: last.createdAt, id: last.id } } : { notes };
    },
    async get(id) {
      const row = await db.selectFrom('notes').select(cols).where('sub', '=', sub).where('id', '=', id).executeTakeFirst();
      return row && toNote(row);
    },
    async delete(id) {
      const res = await db.deleteFrom('notes').where('sub', '=', sub).where('id', '=', id).executeTakeFirst();
      return res.numDeletedRows > 0n;
    },
  };
}
