import type { Db } from './database.js';
import { type NotesStore, notesStoreFor } from './notesStore.js';
import { type RecordsStore, recordsStoreFor } from './recordsStore.js';

/**
 * The data one user's tool calls may touch. It is built for a single `sub`
 * from the verified token, so a tool cannot name anyone else's rows: the
 * scoping is in the types, not a convention.
 */
export interface ScopedStore {
  readonly notes: NotesStore;
  /** A named collection of this user's JSON records (no migration needed). */
  records(collection: string): RecordsStore;
}

export function scopedStoreFor(db: Db, sub: string): ScopedStore {
  return {
    notes: notesStoreFor(db, sub),
    records: (collection) => recordsStoreFor(db, sub, collection),
  };
}
