import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import {
  createAccountRemoval,
  emailDigest,
  RemovalIncompleteError,
  type RemovalStep,
  UnknownAccountError,
} from '../../../src/account/accountRemoval.js';
import { RemovedSubjects } from '../../../src/account/removedSubjects.js';
import { HydraError } from '../../../src/hydra/index.js';
import { createLogger } from '../../../src/log/logger.js';
import { createUserStore, UserInputError } from '../../../src/account/userStore.js';
import { type DatabaseTarget, type Db, openDatabase } from '../../../src/store/database.js';
import { type RemovedSubjectsStore, removedSubjectsStore } from '../../../src/store/removedSubjectsStore.js';
import { scopedStoreFor } from '../../../src/store/scopedStore.js';
import { deleteSubjectData, RETAINED_SUBJECT_TABLES, SUBJECT_TABLES } from '../../../src/store/subjectData.js';
import { mcpStreamEventsStore } from '../../../src/store/mcpStreamEventsStore.js';
import { kratosSubjectsStore } from '../../../src/store/kratosSubjectsStore.js';
import { createTestDatabase } from '../../support/postgres.js';

/**
 * The removed-subjects table, the data sweep and the removal path, run against
 * both backends (the store contract pattern): the embedded SQLite file and a
 * real PostgreSQL server. Hydra is a small recording stub here; the real one is
 * in test/e2e/removal.test.ts.
 */
const backends: Record<'sqlite' | 'postgres', () => Promise<{ target: DatabaseTarget; cleanup(): Promise<void> }>> = {
  sqlite: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hydra-mcp-removed-'));
    return { target: { kind: 'sqlite', path: join(dir, 'store.sqlite') }, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  },
  postgres: async () => {
    const db = await createTestDatabase(inject('postgresUrl'));
    return { target: { kind: 'postgres', url: db.url, poolMax: 5 }, cleanup: db.drop };
  },
};

const log = createLogger('silent');
const HOUR = 3600_000;

/** Hydra's admin API as the removal uses it: records calls, or fails like an unreachable Hydra. */
function stubHydra() {
  const calls: string[] = [];
  let down = false;
  const answer = async (call: string) => {
    if (down) throw new HydraError(0, 'temporarily_unavailable', 'Hydra admin API unreachable');
    calls.push(call);
  };
  return {
    calls,
    setDown: (d: boolean) => (down = d),
    admin: {
      revokeConsentSessions: (subject: string, clientId?: string) => answer(`consent ${subject}${clientId ? ` ${clientId}` : ' all'}`),
      revokeLoginSessions: (subject: string) => answer(`login ${subject}`),
    },
  };
}

