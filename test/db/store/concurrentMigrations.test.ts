import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { migrateDatabase, openDatabase } from '../../../src/store/database.js';
import { pendingMigrations } from '../../../src/store/migrations.js';
import { type Backend, storeBackends } from '../../support/backends.js';

/**
 * Several replicas starting together on an empty database (a Deployment's
 * first rollout, deploy/helm/hydra-mcp): each runs the migrations at start,
 * and Kysely's migration lock lets exactly one apply each while the others
 * wait, then find nothing to do. Why the chart has no migration hook Job.
 */
const backends = storeBackends('migrations', 4);

describe.each(['postgres', 'sqlite'] as const)('three replicas migrating one empty %s database at once', (kind) => {
  let backend: Backend | undefined;
  afterEach(async () => {
    await backend?.cleanup();
    backend = undefined;
  });

  it('all start, every migration is applied exactly once, and none is left pending', async () => {
    backend = await backends[kind]();
    const replicas = await Promise.all([1, 2, 3].map(() => openDatabase(backend!.target)));
    try {
      const db = replicas[0]!;
      const rows = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db);
      const names = rows.rows.map((r) => r.name);
      expect(names.length).toBeGreaterThan(10);
      expect(new Set(names).size).toBe(names.length);
      expect(await pendingMigrations(db, kind)).toEqual([]);
      // Each replica sees the whole schema.
      for (const r of replicas) expect((await r.introspection.getTables()).map((t) => t.name)).toEqual(expect.arrayContaining(['users', 'notes', 'audit_events']));
    } finally {
      await Promise.all(replicas.map((r) => r.destroy()));
    }
    // `hydra-mcp migrate` afterwards: nothing to apply.
    expect(await migrateDatabase(backend.target)).toEqual([]);
  });

  it('three `hydra-mcp migrate` runs at once: the migrations are applied once in all (each name by exactly one run)', async () => {
    backend = await backends[kind]();
    const runs = await Promise.all([1, 2, 3].map(() => migrateDatabase(backend!.target)));
    const all = runs.flat();
    expect(all.length).toBeGreaterThan(10);
    expect(new Set(all).size).toBe(all.length);
  });
});
