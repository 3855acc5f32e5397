import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import SQLite from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditWriter } from '../../src/audit/auditWriter.js';
import { createLogger } from '../../src/log/logger.js';
import { type AuditEvent, auditInserter, auditStore } from '../../src/store/auditStore.js';
import { type Db, openDatabase, sqliteHandleOf } from '../../src/store/database.js';
import { tokenBucketsStore } from '../../src/store/tokenBuckets.js';

/** The audit writer's inserts into a SQLite file, beside the server's own writes and other connections' locks. */
const dir = mkdtempSync(join(tmpdir(), 'audit-inserts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ev = (over: Partial<AuditEvent> = {}): AuditEvent => ({ id: randomUUID(), at: new Date().toISOString(), kind: 'tool_call', sub: 'w-sub', outcome: 'ok', tool: 'whoami', ...over });
const countOf = (db: Db, sub: string) => sqliteHandleOf(db)!.prepare('SELECT count(*) FROM audit_events WHERE sub = ?').pluck().get(sub);
const isBusy = (e: unknown) => typeof (e as { code?: unknown }).code === 'string' && (e as { code: string }).code.startsWith('SQLITE_BUSY');

describe('audit inserts on a SQLite file', () => {
  it('issue 26 #10: a batch that meets SQLITE_BUSY (a lock held by another connection) is retried once the lock is let go, and nothing is lost', async () => {
    const path = join(dir, 'busy.sqlite');
    const db = await openDatabase({ kind: 'sqlite', path });
    // Another connection to the file (the user CLI, another process) holds the write lock.
    const holder = new SQLite(path);
    holder.exec('BEGIN IMMEDIATE');
    const counts = { written: 0, failed: 0, retried: 0 };
    let metLock!: () => void;
    const lockMet = new Promise<void>((resolve) => (metLock = resolve));
    const writer = new AuditWriter({
      store: auditInserter(db),
      log: createLogger('silent'),
      flushIntervalMs: 60_000,
      onWritten: (n) => (counts.written += n),
      onFailed: (n) => ((counts.failed += n), metLock()),
      onRetried: (n) => ((counts.retried += n), metLock()),
    });
    // A full batch: written at once, into the held lock.
    for (let i = 0; i < 200; i++) writer.record({ kind: 'tool_call', sub: 'busy', tool: 'whoami', outcome: 'ok' });
    await lockMet;
    holder.exec('COMMIT');
    holder.close();
    await writer.stop();
    expect(await auditStore(db).search({ sub: 'busy', limit: 1000 })).toHaveLength(200);
    expect(counts.failed).toBe(0);
    expect(counts.written).toBe(200);
    expect(counts.retried).toBeGreaterThan(0);
    await db.destroy();
  });

  it('a batch that keeps meeting the lock is tried again only for retryForMs, then counted lost; the writer goes on', async () => {
    const path = join(dir, 'held.sqlite');
    const db = await openDatabase({ kind: 'sqlite', path });
    const holder = new SQLite(path);
    holder.exec('BEGIN IMMEDIATE');
    const counts = { written: 0, failed: 0, retried: 0 };
    const lines: string[] = [];
    const writer = new AuditWriter({
      store: auditInserter(db),
      log: createLogger('info', (l) => lines.push(l)),
      flushIntervalMs: 60_000,
      retryForMs: 200,
      onWritten: (n) => (counts.written += n),
      onFailed: (n) => (counts.failed += n),
      onRetried: (n) => (counts.retried += n),
    });
    writer.record({ kind: 'tool_call', sub: 'held-secret-sub', tool: 'whoami', outcome: 'ok' });
    await writer.flush();
    expect(counts).toMatchObject({ written: 0, failed: 1 });
    expect(counts.retried).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes('audit records not written') && l.includes('SQLITE_BUSY'))).toBe(true);
    expect(lines.join('\n')).not.toContain('held-secret-sub');
    holder.exec('COMMIT');
    holder.close();
    writer.record({ kind: 'tool_call', sub: 'after', tool: 'whoami', outcome: 'ok' });
    await writer.stop();
    expect(countOf(db, 'after')).toBe(1);
    await db.destroy();
  });

  it("issue 26 #10: the server's own writes (the fair-use take) never find the file locked by the audit writer", async () => {
    const db = await openDatabase({ kind: 'sqlite', path: join(dir, 'takes.sqlite') });
    // No waiting on the server's connection: a take that would have had to wait for the audit
    // writer's lock (synchronously, in SQLite's busy handler, stalling the event loop) throws instead.
    sqliteHandleOf(db)!.pragma('busy_timeout = 0');
    const buckets = tokenBucketsStore(db);
    // One long batch: its insert is under way for many turns of the event loop.
    const writing = auditInserter(db).insertMany(Array.from({ length: 5000 }, () => ev({ sub: 'long' })));
    let done = false;
    void writing.finally(() => (done = true)).catch(() => {});
    let takes = 0;
    const busy: unknown[] = [];
    while (!done) {
      try {
        await buckets.take([{ key: `k${takes % 10}`, intervalMs: 1, burst: 1_000_000 }], Date.now());
        takes++;
      } catch (e) {
        if (!isBusy(e)) throw e;
        busy.push(e);
      }
      await nextTurn();
    }
    await writing;
    expect(busy).toHaveLength(0);
    // The takes ran while the batch was being written, between its transactions.
    expect(takes).toBeGreaterThan(0);
    expect(countOf(db, 'long')).toBe(5000);
    await db.destroy();
  });

  it('writes every field as the store reads it back; a batch sent again (part already stored) is neither doubled nor refused', async () => {
    const db = await openDatabase({ kind: 'sqlite', path: join(dir, 'fields.sqlite') });
    const inserter = auditInserter(db);
    const full: AuditEvent = { ...ev(), requestId: 'r1', clientId: 'c1', clientName: 'App', scopes: 'openid', durationMs: 7, transport: 'sse', detail: 'd'.repeat(300) };
    await inserter.insertMany([full, ev({ sub: 'other' })]);
    const [got] = (await auditStore(db).pageForSubject('w-sub', { limit: 5 })).events;
    expect(got).toEqual({ ...full, detail: 'd'.repeat(200) });
    const more = Array.from({ length: 60 }, () => ev({ sub: 'again' }));
    await inserter.insertMany(more.slice(0, 30));
    await inserter.insertMany(more);
    expect(countOf(db, 'again')).toBe(60);
    expect(countOf(db, 'w-sub')).toBe(1);
    await db.destroy();
  });

  it('keeps every row when many batches are sent at once', async () => {
    const db = await openDatabase({ kind: 'sqlite', path: join(dir, 'many.sqlite') });
    const inserter = auditInserter(db);
    const batches = Array.from({ length: 20 }, (_, b) => Array.from({ length: 50 }, (_, i) => ev({ sub: 'many', tool: `t${b * 50 + i}` })));
    await Promise.all(batches.map((b) => inserter.insertMany(b)));
    expect(countOf(db, 'many')).toBe(1000);
    await db.destroy();
  });

  it("never lands inside another caller's open transaction: its rows survive that transaction's rollback", async () => {
    const db = await openDatabase({ kind: 'sqlite', path: join(dir, 'tx.sqlite') });
    const inserter = auditInserter(db);
    let inserted!: Promise<void>;
    await expect(
      db.transaction().execute(async (tx) => {
        await tx.insertInto('audit_events').values({ id: 'in-tx', at: new Date().toISOString(), kind: 'tool_call', outcome: 'ok', sub: 'tx' }).execute();
        inserted = inserter.insertMany([ev({ sub: 'beside' })]);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await inserted;
    expect(countOf(db, 'tx')).toBe(0);
    expect(countOf(db, 'beside')).toBe(1);
    await db.destroy();
  });

  it("never waits out the server connection's busy_timeout, and puts it back after every transaction, lock met or not", async () => {
    const path = join(dir, 'timeout.sqlite');
    const db = await openDatabase({ kind: 'sqlite', path });
    const sqlite = sqliteHandleOf(db)!;
    const timeout = () => sqlite.pragma('busy_timeout', { simple: true });
    // What the server's other writes wait for another process's lock (src/store/database.ts).
    expect(timeout()).toBe(5000);
    const inserter = auditInserter(db);
    // Many transactions (each at most about a millisecond of rows), then a value set by someone else, then a lock met.
    await inserter.insertMany(Array.from({ length: 3000 }, () => ev({ sub: 'timeout' })));
    expect(timeout()).toBe(5000);
    sqlite.pragma('busy_timeout = 2000');
    await inserter.insertMany([ev({ sub: 'timeout' })]);
    expect(timeout()).toBe(2000);
    const holder = new SQLite(path);
    holder.exec('BEGIN IMMEDIATE');
    const started = performance.now();
    const error = await inserter.insertMany([ev({ sub: 'timeout' })]).catch((e: unknown) => e);
    // Refused at once (the writer tries again later), not after the connection's 2 s.
    expect(isBusy(error)).toBe(true);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(timeout()).toBe(2000);
    holder.exec('COMMIT');
    holder.close();
    expect(countOf(db, 'timeout')).toBe(3001);
    await db.destroy();
  });

  it('a failure that will not pass (not a lock) is not tried again, and an in-memory database is written like a file', async () => {
    const db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    const inserter = auditInserter(db);
    await inserter.insertMany([ev({ sub: 'mem' })]);
    expect(countOf(db, 'mem')).toBe(1);
    const error = await inserter.insertMany([ev({ kind: 'nope' as never, outcome: null as never })]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: expect.stringMatching(/^SQLITE_CONSTRAINT/) });
    expect(inserter.retryable(error)).toBe(false);
    await db.destroy();
  });
});
