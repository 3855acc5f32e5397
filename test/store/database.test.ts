import { sql } from 'kysely';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { freeLoopbackPort } from '../../scripts/hydra.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { openDatabase } from '../../src/store/database.js';
import { sample } from '../support/metricSamples.js';

/**
 * database_errors_total: openDatabase's onError hears every failed query
 * (Kysely's log hook) and every connection that cannot be made, and nothing
 * else; the hook prints nothing (Kysely's own logger would print queries).
 */
describe('openDatabase: database_errors_total', () => {
  afterEach(() => vi.restoreAllMocks());

  it('SQLite: a failing query counts once; queries that succeed count nothing and print nothing', async () => {
    const printed = [vi.spyOn(console, 'log'), vi.spyOn(console, 'error'), vi.spyOn(console, 'warn')];
    const metrics = new Metrics();
    const db = await openDatabase({ kind: 'sqlite', path: ':memory:' }, { onError: () => metrics.databaseError('sqlite') });
    try {
      await db.selectFrom('users').selectAll().execute();
      expect(await sample(metrics, 'database_errors_total', { dialect: 'sqlite' })).toBeUndefined();
      await expect(sql`select * from no_such_table where email = ${'alice@example.com'}`.execute(db)).rejects.toThrow(/no such table/);
      expect(await sample(metrics, 'database_errors_total', { dialect: 'sqlite' })).toBe(1);
      for (const spy of printed) expect(spy).not.toHaveBeenCalled();
    } finally {
      await db.destroy();
    }
  });

  it('PostgreSQL that cannot be reached: the failed connection counts (before any query could)', async () => {
    const metrics = new Metrics();
    const url = `postgres://nobody:nothing@127.0.0.1:${await freeLoopbackPort()}/none`;
    await expect(openDatabase({ kind: 'postgres', url }, { onError: () => metrics.databaseError('postgres') })).rejects.toThrow();
    expect(await sample(metrics, 'database_errors_total', { dialect: 'postgres' })).toBeGreaterThanOrEqual(1);
  });
});
