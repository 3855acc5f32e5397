import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createUserStore, DuplicateUserError } from '../../src/login/userStore.js';
import { type DatabaseTarget, type Db, openDatabase } from '../../src/store/database.js';
import { RecordsInputError } from '../../src/store/recordsStore.js';
import { scopedStoreFor } from '../../src/store/scopedStore.js';
import { createTestDatabase } from '../support/postgres.js';

/**
 * One storage contract, run against every backend: the embedded SQLite file
 * and a real PostgreSQL server (Debian's, started for the run).
 */
interface Backend {
  target: DatabaseTarget;
  cleanup(): Promise<void>;
}

const backends: Record<'sqlite' | 'postgres', () => Promise<Backend>> = {
  sqlite: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hydra-mcp-store-'));
    return { target: { kind: 'sqlite', path: join(dir, 'store.sqlite') }, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  },
  postgres: async () => {
    const db = await createTestDatabase(inject('postgresUrl'));
    return { target: { kind: 'postgres', url: db.url, poolMax: 10 }, cleanup: db.drop };
  },
};

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
});
