import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../../src/store/database.js';
import { type BucketSpec, memoryTokenBuckets, type TokenBuckets, tokenBucketsStore } from '../../../src/store/tokenBuckets.js';
import { type Backend, storeBackends } from '../../support/backends.js';

const backends = storeBackends('buckets', 10);
const T0 = 1_700_000_000_000;
const bucket = (key: string, burst = 5, intervalMs = 1000): BucketSpec => ({ key, burst, intervalMs });

/** The token-bucket contract, on SQLite, PostgreSQL and in memory. */
describe.each(['sqlite', 'postgres', 'memory'] as const)('token buckets on %s', (kind) => {
  let backend: Backend | undefined;
  const dbs: Db[] = [];
  /** A fresh handle on the same database: another replica. */
  let replica: () => Promise<TokenBuckets>;
  let buckets: TokenBuckets;
  let cases = 0;

  beforeAll(async () => {
    if (kind === 'memory') {
      const shared = memoryTokenBuckets();
      replica = async () => shared;
    } else {
      backend = await backends[kind]();
      replica = async () => {
        const db = await openDatabase(backend!.target);
        dbs.push(db);
        return tokenBucketsStore(db);
      };
    }
    buckets = await replica();
  });
  afterAll(async () => {
    for (const db of dbs) await db.destroy();
    await backend?.cleanup();
  });

  it('a fresh bucket admits its burst at one instant, then refuses with the time until one token is back', async () => {
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await buckets.take([bucket('burst')], T0));
    expect(results.slice(0, 5).every((r) => r.admitted)).toBe(true);
    expect(results[5]).toEqual({ admitted: false, granted: 0, refusedBy: 0, retryAfterMs: 1000 });
    // Still refused 400 ms later, with 600 ms to go; a refusal spends nothing.
    expect(await buckets.take([bucket('burst')], T0 + 400)).toEqual({ admitted: false, granted: 0, refusedBy: 0, retryAfterMs: 600 });
  });

  it('refills one token per interval, and never holds more than the burst after a quiet spell', async () => {
    for (let i = 0; i < 5; i++) expect((await buckets.take([bucket('refill')], T0)).admitted).toBe(true);
    // 2.5 intervals later: two tokens are back, not three.
    const later = T0 + 2500;
    expect((await buckets.take([bucket('refill')], later)).admitted).toBe(true);
    expect((await buckets.take([bucket('refill')], later)).admitted).toBe(true);
    expect(await buckets.take([bucket('refill')], later)).toMatchObject({ admitted: false, retryAfterMs: 500 });
    // An hour idle: a full bucket of 5, not 3600.
    const idle = T0 + 3_600_000;
    const admitted = [];
    for (let i = 0; i < 8; i++) admitted.push((await buckets.take([bucket('refill')], idle)).admitted);
    expect(admitted).toEqual([true, true, true, true, true, false, false, false]);
  });

  it('takes in order and stops at the first refusal: a caller refused by its own bucket spends nothing of the shared one', async () => {
    const own = bucket('own', 2);
    const shared = bucket('shared', 3);
    expect((await buckets.take([own, shared], T0)).admitted).toBe(true);
    expect((await buckets.take([own, shared], T0)).admitted).toBe(true);
    for (let i = 0; i < 10; i++) expect(await buckets.take([own, shared], T0)).toEqual({ admitted: false, granted: 0, refusedBy: 0, retryAfterMs: 1000 });
    // The shared bucket gave 2 of 3: one left for someone else, then it refuses (index 1).
    expect((await buckets.take([bucket('other', 2), shared], T0)).admitted).toBe(true);
    expect(await buckets.take([bucket('other', 2), shared], T0)).toEqual({ admitted: false, granted: 0, refusedBy: 1, retryAfterMs: 1000 });
  });

  it('grants up to the tokens asked for and no more than the bucket holds; the next bucket is asked for what the first granted', async () => {
    const own = bucket('lease-own', 10);
    const shared = bucket('lease-shared', 12);
    expect(await buckets.take([own, shared], T0, 4)).toEqual({ admitted: true, granted: 4, retryAfterMs: 0 });
    expect(await buckets.take([own, shared], T0, 4)).toEqual({ admitted: true, granted: 4, retryAfterMs: 0 });
    // 2 left in the caller's bucket: 2 granted, and only 2 asked of the shared one.
    expect(await buckets.take([own, shared], T0, 4)).toEqual({ admitted: true, granted: 2, retryAfterMs: 0 });
    expect(await buckets.take([own, shared], T0, 4)).toMatchObject({ admitted: false, granted: 0, refusedBy: 0, retryAfterMs: 1000 });
    // The shared bucket gave 10 of 12: another caller asking for 5 gets 2.
    expect(await buckets.take([bucket('lease-other', 10), shared], T0, 5)).toEqual({ admitted: true, granted: 2, retryAfterMs: 0 });
    // 2.5 intervals on: 2 tokens back in the caller's bucket, not 3.
    expect(await buckets.take([own], T0 + 2500, 8)).toMatchObject({ admitted: true, granted: 2 });
    // Asking for more than the burst of a fresh bucket grants the burst.
    expect(await buckets.take([bucket('lease-fresh', 3)], T0, 100)).toMatchObject({ admitted: true, granted: 3 });
  });

  it("issue 26 #8: a refusal by a later bucket (the client's) takes nothing from the caller's own; a partial grant gives the rest back", async () => {
    const own = bucket('c8-own', 3);
    const shared = bucket('c8-shared', 1);
    expect(await buckets.take([own, shared], T0)).toEqual({ admitted: true, granted: 1, retryAfterMs: 0 });
    for (let i = 0; i < 5; i++) expect(await buckets.take([own, shared], T0)).toEqual({ admitted: false, granted: 0, refusedBy: 1, retryAfterMs: 1000 });
    // The caller's bucket paid for the one admitted request only: two tokens are left.
    expect(await buckets.take([own], T0, 10)).toEqual({ admitted: true, granted: 2, retryAfterMs: 0 });
    // A lease of 4 that the shared bucket cuts to 2: the caller's bucket keeps the 2 nobody spent.
    const own2 = bucket('c8-own2', 10);
    expect(await buckets.take([own2, bucket('c8-shared2', 2)], T0, 4)).toEqual({ admitted: true, granted: 2, retryAfterMs: 0 });
    expect(await buckets.take([own2], T0, 100)).toEqual({ admitted: true, granted: 8, retryAfterMs: 0 });
  });

  it('issue 26 #4: a take that needs N tokens (a batch of N messages) gets at least N or nothing, from every bucket', async () => {
    const own = bucket('need-own', 5);
    const shared = bucket('need-shared', 8);
    expect(await buckets.take([own, shared], T0, 3, 3)).toEqual({ admitted: true, granted: 3, retryAfterMs: 0 });
    // Two left: a batch of three waits for one more token (1 s), and takes nothing meanwhile.
    expect(await buckets.take([own, shared], T0, 3, 3)).toEqual({ admitted: false, granted: 0, refusedBy: 0, retryAfterMs: 1000 });
    expect(await buckets.take([own, shared], T0, 2, 2)).toEqual({ admitted: true, granted: 2, retryAfterMs: 0 });
    // The shared bucket has 3 left: another caller's batch of 4 is refused by it, and its own bucket keeps all 5.
    const other = bucket('need-other', 5);
    expect(await buckets.take([other, shared], T0, 4, 4)).toEqual({ admitted: false, granted: 0, refusedBy: 1, retryAfterMs: 1000 });
    expect(await buckets.take([other], T0, 5, 5)).toEqual({ admitted: true, granted: 5, retryAfterMs: 0 });
    // A batch larger than a bucket's burst never fits it: refused at once, told the time a full bucket takes.
    expect(await buckets.take([bucket('need-big', 5)], T0, 6, 6)).toEqual({ admitted: false, granted: 0, refusedBy: 0, retryAfterMs: 5000 });
    expect(await buckets.take([bucket('need-big', 5)], T0, 5, 5)).toEqual({ admitted: true, granted: 5, retryAfterMs: 0 });
  });

  it('parallel leases from two replicas never grant more than the bucket holds', async () => {
    const [a, b] = [await replica(), await replica()];
    const chain = [bucket('lease-race-own', 100, 60_000), bucket('lease-race-shared', 50, 60_000)];
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).take(chain, T0, 3)));
    expect(results.reduce((n, r) => n + r.granted, 0)).toBe(50);
  });

  it('parallel takes from two replicas never admit more than the bucket holds', async () => {
    const [a, b] = [await replica(), await replica()];
    const chain = [bucket('race-own', 40, 60_000), bucket('race-shared', 25, 60_000)];
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).take(chain, T0)));
    expect(results.filter((r) => r.admitted)).toHaveLength(25);
    expect(results.filter((r) => !r.admitted)).toHaveLength(35);
    // Issue 26 #8: the caller's own bucket paid for the 25 admitted only, whatever refused the rest.
    expect(await a.take([chain[0]!], T0, 100)).toMatchObject({ admitted: true, granted: 15 });
  });

  it('costs one statement per take on PostgreSQL (both buckets), measured: 500 takes of a two-bucket chain, the 501st refused', async () => {
    const chain = [bucket('cost-own', 500, 60_000), bucket('cost-shared', 1000, 60_000)];
    const start = performance.now();
    for (let i = 0; i < 500; i++) expect((await buckets.take(chain, T0)).admitted).toBe(true);
    const perTake = ((performance.now() - start) / 500) * 1000;
    console.log(`[token buckets] ${kind}: ${perTake.toFixed(0)} µs per admitted two-bucket take (sequential)`);
    expect(await buckets.take(chain, T0)).toMatchObject({ admitted: false, refusedBy: 0 });
  });

  it.each([
    ['no bucket', [] as BucketSpec[], /at least one bucket/],
    ['want 0', [bucket('bad')], /want must be a positive integer, got 0/, 0],
    ['interval 0', [bucket('bad', 5, 0)], /intervalMs must be a positive integer, got 0/],
    ['fractional interval', [bucket('bad', 5, 0.5)], /intervalMs must be a positive integer/],
    ['burst 0', [bucket('bad', 0)], /burst must be a positive integer, got 0/],
    ['burst -5', [bucket('bad', -5)], /burst must be a positive integer, got -5/],
    ['empty key', [bucket('')], /key must be a string of 1 to 512/],
    ['the same key twice', [bucket('dup'), bucket('dup')], /keys of one take must differ/],
  ])('refuses %s and changes nothing', async (_name, spec, message, want = 1) => {
    await expect(buckets.take(spec, T0, want)).rejects.toThrow(message);
    // 'bad' and 'dup' were never taken from: a full bucket of 5 (each case looks a day further on, past the last look).
    const at = T0 + ++cases * 86_400_000;
    for (const key of ['bad', 'dup']) {
      const admitted = [];
      for (let i = 0; i < 6; i++) admitted.push((await buckets.take([bucket(key)], at)).admitted);
      expect(admitted, key).toEqual([true, true, true, true, true, false]);
    }
  });
});

describe('token buckets in the shared table', () => {
  it('store each bucket as one rate_counters row, and the counters sweep removes full ones', async () => {
    const db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    try {
      const buckets = tokenBucketsStore(db, { sweepEveryMs: 1 });
      await buckets.take([bucket('mcp:a'), bucket('mcp:b')], T0);
      expect(await db.selectFrom('rate_counters').select(['key', 'hits', 'reset_at']).orderBy('key').execute()).toEqual([
        { key: 'mcp:a', hits: 1, reset_at: T0 + 1000 },
        { key: 'mcp:b', hits: 1, reset_at: T0 + 1000 },
      ]);
      // Past the full-again time the bucket is full: the next take's sweep deletes both rows first.
      await buckets.take([bucket('mcp:c')], T0 + 1000);
      expect((await db.selectFrom('rate_counters').select('key').execute()).map((r) => r.key)).toEqual(['mcp:c']);
    } finally {
      await db.destroy();
    }
  });
});
