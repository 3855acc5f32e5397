import { sql } from 'kysely';
import type { Db } from './database.js';
import { checkKey, type RateCountersOptions, sweepEnded, sweeper } from './rateCountersTable.js';

/** One key's count in its current window. */
export interface CounterState {
  hits: number;
  /** When the window ends (ms since the epoch); the count starts again from zero after it. */
  resetAt: number;
}

/**
 * Fixed-window hit counters. Every method takes the time (`now`, ms since the
 * epoch) from the caller, so a throttle with an injected clock governs its
 * windows. A window opens with the first hit after the previous one ended.
 */
export interface RateCounters {
  /** Add one hit to `key`, opening a window of `windowMs` if none is open at `now`; the count after it. */
  increment(key: string, windowMs: number, now: number): Promise<CounterState>;
  /** The count in the window open at `now`, or undefined when there is none. */
  get(key: string, now: number): Promise<CounterState | undefined>;
  /** Take back one hit of the open window (never below zero). */
  decrement(key: string, now: number): Promise<void>;
  /** Forget `key` at once. */
  reset(key: string): Promise<void>;
  /** Delete the counters whose window ended at or before `now`; how many. */
  sweep(now: number): Promise<number>;
}

function checkWindow(windowMs: number): void {
  if (!Number.isSafeInteger(windowMs) || windowMs < 1) throw new TypeError(`rate counter windowMs must be a positive integer, got ${windowMs}`);
}

/**
 * Counters in the `rate_counters` table, so every replica on the same
 * database counts the same hits. An increment is one statement,
 * `INSERT … ON CONFLICT (key) DO UPDATE … RETURNING`, atomic in both
 * dialects: concurrent hits on one key from any number of processes are
 * each counted once (PostgreSQL locks the conflicting row; SQLite has one
 * writer). The SET expressions read the row as it was before the update,
 * in both dialects, so an ended window restarts at 1.
 */
export function rateCountersStore(db: Db, options: RateCountersOptions = {}): RateCounters {
  const sweep = sweepEnded(db);
  const maybeSweep = sweeper(sweep, options.sweepEveryMs ?? 60_000);
  return {
    async increment(key, windowMs, now) {
      checkKey(key);
      checkWindow(windowMs);
      await maybeSweep(now);
      const ended = sql<boolean>`rate_counters.reset_at <= ${now}`;
      const row = await db
        .insertInto('rate_counters')
        .values({ key, hits: 1, reset_at: now + windowMs })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet({
            hits: sql<number>`case when ${ended} then 1 else rate_counters.hits + 1 end`,
            reset_at: sql<number>`case when ${ended} then excluded.reset_at else rate_counters.reset_at end`,
          }),
        )
        .returning(['hits', 'reset_at'])
        .executeTakeFirstOrThrow();
      return { hits: Number(row.hits), resetAt: Number(row.reset_at) };
    },
    async get(key, now) {
      checkKey(key);
      const row = await db.selectFrom('rate_counters').select(['hits', 'reset_at']).where('key', '=', key).where('reset_at', '>', now).executeTakeFirst();
      return row && { hits: Number(row.hits), resetAt: Number(row.reset_at) };
    },
    async decrement(key, now) {
      checkKey(key);
      await db
        .updateTable('rate_counters')
        .set({ hits: sql<number>`case when hits > 0 then hits - 1 else 0 end` })
        .where('key', '=', key)
        .where('reset_at', '>', now)
        .execute();
    },
    async reset(key) {
      checkKey(key);
      await db.deleteFrom('rate_counters').where('key', '=', key).execute();
    },
    sweep,
  };
}

/**
 * The same counters in this process's memory: for a single process and for
 * tests without a database. Bounded: past `maxKeys` the oldest keys go first.
 */
export function memoryRateCounters(options: RateCountersOptions & { maxKeys?: number } = {}): RateCounters {
  const counters = new Map<string, CounterState>();
  const maxKeys = options.maxKeys ?? 50_000;
  const sweep = async (now: number) => {
    let n = 0;
    for (const [key, c] of counters) if (c.resetAt <= now && counters.delete(key)) n++;
    return n;
  };
  const maybeSweep = sweeper(sweep, options.sweepEveryMs ?? 60_000);
  const open = (key: string, now: number) => {
    const c = counters.get(key);
    return c && c.resetAt > now ? c : undefined;
  };
  return {
    async increment(key, windowMs, now) {
      checkKey(key);
      checkWindow(windowMs);
      await maybeSweep(now);
      const c = open(key, now) ?? { hits: 0, resetAt: now + windowMs };
      c.hits++;
      counters.delete(key);
      counters.set(key, c);
      if (counters.size > maxKeys) counters.delete(counters.keys().next().value!);
      return { ...c };
    },
    async get(key, now) {
      checkKey(key);
      const c = open(key, now);
      return c && { ...c };
    },
    async decrement(key, now) {
      checkKey(key);
      const c = open(key, now);
      if (c && c.hits > 0) c.hits--;
    },
    async reset(key) {
      checkKey(key);
      counters.delete(key);
    },
    sweep,
  };
}
