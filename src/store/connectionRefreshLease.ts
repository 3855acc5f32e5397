import { randomUUID } from 'node:crypto';
import { type Selectable, sql, type Updateable } from 'kysely';
import type { Db, Dialect } from './database.js';
import type { ConnectionsTable } from './schema.js';

/** A refresh lease not obtained in time, or lost before its holder wrote. */
export class ConnectionLockError extends Error {
  override name = 'ConnectionLockError';
}

export interface RefreshLeaseOptions {
  /** How long a lease lasts, ms. */
  leaseMs: number;
  /** Longest wait for another holder of the same row to finish, ms. */
  lockWaitMs: number;
}

type Row = Selectable<ConnectionsTable>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The refresh lease on one row of `connections` (ConnectionsStore.withRefreshLock):
 * an owner and an expiry column, claimed by one atomic UPDATE, so no
 * transaction or connection is held while the holder waits on the provider.
 * `fn` gets the row as it is under the lease and returns the columns to write
 * (undefined: nothing); the lease returns the row afterwards, or undefined
 * when there is no such row.
 */
export function refreshLease(db: Db, dialect: Dialect, { leaseMs, lockWaitMs }: RefreshLeaseOptions) {
  const byKey = (sub: string, provider: string) =>
    db.selectFrom('connections').selectAll().where('sub', '=', sub).where('provider', '=', provider);

  // The database's clock, epoch ms: every replica reads the same one, so skewed hosts agree on when a lease ends.
  const dbNow = dialect === 'postgres' ? sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint` : sql<number>`CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`;

  return async function leased(sub: string, provider: string, fn: (row: Row) => Promise<Updateable<ConnectionsTable> | undefined>): Promise<Row | undefined> {
    const owner = randomUUID();
    const started = performance.now();
    // Claim: one UPDATE, atomic in both dialects (PostgreSQL locks the row for that statement only; SQLite has one writer), succeeds only on a free or expired lease.
    for (let pause = 5; ; pause = Math.min(pause * 2, 200)) {
      const claim = await db
        .updateTable('connections')
        .set({ refresh_lease_until: sql<number>`${dbNow} + ${leaseMs}`, refresh_lease_owner: owner })
        .where('sub', '=', sub)
        .where('provider', '=', provider)
        .where((eb) => eb.or([eb('refresh_lease_until', 'is', null), eb('refresh_lease_until', '<=', dbNow)]))
        .executeTakeFirst();
      if (claim.numUpdatedRows > 0n) break;
      if (!(await byKey(sub, provider).executeTakeFirst())) return undefined;
      if (performance.now() - started >= lockWaitMs) {
        throw new ConnectionLockError(`connection ${provider} of ${sub}: another refresh held it for over ${lockWaitMs} ms`);
      }
      await sleep(pause);
    }
    try {
      // Read under the lease: a waiter sees what the previous holder wrote.
      const row = await byKey(sub, provider).executeTakeFirst();
      if (!row) return undefined;
      const values = await fn(row);
      if (!values) return row;
      const updated = await db
        .updateTable('connections')
        .set({ ...values, refresh_lease_until: null, refresh_lease_owner: null })
        .where('sub', '=', sub)
        .where('provider', '=', provider)
        .where('refresh_lease_owner', '=', owner)
        .returningAll()
        .executeTakeFirst();
      if (updated) return updated;
      // Deleted meanwhile: nothing to write to. Otherwise a reconnect replaced the row, or the lease ran out.
      if (!(await byKey(sub, provider).executeTakeFirst())) return undefined;
      throw new ConnectionLockError(`connection ${provider} of ${sub}: the refresh lease was lost before its result was written`);
    } finally {
      // Release, unless already released by the write above or taken over.
      await db
        .updateTable('connections')
        .set({ refresh_lease_until: null, refresh_lease_owner: null })
        .where('sub', '=', sub)
        .where('provider', '=', provider)
        .where('refresh_lease_owner', '=', owner)
        .execute();
    }
  };
}
