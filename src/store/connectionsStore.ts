import type { Selectable } from 'kysely';
import { refreshLease } from './connectionRefreshLease.js';
import type { Db, Dialect } from './database.js';
import type { ConnectionsTable } from './schema.js';

export { ConnectionLockError } from './connectionRefreshLease.js';

export type ConnectionStatus = 'active' | 'needs_reconnect';

/** One connection as stored: the credential itself only in sealed form. */
export interface Connection {
  sub: string;
  provider: string;
  status: ConnectionStatus;
  /** JWE compact from src/connections/sealing.ts, bound to (sub, provider). */
  sealed: string;
  /** Key id `sealed` was sealed with. */
  keyId: string;
  scope?: string;
  /** Access-token expiry, epoch seconds. */
  expiresAt?: number;
  /** Epoch milliseconds. */
  createdAt: number;
  /** Epoch milliseconds. */
  updatedAt: number;
}

/** What `list` shows: everything but the sealed credential and its key. */
export type ConnectionSummary = Omit<Connection, 'sub' | 'sealed' | 'keyId'>;

/** A freshly granted credential, stored by `upsert`. */
export interface ConnectionInput {
  sub: string;
  provider: string;
  sealed: string;
  keyId: string;
  scope?: string;
  expiresAt?: number;
}

/**
 * What a refresh writes back: a new sealed credential (with its key id),
 * and/or a status. `null` clears scope or expiry.
 */
export type ConnectionUpdate = { status?: ConnectionStatus; scope?: string | null; expiresAt?: number | null } & (
  | { sealed: string; keyId: string }
  | { sealed?: undefined; keyId?: undefined }
);

export interface ConnectionsStoreOptions {
  /** Clock, epoch milliseconds (default Date.now); refresh leases run on the database's clock instead. */
  now?: () => number;
  /**
   * How long a refresh lease lasts (default 10 s). Must exceed the provider
   * requests' timeouts, or a slow refresh loses its lease (and its write).
   */
  leaseMs?: number;
  /** Longest wait for another refresh of the same connection to finish (default 15 s). */
  lockWaitMs?: number;
}

/**
 * Connections of every person: rows keyed by (sub, provider). Every method
 * takes the `sub` from its caller, who must take it from the verified
 * principal, never from tool arguments.
 */
export interface ConnectionsStore {
  get(sub: string, provider: string): Promise<Connection | undefined>;
  /** The person's connections by provider name; no secrets. */
  list(sub: string): Promise<ConnectionSummary[]>;
  /** Store a new grant: inserts, or replaces the credential (status active, creation time kept). */
  upsert(input: ConnectionInput): Promise<Connection>;
  /** The provider refused the refresh token: keep the row (disconnecting still revokes), ask the person again. */
  markNeedsReconnect(sub: string, provider: string): Promise<boolean>;
  delete(sub: string, provider: string): Promise<boolean>;
  /**
   * Run `fn` with the connection as it is now, while no other caller (in this
   * process or another replica) runs `fn` for the same row; write what it
   * returns before letting the next one in. A second caller waits, then sees
   * the first one's write (so it usually finds a fresh token and need not
   * refresh). Resolves to the row afterwards, or undefined when there is no
   * such connection (fn is then not called). Throws ConnectionLockError after
   * waiting `lockWaitMs`, or when the lease ran out before fn returned.
   *
   * Both dialects: a lease (owner and expiry columns) claimed by one atomic
   * UPDATE, so no transaction or connection is held while `fn` waits on the
   * provider. A held transaction would pin a pooled PostgreSQL connection per
   * refresh (a provider brownout then takes the whole pool) and stall every
   * query on SQLite's single connection. The lease ends by the database's
   * clock, `leaseMs` after the claim, so a crashed holder blocks no one for long.
   */
  withRefreshLock(
    sub: string,
    provider: string,
    fn: (current: Connection) => Promise<ConnectionUpdate | undefined>,
  ): Promise<Connection | undefined>;
  /** Re-encryption: rows not sealed with `keyId`, in (sub, provider) order after `after`. */
  listNotSealedWith(keyId: string, page: { limit: number; after?: { sub: string; provider: string } }): Promise<Connection[]>;
  /** Replace `row`'s ciphertext unless it changed since it was read (a refresh wins); true when replaced. */
  rewrap(row: Pick<Connection, 'sub' | 'provider' | 'sealed'>, next: { sealed: string; keyId: string }): Promise<boolean>;
  /** How many rows each key id seals (an old key may be dropped once it seals none). */
  keyUsage(): Promise<Record<string, number>>;
}

const num = (v: number | string) => Number(v);

