import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/metrics/metrics.js';
import { openDatabase } from '../../../src/store/database.js';
import { type Backend, storeBackends } from '../../support/backends.js';
import { sample } from '../../support/metricSamples.js';

/** database_errors_total on the embedded SQLite file and a real PostgreSQL: a failed query counts once, by dialect; the rest nothing. */
const backends = storeBackends('database-errors');

describe.each(['sqlite', 'postgres'] as const)('database_errors_total on %s', (kind) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await backends[kind]();
  });
  afterAll(async () => {
    await backend?.cleanup();
  });

  it('a failing query counts once under its dialect; migrations and queries that succeed count nothing', async () => {
    const metrics = new Metrics();
    const db = await openDatabase(backend.target, { onError: () => metrics.databaseError(kind) });
    try {
      await db.selectFrom('users').select('id').execute();
      expect(await sample(metrics, 'database_errors_total', { dialect: kind })).toBeUndefined();
      await expect(sql`select * from no_such_table`.execute(db)).rejects.toThrow();
      expect(await sample(metrics, 'database_errors_total', { dialect: kind })).toBe(1);
    } finally {
      await db.destroy();
    }
  });
});
