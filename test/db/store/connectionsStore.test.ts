import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConnectionLockError, type Connection, type ConnectionsStore, connectionsStore } from '../../../src/store/connectionsStore.js';
import { type ConnectState, type ConnectStatesStore, connectStatesStore } from '../../../src/store/connectStatesStore.js';
import { type Db, openDatabase } from '../../../src/store/database.js';
import { deleteSubjectData } from '../../../src/store/subjectData.js';
import { type Backend, storeBackends } from '../../support/backends.js';

/** The connections storage contract, run against the embedded SQLite file and a real PostgreSQL. */
const backends = storeBackends('connections');

const grant = (sub: string, provider: string, sealed = `sealed-${sub}-${provider}`) => ({ sub, provider, sealed, keyId: 'k1', scope: 'read', expiresAt: 2_000_000_000 });
const state = (over: Partial<ConnectState> = {}): ConnectState => ({
  stateHash: 'h1',
  sub: 'alice',
  provider: 'github',
  sealedVerifier: 'sealed-verifier',
  browserBindingHash: 'bb',
  expiresAt: Date.now() + 60_000,
  ...over,
});

/** A promise and the function that settles it. */
function signal() {
  let fire!: () => void;
  const fired = new Promise<void>((r) => (fire = r));
  return { fired, fire };
}

