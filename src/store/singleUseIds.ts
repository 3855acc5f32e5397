import type { Db } from './database.js';

/**
 * Ids that may be used once, in the database every replica shares: the
 * first `use` of an id wins, every later one (from any process) is refused.
 */
export interface SingleUseIds {
  /**
   * Record `id` as used; true on its first use, false on any later one.
   * `expiresAt` (epoch ms) is when the thing the id belongs to expires; the
   * row is kept until then, since a replay after it is refused by that expiry.
   */
  use(id: string, expiresAt: number): Promise<boolean>;
  /** Delete the ids whose thing has expired; how many. */
  sweep(): Promise<number>;
}

export interface SingleUseIdsOptions {
  /** Clock, epoch milliseconds (default Date.now). */
  now?: () => number;
  /** Most often a `use` also sweeps expired ids (default 60 s), so an idle server does no work. */
  sweepEveryMs?: number;
}

const MAX_ID = 256;

export function singleUseIds(db: Db, options: SingleUseIdsOptions = {}): SingleUseIds {
  const now = options.now ?? Date.now;
  const sweepEveryMs = options.sweepEveryMs ?? 60_000;
  let lastSweep = -Infinity;
  const sweep = async () => Number((await db.deleteFrom('single_use_ids').where('expires_at', '<=', now()).executeTakeFirst()).numDeletedRows);
  return {
    async use(id, expiresAt) {
      if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID) throw new TypeError(`singleUseIds.use: id must be a string of 1 to ${MAX_ID} characters`);
      if (!Number.isSafeInteger(expiresAt)) throw new TypeError('singleUseIds.use: expiresAt must be an integer (epoch ms)');
      if (now() - lastSweep >= sweepEveryMs) {
        lastSweep = now();
        await sweep().catch(() => 0);
      }
      // One statement in both dialects: of concurrent first uses, exactly one inserts.
      const row = await db
        .insertInto('single_use_ids')
        .values({ id, expires_at: expiresAt })
        .onConflict((oc) => oc.column('id').doNothing())
        .returning('id')
        .executeTakeFirst();
      return row !== undefined;
    },
    sweep,
  };
}
