import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { auditInserter } from '../../src/store/auditStore.js';
import { openDatabase, sqliteHandleOf } from '../../src/store/database.js';
import { startSqliteCheckpointer } from '../../src/store/sqliteCheckpointer.js';

/** WAL checkpoints of the SQLite file on a thread of their own, never in a request's commit on the server's connection. */
const dir = mkdtempSync(join(tmpdir(), 'checkpointer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const rows = (n: number) => Array.from({ length: n }, () => ({ id: randomUUID(), at: new Date().toISOString(), kind: 'tool_call' as const, sub: randomUUID(), outcome: 'ok' as const, tool: 'whoami' }));

describe('SQLite checkpointer', () => {
  it("issue 26 #10: the server's connection never checkpoints (its commits never copy the WAL or wait for an fsync); the checkpointer's thread does", async () => {
    const db = await openDatabase({ kind: 'sqlite', path: join(dir, 'ckpt.sqlite') });
    const sqlite = sqliteHandleOf(db)!;
    // A timer that never fires in this test: every checkpoint here is asked for.
    const checkpointer = startSqliteCheckpointer(db, { everyMs: 3_600_000 })!;
    expect(sqlite.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    // Far past SQLite's own threshold (1000 pages), which would have had the server's connection checkpoint in a commit.
    await auditInserter(db).insertMany(rows(20_000));
    const copied = await checkpointer.checkpointNow();
    expect(copied).toBeGreaterThan(2000);
    // Everything is in the file now: nothing left for the next checkpoint.
    expect(await checkpointer.checkpointNow()).toBe(copied);
    await checkpointer.stop();
    await db.destroy();
  });

  it('a checkpointer that stops hands checkpoints back to the server connection; PostgreSQL and in-memory SQLite have none', async () => {
    const db = await openDatabase({ kind: 'sqlite', path: join(dir, 'stop.sqlite') });
    const checkpointer = startSqliteCheckpointer(db)!;
    await checkpointer.stop();
    expect(sqliteHandleOf(db)!.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    await expect(checkpointer.checkpointNow()).rejects.toMatchObject({ name: 'CheckpointerStopped' });
    await checkpointer.stop();
    await db.destroy();
    const memory = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    expect(startSqliteCheckpointer(memory)).toBeUndefined();
    await memory.destroy();
    expect(() => startSqliteCheckpointer(db, { everyMs: 0 })).toThrow(/everyMs/);
  });
});
