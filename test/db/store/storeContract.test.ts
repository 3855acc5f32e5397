import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CompiledQuery, type KyselyPlugin, type RootOperationNode, sql } from 'kysely';
import { createUserStore, DuplicateUserError } from '../../../src/account/userStore.js';
import { type Db, openDatabase } from '../../../src/store/database.js';
import { type NotePosition } from '../../../src/store/notesStore.js';
import { rateCountersStore } from '../../../src/store/windowCounters.js';
import { RecordsInputError } from '../../../src/store/recordsStore.js';
import { scopedStoreFor } from '../../../src/store/scopedStore.js';
import { type Backend, storeBackends } from '../../support/backends.js';

/**
 * One storage contract, run against every backend: the embedded SQLite file
 * and a real PostgreSQL server (Debian's, started for the run).
 */
const backends = storeBackends('store', 10);

describe.each(['sqlite', 'postgres'] as const)('store contract on %s', (kind) => {
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
    await db.deleteFrom('notes').execute();
    await db.deleteFrom('records').execute();
    await db.deleteFrom('users').execute();
    await db.deleteFrom('rate_counters').execute();
  });
  afterEach(async () => {
    await db.destroy();
  });

  it('migrates concurrently from several "replicas" without error, and reopening is a no-op', async () => {
    const replicas = await Promise.all([1, 2, 3].map(() => openDatabase(backend.target)));
    await Promise.all(replicas.map((r) => r.destroy()));
    const tables = (await db.introspection.getTables()).map((t) => t.name);
    expect(tables).toEqual(expect.arrayContaining(['users', 'notes', 'records']));
  });

  it("notes: never lists, reads or deletes another user's notes", async () => {
    const alice = scopedStoreFor(db, 'alice').notes;
    const bob = scopedStoreFor(db, 'bob').notes;
    const note = await alice.add({ title: 't', body: 'b' });
    expect(await bob.list()).toEqual([]);
    expect(await bob.get(note.id)).toBeUndefined();
    expect(await bob.delete(note.id)).toBe(false);
    expect(await alice.get(note.id)).toEqual(note);
    expect(await alice.delete(note.id)).toBe(true);
    expect(await alice.list()).toEqual([]);
  });

  it('notes: lists in insertion order and honours the limit', async () => {
    const s = scopedStoreFor(db, 'carol').notes;
    for (const t of ['a', 'b', 'c']) await s.add({ title: t, body: '' });
    expect((await s.list({ limit: 2 })).map((n) => n.title)).toEqual(['a', 'b']);
  });

  /** Notes of `sub` with the given created_at values (ties on purpose), written straight to the table. */
  async function seedNotes(sub: string, stamps: string[]) {
    const rows = stamps.map((createdAt, i) => ({ id: `${sub}-${String(i).padStart(4, '0')}-${Math.random().toString(36).slice(2, 8)}`, sub, title: `#${i}`, body: '', created_at: createdAt }));
    await db.insertInto('notes').values(rows).execute();
    return rows;
  }

  /** Every page of `sub`'s notes in `order`, walking the `next` positions. */
  async function walk(sub: string, order: 'newest' | 'oldest', limit: number, store = scopedStoreFor(db, sub).notes) {
    const pages: string[][] = [];
    let after: NotePosition | undefined;
    do {
      const page = await store.page({ limit, order, after });
      pages.push(page.notes.map((n) => n.id));
      after = page.next;
      expect(pages.length, 'the walk ends').toBeLessThan(100);
    } while (after);
    return pages;
  }

  it('notes: pages newest first and oldest first by (created_at, id), each note once, ties included', async () => {
    // 23 notes over 8 timestamps: several notes share a millisecond, as concurrent writes do.
    const stamps = Array.from({ length: 23 }, (_, i) => `2026-11-25T10:00:00.00${i % 8}Z`);
    const rows = await seedNotes('pia', stamps);
    await seedNotes('quinn', stamps.slice(0, 5));
    const expected = [...rows]
      .sort((a, b) => (a.created_at === b.created_at ? 0 : a.created_at < b.created_at ? -1 : 1))
      .map((r) => r.created_at);
    const newest = await walk('pia', 'newest', 5);
    expect(newest.map((p) => p.length)).toEqual([5, 5, 5, 5, 3]);
    const ids = newest.flat();
    expect(new Set(ids)).toEqual(new Set(rows.map((r) => r.id)));
    const stampOf = new Map(rows.map((r) => [r.id, r.created_at]));
    expect(ids.map((id) => stampOf.get(id))).toEqual([...expected].reverse());
    // The same order, read from the other end.
    expect((await walk('pia', 'oldest', 4)).flat()).toEqual([...ids].reverse());
  });

  it('notes: a page exactly as long as what is left ends without a next position', async () => {
    await seedNotes('rita', ['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z']);
    const s = scopedStoreFor(db, 'rita').notes;
    expect((await s.page({ limit: 2 })).next).toBeUndefined();
    const first = await s.page({ limit: 1 });
    expect(first.notes.map((n) => n.createdAt)).toEqual(['2026-01-02T00:00:00.000Z']);
    expect(first.next).toEqual({ createdAt: '2026-01-02T00:00:00.000Z', id: first.notes[0]!.id });
    const second = await s.page({ limit: 1, after: first.next });
    expect(second.notes.map((n) => n.createdAt)).toEqual(['2026-01-01T00:00:00.000Z']);
    expect(second.next).toBeUndefined();
    expect(await scopedStoreFor(db, 'nobody').notes.page({ limit: 10 })).toEqual({ notes: [] });
  });

  it("notes: a position from another user's list reads only the caller's own notes", async () => {
    const theirs = await seedNotes('sam', ['2026-05-01T00:00:00.000Z']);
    await seedNotes('tess', ['2026-01-01T00:00:00.000Z', '2026-09-01T00:00:00.000Z']);
    const page = await scopedStoreFor(db, 'tess').notes.page({ limit: 10, after: { createdAt: theirs[0]!.created_at, id: theirs[0]!.id } });
    expect(page.notes.map((n) => n.createdAt)).toEqual(['2026-01-01T00:00:00.000Z']);
  });

  it('notes: a page reads at most limit + 1 rows, however many notes there are', async () => {
    await seedNotes('uma', Array.from({ length: 300 }, (_, i) => new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString()));
    const rowsRead: number[] = [];
    const counter: KyselyPlugin = {
      transformQuery: (args) => args.node,
      transformResult: async (args) => {
        rowsRead.push(args.result.rows.length);
        return args.result;
      },
    };
    const pages = await walk('uma', 'newest', 40, scopedStoreFor(db.withPlugin(counter), 'uma').notes);
    expect(pages.flat()).toHaveLength(300);
    expect(rowsRead).toHaveLength(8);
    expect(Math.max(...rowsRead)).toBe(41);
  });

  it('notes: the page query is an index range scan with no sort step (keyset, not OFFSET)', async () => {
    await seedNotes('vic', Array.from({ length: 50 }, (_, i) => new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString()));
    const nodes: RootOperationNode[] = [];
    const capture: KyselyPlugin = {
      transformQuery: (args) => {
        nodes.push(args.node);
        return args.node;
      },
      transformResult: async (args) => args.result,
    };
    const first = await scopedStoreFor(db.withPlugin(capture), 'vic').notes.page({ limit: 10 });
    await scopedStoreFor(db.withPlugin(capture), 'vic').notes.page({ limit: 10, after: first.next });
    const query = db.getExecutor().compileQuery(nodes[1]!, { queryId: 'explain' });
    const plan = await db.connection().execute(async (c) => {
      if (kind === 'sqlite') {
        const r = await c.executeQuery<{ detail: string }>(CompiledQuery.raw(`EXPLAIN QUERY PLAN ${query.sql}`, [...query.parameters]));
        return r.rows.map((row) => row.detail).join('\n');
      }
      // A 50-row table would be read whole by choice; forbid that to see which index the query can use.
      await sql`SET enable_seqscan = off`.execute(c);
      await sql`SET enable_bitmapscan = off`.execute(c);
      try {
        const r = await c.executeQuery<{ 'QUERY PLAN': string }>(CompiledQuery.raw(`EXPLAIN ${query.sql}`, [...query.parameters]));
        return r.rows.map((row) => row['QUERY PLAN']).join('\n');
      } finally {
        await sql`RESET enable_seqscan`.execute(c);
        await sql`RESET enable_bitmapscan`.execute(c);
      }
    });
    expect(plan).toContain('notes_sub_created_at_id');
    if (kind === 'sqlite') {
      expect(plan).toMatch(/USING (COVERING )?INDEX notes_sub_created_at_id \(sub=\? AND \(created_at,id\)<\(\?,\?\)\)/);
      expect(plan).not.toContain('TEMP B-TREE');
    } else {
      expect(plan).toMatch(/Index Cond: .*sub = .*ROW\(created_at, id\) < ROW/);
      expect(plan).not.toMatch(/\bSort\b/);
    }
  });

  it.each([0, -1, 1.5, 1001])('notes: refuses a page limit of %s', async (limit) => {
    await expect(scopedStoreFor(db, 'x').notes.page({ limit })).rejects.toThrow(RangeError);
  });

  it('records: pages in key order from a key, within a prefix, each record once', async () => {
    const mine = scopedStoreFor(db, 'wes').records('links');
    for (const k of ['web:5', 'web:1', 'mail:1', 'web:3', 'web:2', 'web:4']) await mine.put(k, k);
    await scopedStoreFor(db, 'xena').records('links').put('web:0', 'theirs');
    const keys: string[][] = [];
    let after: string | undefined;
    do {
      const page = await mine.page({ prefix: 'web:', limit: 2, after });
      keys.push(page.records.map((r) => r.key));
      after = page.next;
    } while (after);
    expect(keys).toEqual([['web:1', 'web:2'], ['web:3', 'web:4'], ['web:5']]);
    expect((await mine.page({ limit: 10 })).records.map((r) => r.value)).toEqual(['mail:1', 'web:1', 'web:2', 'web:3', 'web:4', 'web:5']);
    await expect(mine.page({ limit: 0 })).rejects.toBeInstanceOf(RecordsInputError);
  });

  it('records: put, overwrite, get, list by prefix and delete, per user and collection', async () => {
    const mine = scopedStoreFor(db, 'dave').records('bookmarks');
    const theirs = scopedStoreFor(db, 'erin').records('bookmarks');
    const other = scopedStoreFor(db, 'dave').records('settings');
    await mine.put('web:1', { url: 'https://a.example' });
    await mine.put('web:1', { url: 'https://b.example' });
    await mine.put('web:2', ['x', 1, true, null]);
    await mine.put('mail:1', 'text');
    expect(await mine.get('web:1')).toEqual({ url: 'https://b.example' });
    expect((await mine.list({ prefix: 'web:' })).map((r) => r.key)).toEqual(['web:1', 'web:2']);
    expect(await theirs.get('web:1')).toBeUndefined();
    expect(await theirs.list()).toEqual([]);
    expect(await other.list()).toEqual([]);
    expect(await theirs.delete('web:1')).toBe(false);
    expect(await mine.delete('web:1')).toBe(true);
    expect(await mine.get('web:1')).toBeUndefined();
  });

  it.each([
    ['an invalid collection name', () => scopedStoreFor(db, 'x').records('Bad Name!').get('k')],
    ['an empty key', () => scopedStoreFor(db, 'x').records('c').put('', 1)],
    ['a value that is not JSON', () => scopedStoreFor(db, 'x').records('c').put('k', undefined as never)],
    ['a value over 256 KiB', () => scopedStoreFor(db, 'x').records('c').put('k', 'x'.repeat(300_000))],
  ])('records: refuses %s and stores nothing', async (_case, act) => {
    await expect(async () => act()).rejects.toBeInstanceOf(RecordsInputError);
    expect(await db.selectFrom('records').selectAll().execute()).toEqual([]);
  });

  it('users: unique by normalised email', async () => {
    const users = createUserStore(db);
    const u = await users.add('Frank@Example.com', 'long enough');
    await expect(users.add('frank@example.com', 'other one!')).rejects.toBeInstanceOf(DuplicateUserError);
    expect((await users.verify('FRANK@example.com', 'long enough'))?.id).toBe(u.id);
  });

  it('isolation: 20 users writing concurrently each see exactly their own rows', async () => {
    const subs = Array.from({ length: 20 }, (_, i) => `user-${i}`);
    await Promise.all(
      subs.flatMap((sub) =>
        Array.from({ length: 5 }, (_, n) =>
          Promise.all([
            scopedStoreFor(db, sub).notes.add({ title: `${sub}#${n}`, body: sub }),
            scopedStoreFor(db, sub).records('c').put(`k${n}`, { sub, n }),
          ]),
        ),
      ),
    );
    for (const sub of subs) {
      const notes = await scopedStoreFor(db, sub).notes.list();
      expect(notes).toHaveLength(5);
      expect(notes.every((n) => n.body === sub)).toBe(true);
      const records = await scopedStoreFor(db, sub).records('c').list();
      expect(records.map((r) => (r.value as { sub: string }).sub)).toEqual(Array(5).fill(sub));
    }
  });
  it('rate counters: 50 concurrent increments of one key from two "replicas" count 50, each total returned once', async () => {
    const other = await openDatabase(backend.target);
    try {
      const replicas = [rateCountersStore(db), rateCountersStore(other)];
      const now = 1_000_000;
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => replicas[i % 2]!.increment('rl:test:1.2.3.4', 60_000, now)));
      expect(results.map((r) => r.hits).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(new Set(results.map((r) => r.resetAt))).toEqual(new Set([now + 60_000]));
      expect(await replicas[1]!.get('rl:test:1.2.3.4', now)).toEqual({ hits: 50, resetAt: now + 60_000 });
    } finally {
      await other.destroy();
    }
  });

  it('rate counters: a window opens with the first hit and ends at resetAt; the next hit starts again at 1', async () => {
    const c = rateCountersStore(db);
    expect(await c.increment('k', 1000, 5000)).toEqual({ hits: 1, resetAt: 6000 });
    expect(await c.increment('k', 1000, 5999)).toEqual({ hits: 2, resetAt: 6000 });
    expect(await c.get('k', 5999)).toEqual({ hits: 2, resetAt: 6000 });
    expect(await c.get('k', 6000)).toBeUndefined();
    expect(await c.increment('k', 1000, 6000)).toEqual({ hits: 1, resetAt: 7000 });
    expect(await c.get('other', 6000)).toBeUndefined();
  });

  it('rate counters: decrement stops at zero and leaves an ended window alone; reset forgets the key', async () => {
    const c = rateCountersStore(db);
    await c.increment('k', 1000, 0);
    await c.decrement('k', 10);
    await c.decrement('k', 10);
    expect(await c.get('k', 10)).toEqual({ hits: 0, resetAt: 1000 });
    await c.increment('k', 1000, 20);
    await c.reset('k');
    expect(await c.get('k', 20)).toBeUndefined();
    await c.increment('j', 1000, 0);
    await c.decrement('j', 1000);
    expect(await db.selectFrom('rate_counters').select('hits').where('key', '=', 'j').executeTakeFirst()).toEqual({ hits: 1 });
  });

  it('rate counters: the sweep deletes ended windows only, and runs on an increment at most once per sweepEveryMs', async () => {
    const c = rateCountersStore(db, { sweepEveryMs: 10_000 });
    await c.increment('short', 100, 0);
    await c.increment('long', 60_000, 0);
    expect(await c.sweep(100)).toBe(1);
    const keys = async () => (await db.selectFrom('rate_counters').select('key').orderBy('key').execute()).map((r) => r.key);
    expect(await keys()).toEqual(['long']);
    await c.increment('short', 100, 200); // within 10 s of the first increment's sweep: no sweep
    await c.increment('long', 60_000, 5_000);
    expect(await keys()).toEqual(['long', 'short']);
    await c.increment('long', 60_000, 10_000); // 10 s after: sweeps "short" (ended at 300)
    expect(await keys()).toEqual(['long']);
  });

  it.each([
    ['an empty key', () => rateCountersStore(db).increment('', 1000, 0), 'rate counter key'],
    ['a key over 512 characters', () => rateCountersStore(db).increment('k'.repeat(513), 1000, 0), 'rate counter key'],
    ['a zero window', () => rateCountersStore(db).increment('k', 0, 0), 'windowMs must be a positive integer, got 0'],
    ['a fractional window', () => rateCountersStore(db).increment('k', 1.5, 0), 'windowMs must be a positive integer, got 1.5'],
  ])('rate counters: refuse %s with a TypeError and write nothing', async (_name, run, message) => {
    await expect(run()).rejects.toThrow(new RegExp(message.replace(/[.]/g, '\\.')));
    await expect(run()).rejects.toBeInstanceOf(TypeError);
    expect(await db.selectFrom('rate_counters').selectAll().execute()).toEqual([]);
  });
});
