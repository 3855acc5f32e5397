import { randomUUID } from 'node:crypto';
import type { Db } from './database.js';

export interface Note {
  id: string;
  title: string;
  body: string;
  createdAt: string;
}

/**
 * Notes of one user. The subject is fixed when the object is made, so no
 * method can reach another user's rows: every query below is keyed by `sub`.
 */
export interface NotesStore {
  add(input: { title: string; body: string }): Promise<Note>;
  list(opts?: { limit?: number }): Promise<Note[]>;
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
