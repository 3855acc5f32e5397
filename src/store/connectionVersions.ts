import type SQLite from 'better-sqlite3';
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

/** Most (sub, provider) keys one select names; a larger batch is read in several. */
const MOST_KEYS = 32;

interface Key {
  sub: string;
  provider: string;
}
type Row = ConnectionVersion & Key;
interface Waiting extends Key {
  resolve: (version: ConnectionVersion | undefined) => void;
  reject: (error: unknown) => void;
}

/**
 * The version read of every credential use. On SQLite, every use begun in one
 * turn of the event loop is answered by one select, run after all of them
 * have begun (setImmediate): each still sees every change committed before it
 * began (a revocation, a removal, another process's write), and a busy server
 * enters SQLite once a turn instead of once a call. Entering SQLite is the
 * cost, not the row (measured in bench/: a select of the status alone, or of
 * PRAGMA data_version, costs a call as much as this one; skipping it, which
 * would serve a revoked credential, was worth 5 to 9 % of the credential
 * tool's throughput and CPU). The select names each (sub, provider) it
 * reads, and each answer goes to the uses of that very key.
 *
 * The statements are prepared once and run synchronously on the server's
 * connection (Kysely prepares a statement anew on every execute). Like the
 * fair-use take (src/store/tokenBuckets.ts) they run past Kysely's connection
 * lock: a read inside one of the few transactions (a data removal) sees that
 * transaction's rows, and a deleted row means "not connected", never a stale
 * credential.
 */
export function connectionVersions(db: Db, dialect: Dialect, store: Pick<ConnectionsStore, 'get'>): ReadConnectionVersion {
  const sqlite = dialect === 'sqlite' ? sqliteHandleOf(db) : undefined;
  if (!sqlite) return versionsFromStore(store);
  const select = selectsFor(db, sqlite);
  let waiting: Waiting[] = [];

  const answer = () => {
    const batch = waiting;
    waiting = [];
    // Each key once, found by provider then sub (exact strings, nothing joined).
    const keys: Key[] = [];
    const named = new Map<string, Set<string>>();
    for (const w of batch) {
      const subs = inner(named, w.provider, () => new Set<string>());
      if (subs.has(w.sub)) continue;
      subs.add(w.sub);
      keys.push(w);
    }
    const rows = new Map<string, Map<string, Row>>();
    try {
      for (let at = 0; at < keys.length; at += MOST_KEYS) {
        for (const row of select(keys.slice(at, at + MOST_KEYS))) inner(rows, row.provider, () => new Map<string, Row>()).set(row.sub, row);
      }
    } catch (e) {
      for (const w of batch) w.reject(e);
      return;
    }
    // Each use gets the row of exactly its own key.
    for (const w of batch) {
      const row = rows.get(w.provider)?.get(w.sub);
      w.resolve(row && { status: row.status, sealed: row.sealed });
    }
  };

  return (sub, provider) =>
    new Promise((resolve, reject) => {
      if (waiting.length === 0) setImmediate(answer);
      waiting.push({ sub, provider, resolve, reject });
    });
}

/** The value at `key`, made first when there is none. */
function inner<V>(map: Map<string, V>, key: string, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = make()));
  return value;
}

/**
 * One select for up to MOST_KEYS distinct keys: compiled by Kysely and
 * prepared once per power of two, the first key repeated up to it (a key
 * named twice is one row).
 */
function selectsFor(db: Db, sqlite: SQLite.Database): (keys: readonly Key[]) => Row[] {
  const prepared = new Map<number, SQLite.Statement<string[], Row>>();
  const statement = (size: number) => {
    let s = prepared.get(size);
    if (!s) {
      const { sql } = db
        .selectFrom('connections')
        .select(['sub', 'provider', 'status', 'sealed'])
        .where((eb) => eb.or(Array.from({ length: size }, () => eb.and([eb('sub', '=', ''), eb('provider', '=', '')]))))
        .compile();
      s = sqlite.prepare<string[], Row>(sql);
      prepared.set(size, s);
    }
    return s;
  };
  return (keys) => {
    let size = 1;
    while (size < keys.length) size *= 2;
    const params: string[] = [];
    for (let i = 0; i < size; i++) {
      const k = keys[i] ?? keys[0]!;
      params.push(k.sub, k.provider);
    }
    return statement(size).all(...params);
  };
}
