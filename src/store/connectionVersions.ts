import type { ConnectionStatus, ConnectionsStore } from './connectionsStore.js';
import { type Db, type Dialect, sqliteHandleOf } from './database.js';

/**
 * What a use of a stored credential checks against the shared database before
 * it serves the opened copy it holds in memory: whether the row still exists,
 * its status, and its ciphertext. A ciphertext is sealed with a random IV
 * (src/connections/sealing.ts), so every write that replaces the credential
 * (a refresh, a new grant, re-encryption) changes it: an unchanged one means
 * the same credential, whatever the replicas' clocks say. A disconnect or an
 * account removal deletes the row; a refused refresh marks it needs_reconnect.
 */
export interface ConnectionVersion {
  status: ConnectionStatus;
  sealed: string;
}

/** The row's version now, or undefined when there is no such row. */
export type ReadConnectionVersion = (sub: string, provider: string) => ConnectionVersion | undefined | Promise<ConnectionVersion | undefined>;

/** Through the store: one query builder round trip (PostgreSQL, where the network round trip is the cost). */
export const versionsFromStore =
  (store: Pick<ConnectionsStore, 'get'>): ReadConnectionVersion =>
  (sub, provider) =>
    store.get(sub, provider);

/**
 * The version read of every credential use. On SQLite the select is prepared
 * once and run synchronously on the server's connection (Kysely prepares a
 * statement anew on every execute: most of the read's cost, measured in
 * bench/ as most of the credential tool's difference to the same tool
 * without). Like the fair-use take (src/store/tokenBuckets.ts) it runs past
 * Kysely's connection lock: a read inside one of the few transactions (a data
 * removal) sees that transaction's rows, and a deleted row means "not
 * connected", never a stale credential.
 */
export function connectionVersions(db: Db, dialect: Dialect, store: Pick<ConnectionsStore, 'get'>): ReadConnectionVersion {
  const sqlite = dialect === 'sqlite' ? sqliteHandleOf(db) : undefined;
  if (!sqlite) return versionsFromStore(store);
  const { sql } = db.selectFrom('connections').select(['status', 'sealed']).where('sub', '=', '').where('provider', '=', '').compile();
  const statement = sqlite.prepare<[string, string], ConnectionVersion>(sql);
  return (sub, provider) => statement.get(sub, provider);
}
