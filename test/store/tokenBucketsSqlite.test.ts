import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase, sqliteHandleOf } from '../../src/store/database.js';
import { type BucketSpec, memoryTokenBuckets, tokenBucketsStore } from '../../src/store/tokenBuckets.js';

/**
 * The SQLite token buckets beside the in-memory ones (the contract both keep is
 * test/db/limits/tokenBuckets.test.ts): the same answers to a long mixed run of
 * takes, and a take that compiles no SQL once the server runs.
 */
describe('token buckets on SQLite', () => {
  let db: Db;
  const T0 = 1_700_000_000_000;

  beforeEach(async () => {
    db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
  });
  afterEach(async () => {
    await db.destroy();
  });

  it('answers a mixed run of takes exactly as the in-memory buckets do (grants, refusals, partial grants given back, chains, batches)', async () => {
    const sqlite = tokenBucketsStore(db);
    const memory = memoryTokenBuckets();
    // A small deterministic generator: the run is the same every time.
    let seed = 42;
    const next = (n: number) => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31), seed % n);
    const own = (i: number): BucketSpec => ({ key: `p${i}`, intervalMs: 1 + i * 7, burst: 3 + i });
    const shared: BucketSpec = { key: 'client', intervalMs: 5, burst: 12 };
    let now = T0;
    for (let step = 0; step < 600; step++) {
      now += next(40);
      const chain = next(3) === 0 ? [own(next(4))] : [own(next(4)), shared];
      const need = 1 + next(3);
      const want = need + next(8);
      const [a, b] = [await sqlite.take(chain, now, want, need), await memory.take(chain, now, want, need)];
      expect(a, `step ${step}: ${JSON.stringify({ chain: chain.map((c) => c.key), now: now - T0, want, need })}`).toEqual(b);
    }
  });

  it('compiles no SQL per take, refusals and partial grants given back included: each statement is prepared once, its values bound by name', async () => {
    const buckets = tokenBucketsStore(db);
    const handle = sqliteHandleOf(db)!;
    const executor = db.getExecutor();
    // Two callers of one app: the app's bucket is the smaller, so it also refuses after a caller's granted (given back).
    const chains: BucketSpec[][] = [
      [{ key: 'mine', intervalMs: 1000, burst: 4 }, { key: 'app', intervalMs: 1000, burst: 6 }],
      [{ key: 'yours', intervalMs: 1000, burst: 8 }, { key: 'app', intervalMs: 1000, burst: 6 }],
    ];
    // The first take also sweeps ended rows (a query of its own, once a minute), and the first refund prepares nothing either.
    expect(await buckets.take(chains[0]!, T0)).toMatchObject({ admitted: true, granted: 1 });
    const compiled: string[] = [];
    const { prepare } = handle;
    const { compileQuery } = executor;
    handle.prepare = ((source: string) => (compiled.push(source), prepare.call(handle, source))) as typeof handle.prepare;
    executor.compileQuery = ((...args: Parameters<typeof compileQuery>) => (compiled.push('kysely'), compileQuery.apply(executor, args))) as typeof compileQuery;
    try {
      const results = [];
      for (let i = 0; i < 20; i++) results.push(await buckets.take(chains[i % 2]!, T0 + i, 2));
      // Admitted, refused by the caller's own bucket, and by the app's after the caller's granted (given back).
      expect(results.some((r) => r.admitted)).toBe(true);
      expect(results.some((r) => r.refusedBy === 0)).toBe(true);
      expect(results.some((r) => r.refusedBy === 1)).toBe(true);
      expect(compiled).toEqual([]);
    } finally {
      handle.prepare = prepare;
      executor.compileQuery = compileQuery;
    }
  });
});
