import type { ColumnType, Generated } from 'kysely';

/** Table layout. Every tool-data table carries `sub`, the owner's subject. */
export interface Database {
  users: UsersTable;
  notes: NotesTable;
  records: RecordsTable;
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
