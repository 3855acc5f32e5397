import { afterAll, describe, expect, it } from 'vitest';
import { memorySessionsStore } from '../../bench/memorySessionsStore.js';
import { switchSessionsStore } from '../../bench/switchSessionsStore.js';
import { type Db, openDatabase } from '../../src/store/database.js';
import { type McpSessionRecord, type McpSessionsStore, mcpSessionsStore } from '../../src/store/mcpSessionsStore.js';

const session = (id: string, sub: string, lastSeenAt: number, createdAt = lastSeenAt): McpSessionRecord => ({
  id,
  sub,
  clientId: `client-of-${sub}`,
  protocolVersion: '2025-06-18',
  clientCapabilities: { roots: {} },
  clientInfo: { name: 'bench', version: '1.0.0' },
  createdAt,
  lastSeenAt,
});
const owner = (sub: string) => ({ sub, clientId: `client-of-${sub}` });

const dbs: Db[] = [];
afterAll(async () => {
  for (const db of dbs) await db.destroy();
});

/**
 * The shared-sessions pair's baseline must keep McpSessionsStore's contract,
 * so the pair differs only in where sessions are kept: one suite, run on the
 * in-memory store and on the shared table (SQLite in memory).
 */
describe.each([
  ['in memory (bench baseline)', async (): Promise<McpSessionsStore> => memorySessionsStore()],
  [
    'shared table (SQLite)',
    async (): Promise<McpSessionsStore> => {
      const db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
      dbs.push(db);
      return mcpSessionsStore(db);
    },
  ],
])('McpSessionsStore %s', (_name, make) => {
  it('finds a session for its owner only, setting last-seen; a foreign use changes nothing', async () => {
    const store = await make();
    await store.record(session('s1', 'alice', 100), 5);
    expect(await store.use('s1', owner('bob'), 200)).toEqual({ found: false, reason: 'not_owner' });
    expect(await store.use('s1', { sub: 'alice', clientId: 'other-client' }, 200)).toEqual({ found: false, reason: 'not_owner' });
    expect(await store.use('nope', owner('alice'), 200)).toEqual({ found: false, reason: 'unknown' });
    expect(await store.use('s1', owner('alice'), 300)).toEqual({ found: true, record: session('s1', 'alice', 300, 100) });
  });

  it("evicts the person's least recently seen others beyond the cap, never the new one nor anyone else's", async () => {
    const store = await make();
    await store.record(session('a1', 'alice', 10), 3);
    await store.record(session('a2', 'alice', 20), 3);
    await store.record(session('b1', 'bob', 5), 3);
    await store.touch([{ id: 'a1', at: 30 }]);
    // The new session has the oldest last-seen (another replica's clock) and still stays.
    expect(await store.record(session('a3', 'alice', 1), 2)).toEqual(['a2']);
    expect(await store.record(session('a4', 'alice', 40), 1)).toEqual(expect.arrayContaining(['a1', 'a3']));
    expect((await store.use('a4', owner('alice'), 50)).found).toBe(true);
    expect((await store.use('b1', owner('bob'), 50)).found).toBe(true);
  });

  it('on equal last-seen times, evicts the older session', async () => {
    const store = await make();
    await store.record(session('old', 'alice', 10, 1), 3);
    await store.record(session('new', 'alice', 10, 2), 3);
    expect(await store.record(session('third', 'alice', 10, 3), 2)).toEqual(['old']);
  });

  it('touches, removes and expires by id, by person and by idleness', async () => {
    const store = await make();
    await store.record(session('a1', 'alice', 10), 5);
    await store.record(session('a2', 'alice', 20), 5);
    await store.record(session('b1', 'bob', 30), 5);
    expect(await store.touch([{ id: 'a1', at: 40 }, { id: 'gone', at: 40 }])).toBe(1);
    expect(await store.touchOne('a2', 25)).toBe(true);
    expect(await store.touchOne('gone', 25)).toBe(false);
    // Cutoff inclusive: a2 (25) goes, a1 (40) and b1 (30) stay.
    expect(await store.removeIdle(25)).toEqual(['a2']);
    expect(await store.removeOwnedBy('alice')).toEqual(['a1']);
    expect(await store.remove('b1')).toBe(true);
    expect(await store.remove('b1')).toBe(false);
    expect(await store.use('b1', owner('bob'), 50)).toEqual({ found: false, reason: 'unknown' });
  });

  it('refuses a cap below one', async () => {
    const store = await make();
    await expect(store.record(session('s1', 'alice', 1), 0)).rejects.toThrow(TypeError);
  });

  it('hands out copies: changing an answer changes nothing stored', async () => {
    const store = await make();
    const recorded = session('s1', 'alice', 1);
    await store.record(recorded, 5);
    recorded.clientCapabilities.sampling = {};
    const used = await store.use('s1', owner('alice'), 2);
    if (!used.found) throw new Error('not found');
    expect(used.record.clientCapabilities).toEqual({ roots: {} });
    used.record.clientInfo.name = 'changed';
    const again = await store.use('s1', owner('alice'), 3);
    expect(again.found && again.record.clientInfo.name).toBe('bench');
  });
});

describe('switchSessionsStore', () => {
  it("keeps the baseline person's sessions in memory and everyone else's in the shared store", async () => {
    const db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    dbs.push(db);
    const shared = mcpSessionsStore(db);
    const memory = memorySessionsStore();
    const store = switchSessionsStore(shared, memory, 'baseline');
    await store.record(session('m1', 'baseline', 10), 5);
    await store.record(session('t1', 'someone', 10), 5);
    expect(memory.holds('m1')).toBe(true);
    expect(memory.holds('t1')).toBe(false);
    expect((await shared.use('t1', owner('someone'), 11)).found).toBe(true);
    expect((await shared.use('m1', owner('baseline'), 11)).found).toBe(false);
    expect(await store.touch([{ id: 'm1', at: 20 }, { id: 't1', at: 20 }])).toBe(2);
    expect(await store.touchOne('t1', 30)).toBe(true);
    expect(await store.removeIdle(20)).toEqual(['m1']);
    expect(await store.remove('t1')).toBe(true);
    expect(await shared.touchOne('t1', 40)).toBe(false);
  });
});
