import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Audit } from '../../src/audit/audit.js';
import { AuditWriter, type AuditWriterOptions } from '../../src/audit/auditWriter.js';
import { ClientNames } from '../../src/audit/clientNames.js';
import { AuditRetention } from '../../src/audit/retention.js';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/log/logger.js';
import { auditStore } from '../../src/store/auditStore.js';
import { type Db, openDatabase } from '../../src/store/database.js';

/** The writer, the retention sweep and the settings, against a real SQLite file. */
describe('audit writer', () => {
  let dir: string;
  let db: Db;
  const lines: string[] = [];
  const log = createLogger('info', (l) => lines.push(l));
  const counts = { written: 0, failed: 0, dropped: 0 };
  const writers: AuditWriter[] = [];
  const writer = (o: Partial<AuditWriterOptions> = {}) => {
    const w = new AuditWriter({
      store: auditStore(db),
      log,
      onWritten: (n) => (counts.written += n),
      onFailed: (n) => (counts.failed += n),
      onDropped: () => counts.dropped++,
      flushIntervalMs: 60_000,
      ...o,
    });
    writers.push(w);
    return w;
  };
  const rows = () => db.selectFrom('audit_events').selectAll().execute();
  const call = (sub: string, tool = 'whoami') => ({ kind: 'tool_call' as const, sub, clientId: 'c1', tool, scopes: 'openid', outcome: 'ok' as const });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-mcp-auditw-'));
    db = await openDatabase({ kind: 'sqlite', path: join(dir, 'a.sqlite') });
    lines.length = 0;
    Object.assign(counts, { written: 0, failed: 0, dropped: 0 });
  });
  afterEach(async () => {
    for (const w of writers.splice(0)) await w.stop();
    await db.destroy().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it('an insert that answers later (SQLite between its transactions, PostgreSQL over the network) is not followed by a tiny batch of what came meanwhile', async () => {
    const sizes: number[] = [];
    const slow = { insertMany: async (events: readonly unknown[]) => {
      sizes.push(events.length);
      await sleep(20);
    } };
    const w = writer({ batchSize: 10, store: slow });
    for (let i = 0; i < 10; i++) w.record(call(`a${i}`));
    await expect.poll(() => sizes.length, { timeout: 2000 }).toBe(1);
    // Three arrive while that batch is being written: they wait for a full batch, the timer or a flush.
    for (let i = 0; i < 3; i++) w.record(call(`b${i}`));
    await sleep(100);
    expect(sizes).toEqual([10]);
    expect(w.queued).toBe(3);
    // 25 more: two full batches go at once; the rest waits.
    for (let i = 0; i < 25; i++) w.record(call(`c${i}`));
    await expect.poll(() => sizes.length, { timeout: 2000 }).toBe(3);
    await sleep(100);
    expect(sizes).toEqual([10, 10, 10]);
    // A flush (and stop) writes everything, the last batch partial.
    await w.flush();
    expect(sizes).toEqual([10, 10, 10, 8]);
    expect(w.queued).toBe(0);
  });

  it('record() returns before anything is written; a full batch is written without waiting for the timer', async () => {
    const w = writer({ batchSize: 3 });
    for (let i = 0; i < 3; i++) w.record(call(`s${i}`));
    expect(await rows()).toHaveLength(0);
    await expect.poll(() => counts.written, { timeout: 2000 }).toBe(3);
    // A partial batch waits for the timer (60 s here) or a flush.
    w.record(call('s3'));
    await sleep(50);
    expect(w.queued).toBe(1);
    await w.flush();
    expect((await rows()).map((r) => r.sub).sort()).toEqual(['s0', 's1', 's2', 's3']);
    const r = (await rows())[0]!;
    expect(r.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(r.at)).not.toBeNaN();
  });

  it('ids are unique time-ordered UUIDs (v7): a later record never sorts before an earlier one of another millisecond', async () => {
    const w = writer({ batchSize: 10_000 });
    for (let i = 0; i < 2_000; i++) w.record(call(`u${i}`));
    await sleep(5);
    w.record(call('last'));
    await w.flush();
    const all = await rows();
    const ids = all.map((r) => r.id);
    expect(new Set(ids).size).toBe(2_001);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const last = all.find((r) => r.sub === 'last')!.id;
    expect(ids.filter((id) => id > last)).toEqual([]);
  });

  it('a partial batch is written by the timer', async () => {
    const w = writer({ flushIntervalMs: 30 });
    w.record(call('timer'));
    await expect.poll(async () => (await rows()).length, { timeout: 2000 }).toBe(1);
    expect(w.queued).toBe(0);
  });

  it('the queue is bounded: events past maxQueue are dropped and counted, memory does not grow', async () => {
    const w = writer({ maxQueue: 5, batchSize: 100 });
    for (let i = 0; i < 8; i++) w.record(call(`q${i}`));
    expect(w.queued).toBe(5);
    expect(counts.dropped).toBe(3);
    await w.flush();
    expect(await rows()).toHaveLength(5);
  });

  it('a failed write never throws to the caller: the batch is counted and logged without its contents', async () => {
    const w = writer();
    await db.destroy();
    expect(() => w.record(call('secret-sub', 'secret_tool'))).not.toThrow();
    await expect(w.flush()).resolves.toBeUndefined();
    expect(counts.failed).toBe(1);
    const line = lines.find((l) => l.includes('audit records not written'));
    expect(line).toBeDefined();
    expect(line).not.toMatch(/secret-sub|secret_tool/);
  });

  it('stop() writes everything queued and drops what comes after', async () => {
    const w = writer({ batchSize: 100 });
    for (let i = 0; i < 3; i++) w.record(call(`st${i}`));
    await w.stop();
    expect(await rows()).toHaveLength(3);
    w.record(call('late'));
    expect(counts.dropped).toBe(1);
  });

  it('client names are looked up once per client while cached (Hydra stood in by a local getClient stub)', async () => {
    let asked = 0;
    const names = new ClientNames({ hydraAdmin: { getClient: async (id) => (asked++, { client_id: id, client_name: `<b>${id} app</b>` }) } });
    const w = writer({ clientName: (id) => names.nameOf(id) });
    w.record(call('n1'));
    w.record(call('n2'));
    w.record({ ...call('n3'), clientName: 'given' });
    await w.flush();
    w.record(call('n4'));
    await w.flush();
    expect(asked).toBe(1);
    const byName = Object.fromEntries((await rows()).map((r) => [r.sub, r.client_name]));
    expect(byName).toEqual({ n1: '<b>c1 app</b>', n2: '<b>c1 app</b>', n3: 'given', n4: '<b>c1 app</b>' });
  });

  it('Audit.off() records nothing; Audit.over() fills request id, transport and duration from the call context', async () => {
    const off = Audit.off();
    off.toolCall({ sub: 'x', clientId: 'c', scopes: [], tool: 't', outcome: 'ok' });
    const w = writer();
    const audit = Audit.over(w);
    const context = { requestId: 'req-9', transport: 'sse' as const, startedAt: performance.now() - 5, begun: new Map() };
    audit.toolOutcome('whoami', 'ok', { sub: 'ctx', clientId: 'c2', scopes: ['openid', 'notes:read'], expiresAt: 0, kind: 'person' }, 1, context);
    audit.credentialUsed('github', 'refreshed', 'ctx', 'req-9');
    audit.credentialUsed('github', 'ok', 'ctx');
    // The fair-use limiter's hook: a refused tools/call is recorded, a refused non-call is not.
    audit.rateLimited({ sub: 'ctx', clientId: 'c3', transport: 'streamable-http', tool: 'notes_add', requestId: 'req-rl' });
    audit.rateLimited({ sub: 'ctx', clientId: 'c3', transport: 'sse' });
    await w.flush();
    const all = await rows();
    expect(all.filter((r) => r.outcome === 'rate_limited')).toEqual([
      expect.objectContaining({ sub: 'ctx', client_id: 'c3', tool: 'notes_add', transport: 'streamable-http', request_id: 'req-rl', duration_ms: 0 }),
    ]);
    const got = all.filter((r) => r.outcome !== 'rate_limited');
    expect(got).toHaveLength(3);
    const tool = got.find((r) => r.kind === 'tool_call')!;
    expect(tool).toMatchObject({ sub: 'ctx', client_id: 'c2', tool: 'whoami', scopes: 'openid notes:read', request_id: 'req-9', transport: 'sse', outcome: 'ok' });
    expect(Number(tool.duration_ms)).toBeGreaterThanOrEqual(4);
    // A credential use carries the request id of the tool call that used it, when given.
    expect(got.find((r) => r.kind === 'credential_used' && r.outcome === 'refreshed')).toMatchObject({ sub: 'ctx', detail: 'provider github', request_id: 'req-9' });
    expect(got.find((r) => r.kind === 'credential_used' && r.outcome === 'ok')).toMatchObject({ sub: 'ctx', request_id: null });
  });

  it("each record carries its own call's scopes, whether calls of one token come in runs or alternate with other tokens' (the joined list is kept per list, not per person)", async () => {
    const w = writer();
    const audit = Audit.over(w);
    const person = (sub: string, scopes: string[]) => ({ sub, clientId: 'c1', scopes, expiresAt: 0, kind: 'person' as const });
    // One verified token's principal hands every call the same list; another token of the same person, another list.
    const broad = person('s1', ['openid', 'notes:read', 'notes:write']);
    const narrow = person('s1', ['notes:read']);
    const other = person('s2', ['openid']);
    const calls = [broad, broad, narrow, broad, other, other, { ...narrow, scopes: [...narrow.scopes, 'notes:write'] }, { ...broad, scopes: [] }];
    calls.forEach((p, i) => audit.toolOutcome(`t${i}`, 'ok', p, 1));
    audit.toolCall({ sub: 's3', clientId: 'c1', scopes: ['a', 'b'], tool: `t${calls.length}`, outcome: 'error' });
    await w.flush();
    const byTool = Object.fromEntries((await rows()).map((r) => [r.tool, r.scopes]));
    expect(byTool).toEqual({
      t0: 'openid notes:read notes:write',
      t1: 'openid notes:read notes:write',
      t2: 'notes:read',
      t3: 'openid notes:read notes:write',
      t4: 'openid',
      t5: 'openid',
      t6: 'notes:read notes:write',
      t7: '',
      t8: 'a b',
    });
  });

  it('the retention sweep deletes records older than AUDIT_RETENTION_DAYS and keeps the rest', async () => {
    const now = new Date('2026-06-01T00:00:00.000Z');
    const store = auditStore(db);
    await store.insertMany([
      { id: 'old', at: '2026-02-01T00:00:00.000Z', kind: 'tool_call', sub: 'r', outcome: 'ok' },
      { id: 'new', at: '2026-05-30T00:00:00.000Z', kind: 'tool_call', sub: 'r', outcome: 'ok' },
    ]);
    const sweep = new AuditRetention({ store, days: 90, log, now: () => now });
    expect(await sweep.sweep()).toBe(1);
    expect((await rows()).map((r) => r.id)).toEqual(['new']);
    expect(() => new AuditRetention({ store, days: 0, log })).toThrow(/days must be a positive integer/);
  });
});

describe('audit settings', () => {
  it('default: on, 90 days; AUDIT=off turns it off', () => {
    expect(loadConfig({}).audit).toEqual({ enabled: true, retentionDays: 90 });
    expect(loadConfig({ AUDIT: 'off', AUDIT_RETENTION_DAYS: '7' }).audit).toEqual({ enabled: false, retentionDays: 7 });
  });

  it.each(['0', '-1', 'abc', '1.5', '', '99999'])('AUDIT_RETENTION_DAYS=%j stops the start, naming it', (value) => {
    expect(() => loadConfig({ AUDIT_RETENTION_DAYS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ AUDIT_RETENTION_DAYS: value })).toThrow(/AUDIT_RETENTION_DAYS: must be a whole number of days from 1 to 3650/);
  });

  it.each(['yes', 'true', 'ON'])('AUDIT=%j stops the start, naming it', (value) => {
    expect(() => loadConfig({ AUDIT: value })).toThrow(/AUDIT:/);
  });
});
