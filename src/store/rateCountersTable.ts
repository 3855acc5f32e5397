import type { Db } from './database.js';

/**
 * The `rate_counters` table both limiter algorithms keep their rows in
 * (./windowCounters.ts, ./tokenBuckets.ts): the key check, and the sweep of
 * rows whose time has passed (an ended window, a full bucket).
 */

export interface RateCountersOptions {
  /** Most often an increment also sweeps ended windows (ms); the sweep rides on an increment, so an idle server does no work. */
  sweepEveryMs?: number;
}

const MAX_KEY = 512;

export function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY) {
    throw new TypeError(`rate counter key must be a string of 1 to ${MAX_KEY} characters`);
  }
}

/** Deletes the rows whose time ended at or before `now`; how many. */
export const sweepEnded = (db: Db) => async (now: number) => {
  const r = await db.deleteFrom('rate_counters').where('reset_at', '<=', now).executeTakeFirst();
  return Number(r.numDeletedRows);
};

/** Runs `sweep` at most once per `everyMs`, on the back of an increment; a failed sweep never fails the increment. */
export function sweeper(sweep: (now: number) => Promise<number>, everyMs: number) {
  let last = -Infinity;
  return async (now: number) => {
    if (now - last < everyMs) return;
    last = now;
    await sweep(now).catch(() => 0);
  };
}
