import type { ColumnType, Generated } from 'kysely';

/** Table layout. Every tool-data table carries `sub`, the owner's subject. */
export interface Database {
  users: UsersTable;
  notes: NotesTable;
  records: RecordsTable;
  removed_subjects: RemovedSubjectsTable;
  rate_counters: RateCountersTable;
}

export interface UsersTable {
  /** Stable subject id (UUID) that becomes the token's `sub`. */
  id: string;
  /** Normalised (trimmed, lower-case) email; unique. */
  email: string;
  /** scrypt hash in the self-describing format of src/login/password.ts. */
  password_hash: string;
  created_at: ColumnType<string, string | undefined, never>;
}

export interface NotesTable {
  id: string;
  sub: string;
  title: string;
  body: string;
  created_at: ColumnType<string, string | undefined, never>;
  seq: Generated<number | string>;
}

/** One JSON value per (sub, collection, key): storage for tools without their own table. */
export interface RecordsTable {
  sub: string;
  collection: string;
  key: string;
  /** JSON text. */
  value: string;
  updated_at: string;
}

/**
 * One row per removed account: written first by a removal, so every replica
 * refuses the subject's tokens, and kept a while after it completes.
 */
export interface RemovedSubjectsTable {
  sub: string;
  /** SHA-256 (hex) of the normalised email, so a re-run by email finds the removal without keeping the address. */
  email_digest: string;
  /** ISO-8601; when the removal began (tokens refused from then on). */
  removed_at: string;
  /** ISO-8601 once every step is done; null while the removal is unfinished. */
  completed_at: string | null;
}

/**
 * Fixed-window hit counters shared by every replica (sign-in throttle,
 * endpoint rate limits). Keys are namespaced by their user ("login:", "rl:");
 * a row whose window has ended counts as absent and is swept.
 */
export interface RateCountersTable {
  key: string;
  hits: number;
  /** End of the current window, milliseconds since the epoch (PostgreSQL bigint comes back as text). */
  reset_at: ColumnType<number | string, number, number>;
}
