import type { Db } from './database.js';
import { type NotesStore, notesStoreFor } from './notesStore.js';

/**
 * The data one user's tool calls may touch. It is built for a single `sub`
 * from the verified token, so a tool cannot name anyone else's rows.
 */
export interface ScopedStore {
  readonly notes: NotesStore;
}

export function scopedStoreFor(db: Db, sub: string): ScopedStore {
  return { notes: notesStoreFor(db, sub) };
}
