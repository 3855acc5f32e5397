import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../../src/store/database.js';
import { singleUseIds } from '../../../src/store/singleUseIds.js';
import { type Backend, storeBackends } from '../../support/backends.js';

/** Single-use ids (the 2026 requestState's nonce), on the embedded SQLite file and a real PostgreSQL. */
const backends = storeBackends('single-use-ids');

describe.each(['sqlite', 'postgres'] as const)('single-use ids on %s', (kind) => {
  let backend: Backend;
  let db: Db;

  beforeAll(async () => {
    backend = await backends[kind]();
  });
  afterAll(async () => {
    await backend?.cleanup();
  });
  beforeEach(async () => {
    db = await openDatabase(backend.target);
    await db.deleteFrom('single_use_ids').execute();
  });
  afterEach(async () => {
    await db.destroy();
  });

  it('an id is used once; concurrent uses from two "replicas" (separate database handles): exactly one wins', async () => {
    const replica2 = await openDatabase(backend.target);
    try {
      const a = singleUseIds(db);
      const b = singleUseIds(replica2);
      const until = Date.now() + 60_000;
      const uses = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).use('request-state:n1', until)));
      expect(uses.filter(Boolean)).toHaveLength(1);
      expect(await a.use('request-state:n1', until)).toBe(false);
      expect(await b.use('request-state:n2', until)).toBe(true);
    } finally {
      await replica2.destroy();
    }
  });

  it('the sweep deletes only ids whose expiry has passed; a use sweeps at most once per sweepEveryMs', async () => {
    let clock = 1_000_000;
    const ids = singleUseIds(db, { now: () => clock, sweepEveryMs: 10_000 });
    expect(await ids.use('old', 1_000_500)).toBe(true);
    expect(await ids.use('fresh', 9_000_000)).toBe(true);
    clock = 1_000_500;
    expect(await ids.use('other', 9_000_000)).toBe(true);
    // Within sweepEveryMs of the first use's sweep: nothing swept yet.
    expect((await db.selectFrom('single_use_ids').select('id').orderBy('id').execute()).map((r) => r.id)).toEqual(['fresh', 'old', 'other']);
    clock = 1_010_000;
    expect(await ids.use('later', 9_000_000)).toBe(true);
    expect((await db.selectFrom('single_use_ids').select('id').orderBy('id').execute()).map((r) => r.id)).toEqual(['fresh', 'later', 'other']);
    expect(await ids.use('fresh', 9_000_000)).toBe(false);
  });

  it.each([
    ['an empty id', '', 1],
    ['an id over 256 characters', 'x'.repeat(257), 1],
    ['a non-integer expiry', 'id', 1.5],
  ])('refuses %s', async (_case, id, expiresAt) => {
    await expect(singleUseIds(db).use(id, expiresAt)).rejects.toThrow(TypeError);
  });
});
