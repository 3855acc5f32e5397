import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type AuditEvent, auditInserter, auditStore } from '../../src/store/auditStore.js';
import { openDatabase, sqliteHandleOf } from '../../src/store/database.js';
import { SqliteBatchWorker } from '../../src/store/sqliteBatchWorker.js';

/** The audit writer's SQLite inserts from a worker thread: same rows as in place, errors named, nothing left running. */
const dir = mkdtempSync(join(tmpdir(), 'batch-worker-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ev = (over: Partial<AuditEvent> = {}): AuditEvent => ({ id: randomUUID(), at: new Date().toISOString(), kind: 'tool_call', sub: 'w-sub', outcome: 'ok', tool: 'whoami', ...over });

describe('audit inserts from a worker thread (SQLite file)', () => {
  it('writes every field as the in-place insert does, and the server connection reads them at once', async () => {
    const db = await openDatabase({ kind: 'sqlite', path: join(dir, 'fields.sqlite') });
    const inserter = auditInserter(db);
    const full: AuditEvent = { ...ev(), requestId: 'r1', clientId: 'c1', clientName: 'App', scopes: 'openid', durationMs: 7, transport: 'sse', detail: 'd'.repeat(300) };
    await inserter.insertMany([full, ev({ sub: 'other' })]);
    const [got] = (await auditStore(db).pageForSubject('w-sub', { limit: 5 })).events;
    expect(got).toEqual({ ...full, detail: 'd'.repeat(200) });
    await inserter.close();
    await db.destroy();
  });

  it('keeps batches in order and loses none when many are in flight at once', async () => {
    const db = await openDatabase({ kind: 'sqlite', path: join(dir, 'many.sqlite') });
    const inserter = auditInserter(db);
    const batches = Array.from({ length: 20 }, (_, b) => Array.from({ length: 50 }, (_, i) => ev({ tool: `t${b * 50 + i}` })));
    await Promise.all(batches.map((b) => inserter.insertMany(b)));
    const rows = await auditStore(db).search({ sub: 'w-sub', limit: 1000 });
    expect(rows).toHaveLength(1000);
    await inserter.close();
    await db.destroy();
  });

  it('a failing batch rejects with SQLite\'s code, writes none of its rows, and later batches still work', async () => {
    const db = await openDatabase({ kind: 'sqlite', path: join(dir, 'fail.sqlite') });
    const inserter = auditInserter(db);
    const dup = ev();
    await inserter.insertMany([dup]);
    // The same id again: the primary key refuses the whole batch.
    await expect(inserter.insertMany([ev({ sub: 'lost' }), dup])).rejects.toMatchObject({ name: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
    expect(await auditStore(db).search({ sub: 'lost', limit: 5 })).toEqual([]);
    await inserter.insertMany([ev({ sub: 'after' })]);
    expect(await auditStore(db).search({ sub: 'after', limit: 5 })).toHaveLength(1);
    await inserter.close();
    await expect(inserter.insertMany([ev()])).rejects.toThrow(/closed/);
    await db.destroy();
  });

  it("the server's own writes to the file go on while the worker's batches commit (WAL, busy_timeout)", async () => {
    const db = await openDatabase({ kind: 'sqlite', path: join(dir, 'both.sqlite') });
    const inserter = auditInserter(db);
    const store = auditStore(db);
    const fromWorker = Promise.all(Array.from({ length: 20 }, () => inserter.insertMany(Array.from({ length: 500 }, () => ev({ sub: 'worker' })))));
    for (let i = 0; i < 50; i++) await store.insertMany([ev({ sub: 'server' })]);
    await fromWorker;
    expect(await store.search({ sub: 'worker', limit: 1000 })).toHaveLength(1000);
    expect((await store.pageForSubject('worker', { limit: 1 })).next).toBeDefined();
    expect(await store.search({ sub: 'server', limit: 100 })).toHaveLength(50);
    await inserter.close();
    await db.destroy();
  });

  it('close() waits for batches sent before it', async () => {
    const db = await openDatabase({ kind: 'sqlite', path: join(dir, 'close.sqlite') });
    const inserter = auditInserter(db);
    const sent = inserter.insertMany(Array.from({ length: 500 }, () => ev({ sub: 'closing' })));
    await inserter.close();
    await sent;
    expect(await auditStore(db).search({ sub: 'closing', limit: 1000 })).toHaveLength(500);
    await db.destroy();
  });

  it('a worker that cannot open its file fails the batch, and the next batch tries a new worker', async () => {
    const worker = new SqliteBatchWorker({ path: join(dir, 'missing', 'no.sqlite'), sql: 'INSERT INTO t VALUES (?)' });
    await expect(worker.run([[1]])).rejects.toMatchObject({ name: 'WorkerExited' });
    await expect(worker.run([[1]])).rejects.toMatchObject({ name: 'WorkerExited' });
    await worker.close();
  });

  it('an in-memory database is written in place (a worker cannot share it)', async () => {
    expect(() => new SqliteBatchWorker({ path: ':memory:', sql: 'SELECT 1' })).toThrow(/in-memory/);
    const db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    expect(sqliteHandleOf(db)?.memory).toBe(true);
    const inserter = auditInserter(db);
    await inserter.insertMany([ev({ sub: 'mem' })]);
    expect(await auditStore(db).search({ sub: 'mem', limit: 5 })).toHaveLength(1);
    await inserter.close();
    await db.destroy();
  });
});
