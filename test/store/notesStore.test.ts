import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../src/store/database.js';
import { notesStoreFor } from '../../src/store/notesStore.js';

describe('notes store (SQLite in memory): every query keyed by sub', () => {
  let db: Db;
  beforeEach(async () => {
    db = await openDatabase(':memory:');
  });
  afterEach(() => db.destroy());

  it("never lists, reads or deletes another user's notes", async () => {
    const alice = notesStoreFor(db, 'alice');
    const bob = notesStoreFor(db, 'bob');
    const note = await alice.add({ title: 't', body: 'b' });
    expect(await bob.list()).toEqual([]);
    expect(await bob.get(note.id)).toBeUndefined();
    expect(await bob.delete(note.id)).toBe(false);
    expect(await alice.get(note.id)).toEqual(note);
    expect(await alice.delete(note.id)).toBe(true);
    expect(await alice.list()).toEqual([]);
  });

  it('refuses to be built without a subject', () => {
    expect(() => notesStoreFor(db, '')).toThrow(TypeError);
  });

  it('lists oldest first and honours the limit', async () => {
    const s = notesStoreFor(db, 'carol');
    for (const t of ['a', 'b', 'c']) await s.add({ title: t, body: '' });
    expect((await s.list({ limit: 2 })).map((n) => n.title)).toEqual(['a', 'b']);
  });
});
