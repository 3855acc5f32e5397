import type { Selectable } from 'kysely';
import type { Db } from './database.js';
import type { ConnectStatesTable } from './schema.js';

/** A connect attempt in flight (see ConnectStatesTable). */
export interface ConnectState {
  stateHash: string;
  sub: string;
  provider: string;
  /** The PKCE verifier, sealed (src/connections/sealing.ts) like a credential. */
  sealedVerifier: string;
  browserBindingHash: string;
  elicitationId?: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

/**
 * Connect attempts in flight, found by the hash of their `state`: single
 * use, short-lived (the connect flow gives them ten minutes).
 */
export interface ConnectStatesStore {
  put(state: ConnectState): Promise<void>;
  /** Take an attempt: deleted as it is read, so a second take finds nothing; an expired one is refused. */
  take(stateHash: string): Promise<ConnectState | undefined>;
  /** Delete expired attempts; returns how many. */
  sweep(): Promise<number>;
  /**
   * Re-encryption: attempts in `state_hash` order after `after`. Every
   * attempt is read (the sealed verifier's key id is inside the ciphertext):
   * the table holds only attempts of the last minutes once `sweep` has run.
   */
  page(page: { limit: number; after?: string }): Promise<ConnectState[]>;
  /** Replace an attempt's sealed verifier unless it was taken or changed since it was read; true when replaced. */
  rewrap(state: Pick<ConnectState, 'stateHash' | 'sealedVerifier'>, sealedVerifier: string): Promise<boolean>;
}

function toState(r: Selectable<ConnectStatesTable>): ConnectState {
  return {
    stateHash: r.state_hash,
    sub: r.sub,
    provider: r.provider,
    sealedVerifier: r.sealed_verifier,
    browserBindingHash: r.browser_binding_hash,
    ...(r.elicitation_id !== null ? { elicitationId: r.elicitation_id } : {}),
    expiresAt: Number(r.expires_at),
  };
}

const SWEEP_EVERY_MS = 60_000;

export function connectStatesStore(db: Db, options: { /** Clock, epoch milliseconds (default Date.now). */ now?: () => number } = {}): ConnectStatesStore {
  const now = options.now ?? Date.now;
  let lastSweep = -Infinity;
  const sweep = async () => Number((await db.deleteFrom('connect_states').where('expires_at', '<=', now()).executeTakeFirst()).numDeletedRows);
  return {
    async put(state) {
      if (!state.sub || !state.provider) throw new TypeError('connectStatesStore.put: sub and provider must be non-empty strings');
      // Abandoned attempts go as new ones come, at most once a minute: no timer, and an idle server does no work.
      if (now() - lastSweep >= SWEEP_EVERY_MS) {
        lastSweep = now();
        await sweep().catch(() => 0);
      }
      await db
        .insertInto('connect_states')
        .values({
          state_hash: state.stateHash,
          sub: state.sub,
          provider: state.provider,
          sealed_verifier: state.sealedVerifier,
          browser_binding_hash: state.browserBindingHash,
          elicitation_id: state.elicitationId ?? null,
          expires_at: state.expiresAt,
        })
        .execute();
    },

    async take(stateHash) {
      // One statement deletes and returns: of two concurrent takes, only one gets the row.
      const row = await db.deleteFrom('connect_states').where('state_hash', '=', stateHash).returningAll().executeTakeFirst();
      if (!row) return undefined;
      const state = toState(row);
      return state.expiresAt > now() ? state : undefined;
    },

    sweep,

    async page({ limit, after }) {
      if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError('connectStatesStore.page: limit must be a positive integer');
      let q = db.selectFrom('connect_states').selectAll();
      if (after !== undefined) q = q.where('state_hash', '>', after);
      return (await q.orderBy('state_hash').limit(limit).execute()).map(toState);
    },

    async rewrap(state, sealedVerifier) {
      const r = await db
        .updateTable('connect_states')
        .set({ sealed_verifier: sealedVerifier })
        .where('state_hash', '=', state.stateHash)
        .where('sealed_verifier', '=', state.sealedVerifier)
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },
  };
}
