import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createUserStore } from '../../../src/account/userStore.js';
import { type DatabaseTarget, type Db, openDatabase } from '../../../src/store/database.js';
import { EXPORT_FORMAT, EXPORT_VERSION, exportSubjectData } from '../../../src/store/export.js';
import { scopedStoreFor } from '../../../src/store/scopedStore.js';
import { SUBJECT_TABLES } from '../../../src/store/subjectData.js';
import { createTestDatabase } from '../../support/postgres.js';

const NOW = new Date('2026-11-25T12:00:00.000Z');

async function exportText(db: Db, sub: string, pageSize?: number) {
  let text = '';
  const pieces: string[] = [];
  for await (const piece of exportSubjectData(db, sub, { now: () => NOW, ...(pageSize ? { pageSize } : {}) })) {
    pieces.push(piece);
    text += piece;
  }
  return { text, pieces };
}

const backends: Record<'sqlite' | 'postgres', () => Promise<{ target: DatabaseTarget; cleanup(): Promise<void> }>> = {
  sqlite: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hydra-mcp-export-'));
    return { target: { kind: 'sqlite', path: join(dir, 'store.sqlite') }, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  },
  postgres: async () => {
    const pg = await createTestDatabase(inject('postgresUrl'));
    return { target: { kind: 'postgres', url: pg.url }, cleanup: pg.drop };
  },
};

describe.each(['sqlite', 'postgres'] as const)('exportSubjectData on %s', (kind) => {
  let db: Db;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const backend = await backends[kind]();
    cleanup = backend.cleanup;
    db = await openDatabase(backend.target);
  });
  afterAll(async () => {
    await db?.destroy();
    await cleanup?.();
  });
  beforeEach(async () => {
    for (const table of ['notes', 'records', 'users'] as const) await db.deleteFrom(table).execute();
  });

  it('a person with no data gets an empty, valid document naming every collection', async () => {
    const alice = await createUserStore(db).add('alice@example.com', 'correct horse');
    const doc = JSON.parse((await exportText(db, alice.id)).text);
    expect(doc).toEqual({
      format: EXPORT_FORMAT,
      version: EXPORT_VERSION,
      exportedAt: NOW.toISOString(),
      sub: alice.id,
      account: { email: 'alice@example.com', createdAt: alice.createdAt },
      notes: [],
      records: [],
      connections: [],
      connect_states: [],
      kratos_subjects: [],
      mcp_sessions: [],
      mcp_stream_events: [],
    });
    // What removal deletes is what export hands back: one key per subject table.
    for (const table of SUBJECT_TABLES) expect(doc).toHaveProperty(table);
  });

  it('a subject without an account row (removed, or never a user) still gets a valid document, account null', async () => {
    expect(JSON.parse((await exportText(db, 'nobody')).text)).toMatchObject({ sub: 'nobody', account: null, notes: [], records: [] });
  });

  it.each([1, 2, 3, 500])(
    'pages of %i rows: every note in insertion order and every record in (collection, key) order, only the owner\'s, no password hash',
    async (pageSize) => {
      const users = createUserStore(db);
      const alice = await users.add('alice@example.com', 'correct horse');
      const bob = await users.add('bob@example.com', 'battery staple');
      const a = scopedStoreFor(db, alice.id);
      const b = scopedStoreFor(db, bob.id);
      const notes = [];
      for (let i = 0; i < 5; i++) notes.push(await a.notes.add({ title: `note ${i}`, body: `body "${i}" </script>\n` }));
      await b.notes.add({ title: 'bob secret', body: 'not alice' });
      await a.records('zeta').put('k1', { deep: [1, 'two', null, { three: true }] });
      await a.records('alpha').put('b', 'second');
      await a.records('alpha').put('a', 42);
      await a.records('alpha').put('c', null);
      await b.records('alpha').put('a', 'bob value');

      const { text, pieces } = await exportText(db, alice.id, pageSize);
      const doc = JSON.parse(text);
      expect(doc.notes).toEqual(notes);
      expect(doc.records.map((r: { collection: string; key: string; value: unknown }) => [r.collection, r.key, r.value])).toEqual([
        ['alpha', 'a', 42],
        ['alpha', 'b', 'second'],
        ['alpha', 'c', null],
        ['zeta', 'k1', { deep: [1, 'two', null, { three: true }] }],
      ]);
      expect(doc.records.every((r: { updatedAt: string }) => !Number.isNaN(Date.parse(r.updatedAt)))).toBe(true);
      expect(text).not.toContain('bob');
      expect(text).not.toContain('scrypt$');
      // Streamed: with small pages, many pieces, none holding the whole document.
      if (pageSize === 1) expect(pieces.length).toBeGreaterThan(9);
    },
  );

  it('refuses an empty sub or a page size below 1 (nothing read)', async () => {
    await expect(exportText(db, '')).rejects.toThrow(/sub must be a non-empty string/);
    await expect(exportText(db, 'x', 0.5)).rejects.toThrow(/pageSize must be a positive integer/);
  });
});