describe.each(['sqlite', 'postgres'] as const)('connections store on %s', (kind) => {
  let backend: Backend;
  let db: Db;
  let store: ConnectionsStore;
  let states: ConnectStatesStore;

  beforeAll(async () => {
    backend = await backends[kind]();
  });
  afterAll(async () => {
    await backend?.cleanup();
  });
  beforeEach(async () => {
    db = await openDatabase(backend.target);
    await db.deleteFrom('connections').execute();
    await db.deleteFrom('connect_states').execute();
    store = connectionsStore(db, kind);
    states = connectStatesStore(db);
  });
  afterEach(async () => {
    await db.destroy();
  });

  it('upsert then get: the row as stored; a second upsert replaces the credential, keeps the creation time, reactivates', async () => {
    let clock = 1_000_000;
    const s = connectionsStore(db, kind, { now: () => clock });
    const first = await s.upsert(grant('alice', 'github', 'v1'));
    expect(first).toEqual({
      sub: 'alice',
      provider: 'github',
      status: 'active',
      sealed: 'v1',
      keyId: 'k1',
      scope: 'read',
      expiresAt: 2_000_000_000,
      createdAt: 1_000_000,
      updatedAt: 1_000_000,
    });
    expect(await s.get('alice', 'github')).toEqual(first);
    await s.markNeedsReconnect('alice', 'github');
    clock = 2_000_000;
    const second = await s.upsert({ sub: 'alice', provider: 'github', sealed: 'v2', keyId: 'k2' });
    expect(second).toEqual({ sub: 'alice', provider: 'github', status: 'active', sealed: 'v2', keyId: 'k2', createdAt: 1_000_000, updatedAt: 2_000_000 });
    expect(await s.get('alice', 'github')).toEqual(second);
    expect(await s.get('alice', 'notion')).toBeUndefined();
  });

  it('list: the person\'s connections by provider, with no sealed credential or key id', async () => {
    await store.upsert(grant('alice', 'notion'));
    await store.upsert(grant('alice', 'github'));
    const listed = await store.list('alice');
    expect(listed.map((c) => c.provider)).toEqual(['github', 'notion']);
    for (const c of listed) {
      expect(Object.keys(c).sort()).toEqual(['createdAt', 'expiresAt', 'provider', 'scope', 'status', 'updatedAt']);
      expect(JSON.stringify(c)).not.toContain('sealed-');
    }
    expect(await store.list('nobody')).toEqual([]);
  });

  it('per-sub isolation: two people with the same provider never see, mark or delete each other\'s row', async () => {
    await store.upsert(grant('alice', 'github'));
    await store.upsert(grant('bob', 'github'));
    expect((await store.get('alice', 'github'))?.sealed).toBe('sealed-alice-github');
    expect((await store.get('bob', 'github'))?.sealed).toBe('sealed-bob-github');
    expect(await store.markNeedsReconnect('alice', 'github')).toBe(true);
    expect((await store.get('bob', 'github'))?.status).toBe('active');
    expect(await store.delete('alice', 'github')).toBe(true);
    expect(await store.get('alice', 'github')).toBeUndefined();
    expect(await store.list('bob')).toHaveLength(1);
    expect(await store.list('alice')).toEqual([]);
  });

  it('markNeedsReconnect keeps the credential (so disconnecting can still revoke it); false when there is no row', async () => {
    await store.upsert(grant('alice', 'github'));
    expect(await store.markNeedsReconnect('alice', 'github')).toBe(true);
    expect(await store.get('alice', 'github')).toMatchObject({ status: 'needs_reconnect', sealed: 'sealed-alice-github' });
    expect((await store.list('alice'))[0]?.status).toBe('needs_reconnect');
    expect(await store.markNeedsReconnect('alice', 'notion')).toBe(false);
  });

  it('delete: true once, then false', async () => {
    await store.upsert(grant('alice', 'github'));
    expect(await store.delete('alice', 'github')).toBe(true);
    expect(await store.delete('alice', 'github')).toBe(false);
  });

  it.each([
    ['an empty sub', '', 'github'],
    ['an empty provider', 'alice', ''],
  ])('refuses %s', async (_name, sub, provider) => {
    await expect(store.upsert(grant(sub, provider))).rejects.toThrow(TypeError);
    await expect(store.withRefreshLock(sub, provider, async () => undefined)).rejects.toThrow(TypeError);
    await expect(states.put(state({ sub, provider }))).rejects.toThrow(TypeError);
  });

  it('removing a person deletes their connections and pending connect attempts, nobody else\'s', async () => {
    await store.upsert(grant('gone', 'github'));
    await store.upsert(grant('gone', 'notion'));
    await store.upsert(grant('stays', 'github'));
    await states.put(state({ stateHash: 'g', sub: 'gone' }));
    await states.put(state({ stateHash: 's', sub: 'stays' }));
    expect(await deleteSubjectData(db, 'gone')).toMatchObject({ connections: 2, connect_states: 1 });
    expect(await store.list('gone')).toEqual([]);
    expect(await states.take('g')).toBeUndefined();
    expect(await store.list('stays')).toHaveLength(1);
    expect(await states.take('s')).toMatchObject({ sub: 'stays' });
  });

  it('take: returns the attempt once; a second take, or one of an unknown state, finds nothing', async () => {
    const s = state({ elicitationId: 'el-1' });
    await states.put(s);
    expect(await states.take('h1')).toEqual(s);
    expect(await states.take('h1')).toBeUndefined();
    expect(await states.take('never-issued')).toBeUndefined();
    const plain = state({ stateHash: 'h2' });
    await states.put(plain);
    expect(await states.take('h2')).toEqual(plain);
  });

  it('take: of concurrent takes of one state, exactly one gets it', async () => {
    await states.put(state());
    const results = await Promise.all(Array.from({ length: 5 }, () => states.take('h1')));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('take refuses an expired attempt (and it is gone after); sweep deletes only expired ones', async () => {
    let clock = 1_000_000;
    const s = connectStatesStore(db, { now: () => clock });
    await s.put(state({ stateHash: 'old', expiresAt: 1_000_500 }));
    await s.put(state({ stateHash: 'older', expiresAt: 1_000_100 }));
    await s.put(state({ stateHash: 'fresh', expiresAt: 9_000_000 }));
    clock = 1_000_500; // expiry is exclusive: at expiresAt the attempt is over
    expect(await s.take('old')).toBeUndefined();
    expect(await s.sweep()).toBe(1);
    expect(await s.take('fresh')).toMatchObject({ stateHash: 'fresh' });
  });

  it('abandoned attempts are deleted as new ones are put, at most once a minute', async () => {
    let clock = 5_000_000;
    const s = connectStatesStore(db, { now: () => clock });
    await s.put(state({ stateHash: 'abandoned', expiresAt: 5_000_100 }));
    clock = 5_000_200;
    await s.put(state({ stateHash: 'within-the-minute', expiresAt: 9_000_000 }));
    expect((await s.page({ limit: 10 })).map((a) => a.stateHash), 'no second sweep within a minute').toContain('abandoned');
    clock += 60_000;
    await s.put(state({ stateHash: 'later', expiresAt: 9_000_000 }));
    expect((await s.page({ limit: 10 })).map((a) => a.stateHash)).not.toContain('abandoned');
  });

  it('connect attempts for re-encryption: paged in state_hash order; rewrap loses to a take or a change since the read', async () => {
    for (const h of ['c', 'a', 'b']) await states.put(state({ stateHash: h, sealedVerifier: `v-${h}` }));
    const first = await states.page({ limit: 2 });
    expect(first.map((a) => a.stateHash)).toEqual(['a', 'b']);
    expect((await states.page({ limit: 2, after: 'b' })).map((a) => a.stateHash)).toEqual(['c']);
    expect(await states.rewrap(first[0]!, 'v-a2')).toBe(true);
    expect(await states.rewrap(first[0]!, 'stale')).toBe(false);
    await states.take('b');
    expect(await states.rewrap(first[1]!, 'v-b2')).toBe(false);
    expect(await states.take('a')).toMatchObject({ sealedVerifier: 'v-a2' });
  });

  it('re-encryption helpers: rows not sealed with a key, paged in (sub, provider) order; rewrap loses to a concurrent change', async () => {
    await store.upsert({ ...grant('a', 'x'), keyId: 'old' });
    await store.upsert({ ...grant('a', 'y'), keyId: 'new' });
    await store.upsert({ ...grant('b', 'x'), keyId: 'old' });
    await store.upsert({ ...grant('c', 'x'), keyId: 'older' });
    expect(await store.keyUsage()).toEqual({ new: 1, old: 2, older: 1 });
    const page1 = await store.listNotSealedWith('new', { limit: 2 });
    expect(page1.map((r) => `${r.sub}/${r.provider}`)).toEqual(['a/x', 'b/x']);
    const page2 = await store.listNotSealedWith('new', { limit: 2, after: page1[1]! });
    expect(page2.map((r) => `${r.sub}/${r.provider}`)).toEqual(['c/x']);
    expect(await store.rewrap(page1[0]!, { sealed: 'rewrapped', keyId: 'new' })).toBe(true);
    // Changed since it was read (a refresh wrote a new credential): the rewrap does not overwrite it.
    await store.upsert({ ...grant('b', 'x', 'refreshed'), keyId: 'new' });
    expect(await store.rewrap(page1[1]!, { sealed: 'stale', keyId: 'new' })).toBe(false);
    expect((await store.get('b', 'x'))?.sealed).toBe('refreshed');
    expect(await store.keyUsage()).toEqual({ new: 3, older: 1 });
  });

  describe('withRefreshLock', () => {
    it('runs fn with the current row and writes its update; undefined fn result writes nothing', async () => {
      await store.upsert(grant('alice', 'github', 'v1'));
      const after = await store.withRefreshLock('alice', 'github', async (current) => {
        expect(current.sealed).toBe('v1');
        return { sealed: 'v2', keyId: 'k1', expiresAt: 2_100_000_000 };
      });
      expect(after).toMatchObject({ sealed: 'v2', expiresAt: 2_100_000_000, scope: 'read', status: 'active' });
      expect(await store.get('alice', 'github')).toEqual(after);
      const same = await store.withRefreshLock('alice', 'github', async () => undefined);
      expect(same).toEqual(after);
    });

    it('fn can mark the connection for reconnection and clear its expiry', async () => {
      await store.upsert(grant('alice', 'github'));
      const after = await store.withRefreshLock('alice', 'github', async () => ({ status: 'needs_reconnect', expiresAt: null }));
      expect(after?.status).toBe('needs_reconnect');
      expect(after?.expiresAt).toBeUndefined();
      expect(after?.sealed).toBe('sealed-alice-github');
    });

    it('no row: fn is not called, resolves undefined', async () => {
      let called = false;
      expect(await store.withRefreshLock('alice', 'github', async () => ((called = true), undefined))).toBeUndefined();
      expect(called).toBe(false);
    });

    it('fn throws: nothing written, the lock is released (the next call proceeds at once)', async () => {
      await store.upsert(grant('alice', 'github', 'v1'));
      await expect(store.withRefreshLock('alice', 'github', async () => Promise.reject(new Error('provider down')))).rejects.toThrow('provider down');
      const t0 = Date.now();
      expect(await store.withRefreshLock('alice', 'github', async (c) => ({ sealed: `${c.sealed}+`, keyId: 'k1' }))).toMatchObject({ sealed: 'v1+' });
      expect(Date.now() - t0).toBeLessThan(1000);
    });

    it('two "replicas" (separate database handles) refreshing one row run fn one after the other; the second sees the first\'s write', async () => {
      await store.upsert(grant('alice', 'github', 'v1'));
      await store.upsert(grant('alice', 'notion', 'n1'));
      const replicaA = await openDatabase(backend.target);
      const replicaB = await openDatabase(backend.target);
      const release = signal();
      try {
        const a = connectionsStore(replicaA, kind);
        const b = connectionsStore(replicaB, kind);
        const events: string[] = [];
        const aInside = signal();
        const first = a.withRefreshLock('alice', 'github', async (current) => {
          events.push(`A saw ${current.sealed}`);
          aInside.fire();
          await release.fired;
          events.push('A writes v2');
          return { sealed: 'v2', keyId: 'k1' };
        });
        await aInside.fired;
        const second = b.withRefreshLock('alice', 'github', async (current) => {
          events.push(`B saw ${current.sealed}`);
          // Already rotated by A: nothing to refresh.
          return current.sealed === 'v2' ? undefined : { sealed: 'B-refreshed-again', keyId: 'k1' };
        });
        // Another row is not held up by A's lock.
        expect(await b.withRefreshLock('alice', 'notion', async () => ({ sealed: 'n2', keyId: 'k1' }))).toMatchObject({ sealed: 'n2' });
        // B waits while A holds the row.
        await new Promise((r) => setTimeout(r, 300));
        expect(events).toEqual(['A saw v1']);
        release.fire();
        const [ra, rb] = await Promise.all([first, second]);
        expect(events).toEqual(['A saw v1', 'A writes v2', 'B saw v2']);
        expect(ra?.sealed).toBe('v2');
        expect(rb?.sealed).toBe('v2');
        expect((await store.get('alice', 'github'))?.sealed).toBe('v2');
      } finally {
        release.fire();
        await replicaA.destroy();
        await replicaB.destroy();
      }
    });

    it('many concurrent refreshers in one process: fn never overlaps, and each sees the previous write', async () => {
      await store.upsert(grant('alice', 'github', '0'));
      let inside = 0;
      let most = 0;
      const seen: string[] = [];
      await Promise.all(
        Array.from({ length: 5 }, () =>
          store.withRefreshLock('alice', 'github', async (current) => {
            most = Math.max(most, ++inside);
            seen.push(current.sealed);
            await new Promise((r) => setTimeout(r, 20));
            inside--;
            return { sealed: String(Number(current.sealed) + 1), keyId: 'k1' };
          }),
        ),
      );
      expect(most).toBe(1);
      expect(seen.sort()).toEqual(['0', '1', '2', '3', '4']);
      expect((await store.get('alice', 'github'))?.sealed).toBe('5');
    });

    it('a waiter gives up with ConnectionLockError after lockWaitMs; the holder still writes', async () => {
      await store.upsert(grant('alice', 'github', 'v1'));
      const other = await openDatabase(backend.target);
      try {
        const impatient = connectionsStore(other, kind, { lockWaitMs: 300 });
        const inside = signal();
        const release = signal();
        const holder = store.withRefreshLock('alice', 'github', async () => {
          inside.fire();
          await release.fired;
          return { sealed: 'v2', keyId: 'k1' };
        });
        await inside.fired;
        const t0 = Date.now();
        await expect(impatient.withRefreshLock('alice', 'github', async () => undefined)).rejects.toThrow(ConnectionLockError);
        expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
        release.fire();
        expect((await holder)?.sealed).toBe('v2');
      } finally {
        await other.destroy();
      }
    });

    it('deleted while a refresh holds it: the refresh writes nothing and resolves undefined', async () => {
      await store.upsert(grant('alice', 'github'));
      const other = await openDatabase(backend.target);
      try {
        const inside = signal();
        const release = signal();
        const holder = store.withRefreshLock('alice', 'github', async () => {
          inside.fire();
          await release.fired;
          return { sealed: 'too-late', keyId: 'k1' };
        });
        await inside.fired;
        // The lease locks nothing in the database: the delete goes through at once.
        expect(await connectionsStore(other, kind).delete('alice', 'github')).toBe(true);
        release.fire();
        expect(await holder).toBeUndefined();
        expect(await store.get('alice', 'github')).toBeUndefined();
      } finally {
        await other.destroy();
      }
    });

    it('a lease left by a crashed holder is taken over once it expires', async () => {
      await store.upsert(grant('alice', 'github', 'v1'));
      await db.updateTable('connections').set({ refresh_lease_until: Date.now() + 200, refresh_lease_owner: 'crashed' }).execute();
      const t0 = Date.now();
      const after: Connection | undefined = await store.withRefreshLock('alice', 'github', async () => ({ sealed: 'v2', keyId: 'k1' }));
      expect(after?.sealed).toBe('v2');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
      const row = await db.selectFrom('connections').select(['refresh_lease_until', 'refresh_lease_owner']).executeTakeFirstOrThrow();
      expect(row).toEqual({ refresh_lease_until: null, refresh_lease_owner: null });
    });

    it('a reconnect during a refresh wins; the refresh\'s late write is refused', async () => {
      await store.upsert(grant('alice', 'github', 'old-grant'));
      const inside = signal();
      const release = signal();
      const holder = store.withRefreshLock('alice', 'github', async () => {
        inside.fire();
        await release.fired;
        return { sealed: 'refreshed-old-grant', keyId: 'k1' };
      });
      await inside.fired;
      await store.upsert(grant('alice', 'github', 'new-grant'));
      release.fire();
      await expect(holder).rejects.toThrow(ConnectionLockError);
      expect((await store.get('alice', 'github'))?.sealed).toBe('new-grant');
    });
  });
});
