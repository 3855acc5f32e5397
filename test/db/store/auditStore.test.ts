import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditEvent, auditInserter, auditStore } from '../../../src/store/auditStore.js';
import { type Db, openDatabase } from '../../../src/store/database.js';
import { deleteSubjectData } from '../../../src/store/subjectData.js';
import { type Backend, storeBackends } from '../../support/backends.js';

/** The audit store contract, the same on the embedded SQLite file and a real PostgreSQL. */
const backends = storeBackends('audit');

const ev = (over: Partial<AuditEvent> & Pick<AuditEvent, 'at'>): AuditEvent => ({ id: randomUUID(), kind: 'tool_call', outcome: 'ok', ...over });

describe.each(['sqlite', 'postgres'] as const)('audit store on %s', (kind) => {
  let backend: Backend;
  let db: Db;

  beforeAll(async () => {
    backend = await backends[kind]();
    db = await openDatabase(backend.target);
  });
  afterAll(async () => {
    await db?.destroy();
    await backend?.cleanup();
  });

  it('stores every field and reads it back unchanged; absent fields stay absent', async () => {
    const store = auditStore(db);
    const full: AuditEvent = {
      id: randomUUID(),
      at: '2026-01-01T00:00:00.123Z',
      kind: 'tool_call',
      requestId: 'req-1',
      sub: 'full-sub',
      clientId: 'c1',
      clientName: 'App One',
      tool: 'notes_add',
      scopes: 'openid notes:read',
      outcome: 'insufficient_scope',
      durationMs: 12,
      transport: 'sse',
      detail: 'x'.repeat(500),
    };
    const bare = ev({ at: '2026-01-01T00:00:01.000Z', kind: 'sign_in_failed', outcome: 'refused', detail: 'unknown account' });
    await store.insertMany([full, bare]);
    const [got] = (await store.pageForSubject('full-sub', { limit: 10 })).events;
    expect(got).toEqual({ ...full, detail: 'x'.repeat(200) });
    const [anon] = await store.search({ limit: 1, since: new Date('2026-01-01T00:00:01.000Z') });
    expect(anon).toEqual(bare);
    expect(anon).not.toHaveProperty('sub');
  });

  it("pages one person's records newest first by keyset, never another person's", async () => {
    const store = auditStore(db);
    // Five records in two milliseconds: ties on `at` are broken by id.
    const mine = Array.from({ length: 5 }, (_, i) => ev({ sub: 'alice', at: `2026-02-01T00:00:00.00${i % 2}Z`, tool: `t${i}` }));
    await store.insertMany([...mine, ev({ sub: 'bob', at: '2026-02-01T00:00:00.001Z' }), ev({ sub: 'bob', at: '2026-03-01T00:00:00.000Z' })]);
    const seen: AuditEvent[] = [];
    let after;
    for (let pages = 0; ; pages++) {
      const page = await store.pageForSubject('alice', { limit: 2, ...(after ? { after } : {}) });
      seen.push(...page.events);
      expect(pages).toBeLessThan(3);
      if (!page.next) break;
      after = page.next;
    }
    const expected = [...mine].sort((a, b) => (a.at === b.at ? (a.id < b.id ? 1 : -1) : a.at < b.at ? 1 : -1));
    expect(seen.map((e) => e.id)).toEqual(expected.map((e) => e.id));
    expect(seen.every((e) => e.sub === 'alice')).toBe(true);
    expect((await store.pageForSubject('nobody', { limit: 5 })).events).toEqual([]);
  });

  it('search filters by sub, client, tool and since, newest first, up to the limit', async () => {
    const store = auditStore(db);
    await store.insertMany([
      ev({ sub: 's-q', clientId: 'cq1', tool: 'whoami', at: '2026-04-01T00:00:00.000Z' }),
      ev({ sub: 's-q', clientId: 'cq2', tool: 'whoami', at: '2026-04-02T00:00:00.000Z' }),
      ev({ sub: 's-q', clientId: 'cq1', tool: 'notes_add', at: '2026-04-03T00:00:00.000Z' }),
      ev({ sub: 's-r', clientId: 'cq1', tool: 'whoami', at: '2026-04-04T00:00:00.000Z' }),
    ]);
    const tools = async (f: Parameters<typeof store.search>[0]) => (await store.search(f)).map((e) => `${e.sub}/${e.clientId}/${e.tool}`);
    expect(await tools({ sub: 's-q', limit: 10 })).toEqual(['s-q/cq1/notes_add', 's-q/cq2/whoami', 's-q/cq1/whoami']);
    expect(await tools({ clientId: 'cq1', limit: 10 })).toEqual(['s-r/cq1/whoami', 's-q/cq1/notes_add', 's-q/cq1/whoami']);
    expect(await tools({ clientId: 'cq1', tool: 'whoami', limit: 10 })).toEqual(['s-r/cq1/whoami', 's-q/cq1/whoami']);
    expect(await tools({ sub: 's-q', since: new Date('2026-04-02T00:00:00.000Z'), limit: 10 })).toEqual(['s-q/cq1/notes_add', 's-q/cq2/whoami']);
    expect(await tools({ sub: 's-q', limit: 1 })).toEqual(['s-q/cq1/notes_add']);
  });

  it.each([0, -1, 1.5, 1001, Number.NaN])('a page limit of %s is refused before any read', async (limit) => {
    await expect(auditStore(db).pageForSubject('alice', { limit })).rejects.toThrow(/limit must be an integer from 1 to 1000/);
    await expect(auditStore(db).search({ limit })).rejects.toThrow(/limit must be an integer from 1 to 1000/);
  });

  it('retention deletes only records older than the cutoff, in bounded batches', async () => {
    const store = auditStore(db);
    await store.insertMany([
      ...Array.from({ length: 3 }, (_, i) => ev({ sub: 'old', at: `2000-01-0${i + 1}T00:00:00.000Z` })),
      ev({ sub: 'old', at: '2099-01-01T00:00:00.000Z' }),
    ]);
    const cutoff = new Date('2001-01-01T00:00:00.000Z');
    expect(await store.deleteOlderThan(cutoff, 2)).toBe(2);
    expect(await store.deleteOlderThan(cutoff, 2)).toBe(1);
    expect(await store.deleteOlderThan(cutoff, 2)).toBe(0);
    expect((await store.pageForSubject('old', { limit: 10 })).events.map((e) => e.at)).toEqual(['2099-01-01T00:00:00.000Z']);
  });

  it("a person's removal keeps their audit records (retained by design, swept by retention)", async () => {
    const store = auditStore(db);
    await store.insertMany([ev({ sub: 'leaving', at: '2026-05-01T00:00:00.000Z' })]);
    await deleteSubjectData(db, 'leaving');
    expect((await store.pageForSubject('leaving', { limit: 10 })).events).toHaveLength(1);
  });

  it('records survive a restart (the database closed and opened again)', async () => {
    const id = randomUUID();
    await auditStore(db).insertMany([{ id, at: '2026-06-01T00:00:00.000Z', kind: 'consent_granted', sub: 'restart', outcome: 'ok', clientId: 'cr' }]);
    await db.destroy();
    db = await openDatabase(backend.target);
    const [got] = (await auditStore(db).pageForSubject('restart', { limit: 1 })).events;
    expect(got).toEqual({ id, at: '2026-06-01T00:00:00.000Z', kind: 'consent_granted', sub: 'restart', outcome: 'ok', clientId: 'cr' });
  });

  it("the audit writer's inserts skip records already stored, so a batch retried after a failure part-way is neither doubled nor refused", async () => {
    const inserter = auditInserter(db);
    const batch = Array.from({ length: 40 }, (_, i) => ev({ sub: 'retried', at: `2026-03-01T00:00:00.${String(i).padStart(3, '0')}Z` }));
    await inserter.insertMany(batch.slice(0, 15));
    await inserter.insertMany(batch);
    expect((await auditStore(db).search({ sub: 'retried', limit: 100 })).map((e) => e.id).sort()).toEqual(batch.map((e) => e.id).sort());
  });
});
