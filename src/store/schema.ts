import type { ColumnType, Generated } from 'kysely';

/** Table layout. Every tool-data table carries `sub`, the owner's subject. */
export interface Database {
  users: UsersTable;
  notes: NotesTable;
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
  seq: Generated<number>;
}
