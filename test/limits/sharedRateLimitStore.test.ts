import type { Server } from 'node:http';
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SharedRateLimitStore, sharedRateLimitStores } from '../../src/limits/sharedRateLimitStore.js';
import { type Db, openDatabase } from '../../src/store/database.js';
import { rateCountersStore } from '../../src/store/windowCounters.js';

/** Two "replicas": separate Express apps, each with its own express-rate-limit limiter, over one database. */
describe('SharedRateLimitStore: express-rate-limit counting in the shared table', () => {
  let db: Db;
  const servers: Server[] = [];
  beforeEach(async () => {
    db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
    await db.destroy();
  });

  async function replica(limiterOptions: Parameters<typeof rateLimit>[0] = {}) {
    const app = express();
    const limiter = rateLimit({
      windowMs: 60_000,
      limit: 3,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      store: sharedRateLimitStores(rateCountersStore(db))('token'),
      ...limiterOptions,
    });
    app.post('/token', limiter, (req, res) => (req.query.fail ? res.status(400).end() : res.status(200).end()));
    const server = await new Promise<Server>((r) => {
      const s = app.listen(0, '127.0.0.1', () => r(s));
    });
    servers.push(server);
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    return { post: (query = '') => fetch(`${base}/token${query}`, { method: 'POST' }), limiter };
  }

  it('hits alternating between two replicas count once each: the fourth is 429 on either, with the shared window', async () => {
    const replicas = [await replica(), await replica()];
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await replicas[i % 2]!.post()).status);
    expect(statuses).toEqual([200, 200, 200]);
    for (const r of replicas) {
      const refused = await r.post();
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    const row = await db.selectFrom('rate_counters').select(['key', 'hits']).execute();
    expect(row).toEqual([{ key: 'rl:token:127.0.0.1', hits: 5 }]);
  });

  it('takes back a failed request when the limiter skips them (decrement), and resetKey clears the client', async () => {
    const r = await replica({ skipFailedRequests: true });
    for (let i = 0; i < 5; i++) expect((await r.post('?fail=1')).status).toBe(400);
    expect((await r.post()).status).toBe(200);
    expect(await r.limiter.getKey('127.0.0.1')).toMatchObject({ totalHits: 1 });
    await r.limiter.resetKey('127.0.0.1');
    await new Promise((res) => setTimeout(res, 50)); // resetKey is not awaited by express-rate-limit
    expect(await r.limiter.getKey('127.0.0.1')).toBeUndefined();
  });

  it('keeps limiters apart by name, and refuses a name that is not a short identifier', async () => {
    const counters = rateCountersStore(db);
    const make = sharedRateLimitStores(counters);
    const token = make('token');
    const revoke = make('revoke');
    token.init({ windowMs: 1000 } as never);
    revoke.init({ windowMs: 1000 } as never);
    await token.increment('1.2.3.4');
    expect(await revoke.get('1.2.3.4')).toBeUndefined();
    expect(await token.get('1.2.3.4')).toMatchObject({ totalHits: 1 });
    expect(() => new SharedRateLimitStore({ counters, name: 'Token Limit' })).toThrow(TypeError);
    expect(() => new SharedRateLimitStore({ counters, name: '' })).toThrow('SharedRateLimitStore name must match');
  });
});