function toConnection(r: Selectable<ConnectionsTable>): Connection {
  return {
    sub: r.sub,
    provider: r.provider,
    status: r.status,
    sealed: r.sealed,
    keyId: r.key_id,
    ...(r.scope !== null ? { scope: r.scope } : {}),
    ...(r.expires_at !== null ? { expiresAt: num(r.expires_at) } : {}),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

function checkKey(op: string, sub: string, provider: string): void {
  if (!sub || !provider) throw new TypeError(`connectionsStore.${op}: sub and provider must be non-empty strings`);
}

/** Columns an update writes; `undefined` fields are left as they are. */
function updateValues(next: ConnectionUpdate, now: number) {
  return {
    updated_at: now,
    ...(next.sealed !== undefined ? { sealed: next.sealed, key_id: next.keyId } : {}),
    ...(next.status !== undefined ? { status: next.status } : {}),
    ...(next.scope !== undefined ? { scope: next.scope } : {}),
    ...(next.expiresAt !== undefined ? { expires_at: next.expiresAt } : {}),
  };
}

export function connectionsStore(db: Db, dialect: Dialect, options: ConnectionsStoreOptions = {}): ConnectionsStore {
  const now = options.now ?? Date.now;
  const leaseMs = options.leaseMs ?? 10_000;
  const lockWaitMs = options.lockWaitMs ?? 15_000;
  if (!Number.isSafeInteger(leaseMs) || leaseMs < 1) throw new TypeError('connectionsStore: leaseMs must be a positive integer');
  if (!Number.isSafeInteger(lockWaitMs) || lockWaitMs < 1) throw new TypeError('connectionsStore: lockWaitMs must be a positive integer');

  const byKey = (sub: string, provider: string) =>
    db.selectFrom('connections').selectAll().where('sub', '=', sub).where('provider', '=', provider);

  const leased = refreshLease(db, dialect, { leaseMs, lockWaitMs });

  return {
    async get(sub, provider) {
      const row = await byKey(sub, provider).executeTakeFirst();
      return row && toConnection(row);
    },

    async list(sub) {
      if (!sub) throw new TypeError('connectionsStore.list: sub must be a non-empty string');
      const rows = await db
        .selectFrom('connections')
        .select(['provider', 'status', 'scope', 'expires_at', 'created_at', 'updated_at'])
        .where('sub', '=', sub)
        .orderBy('provider')
        .execute();
      return rows.map((r) => ({
        provider: r.provider,
        status: r.status,
        ...(r.scope !== null ? { scope: r.scope } : {}),
        ...(r.expires_at !== null ? { expiresAt: num(r.expires_at) } : {}),
        createdAt: num(r.created_at),
        updatedAt: num(r.updated_at),
      }));
    },

    async upsert(input) {
      checkKey('upsert', input.sub, input.provider);
      const t = now();
      const values = {
        status: 'active' as const,
        sealed: input.sealed,
        key_id: input.keyId,
        scope: input.scope ?? null,
        expires_at: input.expiresAt ?? null,
        updated_at: t,
        // A new grant supersedes a refresh in flight: its holder's write is refused.
        refresh_lease_until: null,
        refresh_lease_owner: null,
      };
      const row = await db
        .insertInto('connections')
        .values({ sub: input.sub, provider: input.provider, created_at: t, ...values })
        .onConflict((oc) => oc.columns(['sub', 'provider']).doUpdateSet(values))
        .returningAll()
        .executeTakeFirstOrThrow();
      return toConnection(row);
    },

    async markNeedsReconnect(sub, provider) {
      const r = await db
        .updateTable('connections')
        .set({ status: 'needs_reconnect', updated_at: now() })
        .where('sub', '=', sub)
        .where('provider', '=', provider)
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },

    async delete(sub, provider) {
      const r = await db.deleteFrom('connections').where('sub', '=', sub).where('provider', '=', provider).executeTakeFirst();
      return r.numDeletedRows > 0n;
    },

    async withRefreshLock(sub, provider, fn) {
      checkKey('withRefreshLock', sub, provider);
      let current: Connection | undefined;
      let written = false;
      const row = await leased(sub, provider, async (r) => {
        current = toConnection(r);
        const next = await fn(current);
        if (!next) return undefined;
        written = true;
        return updateValues(next, now());
      });
      return row && (written ? toConnection(row) : current);
    },

    async listNotSealedWith(keyId, { limit, after }) {
      if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError('connectionsStore.listNotSealedWith: limit must be a positive integer');
      let q = db.selectFrom('connections').selectAll().where('key_id', '<>', keyId);
      if (after) q = q.where((eb) => eb(eb.refTuple('sub', 'provider'), '>', eb.tuple(after.sub, after.provider)));
      const rows = await q.orderBy('sub').orderBy('provider').limit(limit).execute();
      return rows.map(toConnection);
    },

    async rewrap(row, next) {
      const r = await db
        .updateTable('connections')
        .set({ sealed: next.sealed, key_id: next.keyId, updated_at: now() })
        .where('sub', '=', row.sub)
        .where('provider', '=', row.provider)
        .where('sealed', '=', row.sealed)
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },

    async keyUsage() {
      const rows = await db
        .selectFrom('connections')
        .select((eb) => ['key_id', eb.fn.countAll().as('n')])
        .groupBy('key_id')
        .orderBy('key_id')
        .execute();
      return Object.fromEntries(rows.map((r) => [r.key_id, Number(r.n)]));
    },
  };
}