describe.each(['sqlite', 'postgres'] as const)('account removal on %s', (kind) => {
  let backend: Awaited<ReturnType<(typeof backends)['sqlite']>>;
  let db: Db;
  let removed: RemovedSubjectsStore;

  beforeAll(async () => {
    backend = await backends[kind]();
  });
  afterAll(async () => {
    await backend?.cleanup();
  });
  beforeEach(async () => {
    db = await openDatabase(backend.target);
    for (const table of ['notes', 'records', 'users', 'removed_subjects'] as const) await db.deleteFrom(table).execute();
    removed = removedSubjectsStore(db);
  });
  afterEach(async () => {
    await db.destroy();
  });

  it('every table with a sub column is swept by a removal (or is the removal record itself)', async () => {
    const tables = await db.introspection.getTables();
    const withSub = tables.filter((t) => t.columns.some((c) => c.name === 'sub')).map((t) => t.name);
    expect(withSub.filter((t) => t !== 'removed_subjects' && !(RETAINED_SUBJECT_TABLES as readonly string[]).includes(t)).sort()).toEqual([...SUBJECT_TABLES].sort());
  });

  it('removed_subjects: recording twice keeps the first time; found by sub and by email digest', async () => {
    const t1 = new Date('2026-01-01T00:00:00.000Z');
    expect(await removed.record('s1', emailDigest('Carol@Example.com'), t1)).toEqual({ sub: 's1', removedAt: t1.toISOString() });
    expect(await removed.record('s1', emailDigest('carol@example.com'), new Date('2026-02-01T00:00:00.000Z'))).toEqual({
      sub: 's1',
      removedAt: t1.toISOString(),
    });
    expect(await removed.find('s1')).toEqual({ sub: 's1', removedAt: t1.toISOString() });
    expect(await removed.find('s2')).toBeUndefined();
    expect((await removed.findByEmailDigest(emailDigest(' CAROL@example.com ')))?.sub).toBe('s1');
    expect(await removed.findByEmailDigest(emailDigest('dan@example.com'))).toBeUndefined();
    await removed.complete('s1', new Date('2026-01-01T00:00:05.000Z'));
    expect((await removed.find('s1'))?.completedAt).toBe('2026-01-01T00:00:05.000Z');
  });

  it('removed_subjects: refuses recent and unfinished removals; prunes only finished ones past retention', async () => {
    const now = Date.parse('2026-03-01T12:00:00.000Z');
    await removed.record('old-done', 'd1', new Date(now - 3 * HOUR));
    await removed.complete('old-done', new Date(now - 3 * HOUR));
    await removed.record('old-unfinished', 'd2', new Date(now - 30 * 24 * HOUR));
    await removed.record('recent-done', 'd3', new Date(now - 10 * 60_000));
    await removed.complete('recent-done', new Date(now - 10 * 60_000));
    const cutoff = new Date(now - 2 * HOUR);
    expect((await removed.refusedSince(cutoff)).map((r) => r.sub).sort()).toEqual(['old-unfinished', 'recent-done']);
    expect(await removed.prune(cutoff)).toBe(1);
    expect(await removed.find('old-done')).toBeUndefined();
    expect(await removed.find('old-unfinished')).toBeDefined();
    expect(await removed.prune(cutoff)).toBe(0);
  });

  it('issue 26 #12: a removal finished after retention is refused, and kept, for the retention period from its completion', async () => {
    const now = Date.parse('2026-03-01T12:00:00.000Z');
    // Began a month ago, stalled, finished ten minutes ago.
    await removed.record('stalled', 'd1', new Date(now - 30 * 24 * HOUR));
    await removed.complete('stalled', new Date(now - 10 * 60_000));
    // Began and finished three hours ago: past retention.
    await removed.record('done', 'd2', new Date(now - 3 * HOUR - 1000));
    await removed.complete('done', new Date(now - 3 * HOUR));
    const cutoff = new Date(now - 2 * HOUR);
    expect((await removed.refusedSince(cutoff)).map((r) => r.sub)).toEqual(['stalled']);
    expect(await removed.prune(cutoff)).toBe(1);
    expect(await removed.find('stalled'), 'pruned by completion, not by start').toBeDefined();
    expect(await removed.find('done')).toBeUndefined();
  });

  it('issue 26 #12: the refusal list keeps a stalled removal finished late for the whole retention after completion', async () => {
    let clock = Date.parse('2026-03-01T12:00:00.000Z');
    const list = new RemovedSubjects({ store: removed, retentionSeconds: 3600, log, now: () => clock, pruneEveryMs: 0 });
    await removed.record('fay', 'd', new Date(clock));
    await list.refresh();
    expect(list.has('fay')).toBe(true);
    // The removal stalls past retention (unfinished: refused whatever its age), then a re-run finishes it.
    clock += 2 * 3600_000;
    await list.refresh();
    expect(list.has('fay'), 'unfinished').toBe(true);
    await removed.complete('fay', new Date(clock));
    clock += 5_000;
    await list.refresh();
    expect(list.has('fay'), 'JWTs issued during the re-run are still refused 5 s after completion').toBe(true);
    clock += 3590_000;
    await list.refresh();
    expect(list.has('fay'), 'just inside retention after completion').toBe(true);
    expect(await removed.find('fay'), 'not pruned while still refused').toBeDefined();
    clock += 10_000;
    await list.refresh();
    expect(list.has('fay'), 'past retention after completion').toBe(false);
    expect(await removed.find('fay'), 'pruned once past retention after completion').toBeUndefined();
  });

  it("deleteSubjectData deletes every row of one sub in every subject table, nobody else's; a second run finds none", async () => {
    for (const sub of ['gone', 'stays']) {
      const s = scopedStoreFor(db, sub);
      await s.notes.add({ title: 'a', body: '' });
      await s.notes.add({ title: 'b', body: '' });
      await s.records('bookmarks').put('k', { v: 1 });
      await kratosSubjectsStore(db).record(sub, new Date());
      await mcpStreamEventsStore(db).append([{ sessionId: `session of ${sub}`, streamId: 'stream', seq: 1, sub, message: '{"jsonrpc":"2.0","id":1,"result":{}}', createdAt: Date.now() }]);
    }
    expect(await deleteSubjectData(db, 'gone')).toEqual({ notes: 2, records: 1, connections: 0, connect_states: 0, kratos_subjects: 1, mcp_sessions: 0, mcp_stream_events: 1 });
    expect(await deleteSubjectData(db, 'gone')).toEqual({ notes: 0, records: 0, connections: 0, connect_states: 0, kratos_subjects: 0, mcp_sessions: 0, mcp_stream_events: 0 });
    expect(await mcpStreamEventsStore(db).after('session of stays', 'stream', 0), "the other person's stream events stay").toHaveLength(1);
    expect(await kratosSubjectsStore(db).page(undefined, 10)).toEqual([{ sub: 'stays' }]);
    expect(await scopedStoreFor(db, 'gone').notes.list()).toEqual([]);
    expect(await scopedStoreFor(db, 'stays').notes.list()).toHaveLength(2);
    expect(await scopedStoreFor(db, 'stays').records('bookmarks').get('k')).toEqual({ v: 1 });
    await expect(deleteSubjectData(db, '')).rejects.toThrow(TypeError);
  });

  it('two replicas: a removal recorded by one is refused by the other after its next read; its own list has it at once', async () => {
    let clock = Date.parse('2026-03-01T12:00:00.000Z');
    const now = () => clock;
    const a = new RemovedSubjects({ store: removedSubjectsStore(db), retentionSeconds: 3600, log, now });
    const b = new RemovedSubjects({ store: removedSubjectsStore(db), retentionSeconds: 3600, log, now });
    await Promise.all([a.refresh(), b.refresh()]);
    await removed.record('carol', 'd', new Date(clock));
    a.add('carol');
    expect(a.has('carol')).toBe(true);
    expect(b.has('carol')).toBe(false);
    await b.refresh();
    expect(b.has('carol')).toBe(true);
    // Finished and past retention: nothing left to refuse (a JWT cannot outlive it).
    await removed.complete('carol', new Date(clock));
    clock += 3601_000;
    await Promise.all([a.refresh(), b.refresh()]);
    expect([a.has('carol'), b.has('carol')]).toEqual([false, false]);
  });

  it('issue 26 #7: suspensions: refused by every replica while suspended; after a reactivation only tokens issued before it, for the retention period', async () => {
    await db.deleteFrom('kratos_subjects').execute();
    let clock = Date.parse('2026-03-01T12:00:00.000Z');
    const now = () => clock;
    const subjects = kratosSubjectsStore(db);
    const list = () => new RemovedSubjects({ store: removedSubjectsStore(db), suspensions: subjects, retentionSeconds: 3600, log, now });
    const [a, b] = [list(), list()];
    await subjects.record('gil', new Date(clock));
    await subjects.record('hal', new Date(clock));
    const before = clock / 1000 - 60;
    expect(await subjects.suspend('gil', new Date(clock))).toBe(true);
    expect(await subjects.suspend('gil', new Date(clock + 1000)), 'a second suspension keeps the first').toBe(false);
    a.suspend('gil');
    expect(a.refusal('gil', before)).toBe('The account this token was issued for is suspended');
    expect(b.refusal('gil', before), 'not read yet').toBeUndefined();
    await b.refresh();
    expect(b.refusal('gil', clock / 1000 + 5), 'every token while suspended, new ones too').toBe('The account this token was issued for is suspended');
    expect(b.has('gil')).toBe(true);
    expect(b.refusal('hal', before), 'another person is unaffected').toBeUndefined();

    clock += 60_000;
    const at = new Date(clock);
    expect(await subjects.reactivate('gil', at)).toBe(true);
    expect(await subjects.reactivate('gil', new Date(clock + 1000)), 'a second reactivation changes nothing').toBe(false);
    a.reactivate('gil', at);
    clock += 1;
    await b.refresh();
    for (const replica of [a, b]) {
      expect(replica.has('gil')).toBe(false);
      expect(replica.refusal('gil', before)).toBe('This token was issued before its account was suspended');
      expect(replica.refusal('gil', undefined), 'a token that does not say when it was issued').toBe('This token was issued before its account was suspended');
      expect(replica.refusal('gil', Math.floor(at.getTime() / 1000)), 'issued in the second of the reactivation').toBeUndefined();
      expect(replica.refusal('gil', at.getTime() / 1000 + 30)).toBeUndefined();
    }
    // Past retention nothing issued before the reactivation can still be valid.
    clock += 3600_000;
    await b.refresh();
    expect(b.refusal('gil', before)).toBeUndefined();
  });

  it('issue 26 #7: a removal outranks a suspension; a reactivation does not lift a removal', async () => {
    await db.deleteFrom('kratos_subjects').execute();
    const subjects = kratosSubjectsStore(db);
    const list = new RemovedSubjects({ store: removed, suspensions: subjects, retentionSeconds: 3600, log });
    await subjects.record('ida', new Date());
    await subjects.suspend('ida', new Date());
    await removed.record('ida', 'd', new Date());
    await list.refresh();
    expect(list.refusal('ida', 0)).toBe('The account this token was issued for has been removed');
    list.reactivate('ida', new Date());
    expect(list.has('ida')).toBe(true);
  });

  it('a subject added here while a read that began before its row was written is under way is kept', async () => {
    let clock = Date.parse('2026-03-01T12:00:00.000Z');
    const store = removedSubjectsStore(db);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // This read sees the table as it was when the read began: without the row.
    const before = await store.refusedSince(new Date(0));
    let first = true;
    const list = new RemovedSubjects({
      store: { ...store, refusedSince: async (since) => (first ? ((first = false), await gate, before) : store.refusedSince(since)) },
      retentionSeconds: 3600,
      log,
      now: () => clock,
    });
    const reading = list.refresh();
    clock += 1;
    await removed.record('dora', 'd', new Date(clock));
    list.add('dora');
    release();
    await reading;
    expect(list.has('dora')).toBe(true);
    clock += 1;
    await list.refresh();
    expect(list.has('dora'), 'the next read has the row').toBe(true);
  });

  it('a failed read keeps the last list (forgetting would let tokens back in)', async () => {
    await removed.record('erin', 'd', new Date());
    const store = removedSubjectsStore(db);
    let fail = false;
    const list = new RemovedSubjects({
      store: { ...store, refusedSince: async (s) => (fail ? Promise.reject(new Error('database down')) : store.refusedSince(s)) },
      retentionSeconds: 3600,
      log,
    });
    await list.refresh();
    fail = true;
    await expect(list.refresh()).rejects.toThrow('database down');
    expect(list.has('erin')).toBe(true);
    expect(() => new RemovedSubjects({ store, retentionSeconds: 0, log })).toThrow(/retentionSeconds/);
  });

  describe('the removal path (stub Hydra admin)', () => {
    async function person(email: string, notes = 2) {
      const user = await createUserStore(db).add(email, 'a long password');
      for (let i = 0; i < notes; i++) await scopedStoreFor(db, user.id).notes.add({ title: `n${i}`, body: '' });
      await scopedStoreFor(db, user.id).records('settings').put('theme', 'dark');
      return user;
    }
    function removal(hydra: ReturnType<typeof stubHydra>, extra: { afterStep?: (s: RemovalStep) => void; onRecorded?: (sub: string) => void } = {}) {
      return createAccountRemoval({ db, users: createUserStore(db), hydra: hydra.admin, removed, log, ...extra });
    }
    const rowsOf = async (sub: string) => ({
      notes: (await db.selectFrom('notes').select('id').where('sub', '=', sub).execute()).length,
      records: (await db.selectFrom('records').select('key').where('sub', '=', sub).execute()).length,
      users: (await db.selectFrom('users').select('id').where('id', '=', sub).execute()).length,
    });

    it('records first, then Hydra, then data, the account last; a second run reports nothing left', async () => {
      const carol = await person('carol@example.com');
      const dan = await person('dan@example.com');
      const hydra = stubHydra();
      const order: string[] = [];
      const remove = removal(hydra, {
        onRecorded: (sub) => order.push(`recorded ${sub === carol.id}`),
        afterStep: (step) => order.push(step),
      });
      const report = await remove({ email: ' Carol@Example.com ' });
      expect(report).toEqual({ sub: carol.id, outcome: 'removed', deleted: { notes: 2, records: 1, connections: 0, connect_states: 0, kratos_subjects: 0, mcp_sessions: 0, mcp_stream_events: 0, users: 1 } });
      expect(order).toEqual(['recorded true', 'recorded', 'hydra', 'data', 'user', 'hydra-again', 'completed']);
      // Twice: again once the account row is gone, for a sign-in that completed during the removal.
      expect(hydra.calls).toEqual([`consent ${carol.id} all`, `login ${carol.id}`, `consent ${carol.id} all`, `login ${carol.id}`]);
      expect(await rowsOf(carol.id)).toEqual({ notes: 0, records: 0, users: 0 });
      expect(await rowsOf(dan.id), 'another person is untouched').toEqual({ notes: 2, records: 1, users: 1 });
      expect((await removed.find(carol.id))?.completedAt).toBeDefined();

      hydra.calls.length = 0;
      expect(await remove({ email: 'carol@example.com' })).toEqual({ sub: carol.id, outcome: 'nothing-left', deleted: { notes: 0, records: 0, connections: 0, connect_states: 0, kratos_subjects: 0, mcp_sessions: 0, mcp_stream_events: 0, users: 0 } });
      expect(await remove({ sub: carol.id })).toMatchObject({ outcome: 'nothing-left' });
      expect(hydra.calls, 'nothing to do, nothing asked').toEqual([]);
    });

    it.each([
      ['an unknown email', { email: 'nobody@example.com' }, UnknownAccountError, 'no user with email nobody@example.com'],
      ['an unknown sub', { sub: 'no-such-sub' }, UnknownAccountError, 'no user with sub no-such-sub'],
      ['a malformed email', { email: 'not-an-email' }, UserInputError, 'is not a valid email address'],
      ['an empty sub', { sub: '' }, UserInputError, 'sub must be a non-empty string'],
    ])('refuses %s and changes nothing', async (_case, target, type, message) => {
      const carol = await person('carol@example.com');
      const hydra = stubHydra();
      const attempt = removal(hydra)(target);
      await expect(attempt).rejects.toBeInstanceOf(type);
      await expect(attempt).rejects.toThrow(message);
      expect(hydra.calls).toEqual([]);
      expect(await removed.refusedSince(new Date(0))).toEqual([]);
      expect(await rowsOf(carol.id)).toEqual({ notes: 2, records: 1, users: 1 });
    });

    it.each(['recorded', 'hydra', 'data', 'user', 'hydra-again'] as const)('a crash after the %s step: tokens already refused; a re-run finishes it', async (crashAt) => {
      const carol = await person('carol@example.com', 3);
      const hydra = stubHydra();
      const crashing = removal(hydra, {
        afterStep: (step) => {
          if (step === crashAt) throw new Error(`crash after ${step}`);
        },
      });
      await expect(crashing({ email: carol.email })).rejects.toThrow(`crash after ${crashAt}`);
      const tomb = await removed.find(carol.id);
      expect(tomb, 'recorded first, whatever followed').toBeDefined();
      expect(tomb?.completedAt).toBeUndefined();
      const list = new RemovedSubjects({ store: removed, retentionSeconds: 60, log });
      await list.refresh();
      expect(list.has(carol.id)).toBe(true);

      const again = await removal(hydra)({ email: carol.email });
      expect(again.outcome).toBe('finished');
      expect(again.sub).toBe(carol.id);
      expect(await rowsOf(carol.id)).toEqual({ notes: 0, records: 0, users: 0 });
      expect((await removed.find(carol.id))?.completedAt).toBeDefined();
      // By then the first run had deleted what it reached; the re-run reports the rest.
      const reached = ['recorded', 'hydra', 'data', 'user', 'hydra-again'].indexOf(crashAt);
      expect(again.deleted.users).toBe(reached >= 3 ? 0 : 1);
      expect(again.deleted.notes).toBe(reached >= 2 ? 0 : 3);
      expect(await removal(hydra)({ email: carol.email })).toMatchObject({ outcome: 'nothing-left' });
    });

    it('Hydra unreachable: a RemovalIncompleteError naming the step; the data stays until Hydra confirms; a re-run finishes', async () => {
      const carol = await person('carol@example.com');
      const hydra = stubHydra();
      hydra.setDown(true);
      const attempt = removal(hydra)({ sub: carol.id });
      await expect(attempt).rejects.toBeInstanceOf(RemovalIncompleteError);
      await expect(attempt).rejects.toThrow(/stopped at the hydra step .*run the removal again/);
      expect(await rowsOf(carol.id)).toEqual({ notes: 2, records: 1, users: 1 });
      hydra.setDown(false);
      expect(await removal(hydra)({ sub: carol.id })).toMatchObject({ outcome: 'finished', deleted: { notes: 2, records: 1, users: 1 } });
    });

    it('a person added again with the same email after a removal is a new account, removed on its own', async () => {
      const first = await person('carol@example.com');
      const hydra = stubHydra();
      await removal(hydra)({ email: first.email });
      const second = await person('carol@example.com', 1);
      expect(second.id).not.toBe(first.id);
      expect(await removal(hydra)({ email: 'carol@example.com' })).toMatchObject({ sub: second.id, outcome: 'removed', deleted: { notes: 1 } });
    });
  });
});
