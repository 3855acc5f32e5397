import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ConnectionRequiredError,
  type CredentialService,
  type CredentialServiceOptions,
  createCredentialService,
  ProviderUnavailableError,
} from '../../../src/connections/credentials.js';
import { connectionVersions } from '../../../src/store/connectionVersions.js';
import { createProviderClient, type ProviderClient, ProviderError } from '../../../src/connections/providerClient.js';
import { type CredentialSealer, createSealer, type StoredCredential } from '../../../src/connections/sealing.js';
import { createLogger } from '../../../src/log/logger.js';
import { type ConnectionsStore, connectionsStore } from '../../../src/store/connectionsStore.js';
import { type Db, openDatabase, sqliteHandleOf } from '../../../src/store/database.js';
import { deleteSubjectData } from '../../../src/store/subjectData.js';
import { type Backend, storeBackends } from '../../support/backends.js';

/**
 * createCredentialService over the real connections store (SQLite file and a
 * real PostgreSQL) and the real sealer. Only the provider is a local stub
 * ProviderClient: the OAuth protocol itself is tested against a second real
 * Hydra in test/e2e/connections/providerClient.test.ts and test/e2e/connections.test.ts.
 */
const backends = storeBackends('credentials');

const SUB = 'alice';
const PROVIDER = 'github';
const BIND = { sub: SUB, provider: PROVIDER };
// A fixed clock for the service (epoch ms); the store keeps real time for its leases.
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const T0S = T0 / 1000;

// Distinctive token values, so the log check below can look for them verbatim.
const AT1 = 'AT-one-7f3a9c';
const RT1 = 'RT-one-2b8e41';
const accessTokenNo = (n: number) => `AT-${n}-rotated-5d1c`;
const refreshTokenNo = (n: number) => `RT-${n}-rotated-9e0f`;

type Behaviour = 'ok' | 'invalid_grant' | 'unavailable';

/**
 * A stub provider: `refresh` answers with the next numbered token pair (a
 * rotated refresh token each time, lifetime `ttl`), or fails as `behaviour`
 * says, after `delayMs` so concurrent callers overlap the refresh.
 */
function stubProvider(clock: () => number, opts: { delayMs?: number; ttl?: number } = {}) {
  const received: string[] = [];
  let issued = 1;
  const stub = {
    received,
    behaviour: 'ok' as Behaviour,
    client: {
      name: PROVIDER,
      displayName: 'GitHub',
      scopes: ['read'],
      authorizationUrl: () => Promise.reject(new Error('not used here')),
      exchangeCode: () => Promise.reject(new Error('not used here')),
      revoke: () => Promise.reject(new Error('not used here')),
      async refresh(refreshToken: string): Promise<StoredCredential> {
        received.push(refreshToken);
        await new Promise((r) => setTimeout(r, opts.delayMs ?? 0));
        if (stub.behaviour === 'invalid_grant') throw new ProviderError('invalid_grant', PROVIDER, 'the refresh token was refused', 'invalid_grant');
        if (stub.behaviour === 'unavailable') throw new ProviderError('unavailable', PROVIDER, 'token endpoint answered HTTP 503');
        issued += 1;
        return {
          accessToken: accessTokenNo(issued),
          refreshToken: refreshTokenNo(issued),
          expiresAt: Math.floor(clock() / 1000) + (opts.ttl ?? 3600),
          scope: 'read',
          tokenType: 'Bearer',
        };
      },
    } satisfies ProviderClient,
  };
  return stub;
}

/** Change one character in the middle of the ciphertext part of a compact JWE. */
function tamper(sealed: string): string {
  const parts = sealed.split('.');
  const part = parts[3]!;
  const at = Math.floor(part.length / 2);
  parts[3] = part.slice(0, at) + (part[at] === 'A' ? 'B' : 'A') + part.slice(at + 1);
  return parts.join('.');
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describe.each(['sqlite', 'postgres'] as const)('credential service on %s (real store and sealer, stub provider)', (kind) => {
  let backend: Backend;
  let db: Db;
  let store: ConnectionsStore;
  let sealer: CredentialSealer;
  let clock: number;
  let lines: string[];
  const now = () => clock;

  beforeAll(async () => {
    backend = await backends[kind]();
  });
  afterAll(async () => {
    await backend?.cleanup();
  });
  beforeEach(async () => {
    db = await openDatabase(backend.target);
    await db.deleteFrom('connections').execute();
    store = connectionsStore(db, kind);
    sealer = createSealer([{ kid: 'k1', key: new Uint8Array(randomBytes(32)) }]);
    clock = T0;
    lines = [];
  });
  afterEach(async () => {
    await db.destroy();
  });

  const service = (
    provider: ReturnType<typeof stubProvider>,
    over: Partial<CredentialServiceOptions> = {},
  ): CredentialService =>
    createCredentialService({
      store,
      sealer,
      providers: new Map([[PROVIDER, provider.client]]),
      log: createLogger('debug', (line) => lines.push(line)),
      now,
      ...over,
    });
  const token = (svc: CredentialService, sub = SUB) => svc.forTool(sub, [PROVIDER])[PROVIDER]!.accessToken();

  /** Store a connection as the connect flow would: sealed, bound to its row. */
  async function connect(credential: Partial<StoredCredential> = {}, sub = SUB) {
    const c: StoredCredential = { accessToken: AT1, refreshToken: RT1, expiresAt: T0S + 3600, scope: 'read', tokenType: 'Bearer', ...credential };
    return store.upsert({ sub, provider: PROVIDER, sealed: await sealer.seal(c, { sub, provider: PROVIDER }), keyId: sealer.newestKeyId, scope: 'read', ...(c.expiresAt !== undefined ? { expiresAt: c.expiresAt } : {}) });
  }
  const nearExpiry = { expiresAt: T0S + 30 };

  it('a fresh token is returned as stored, without a refresh', async () => {
    await connect();
    const provider = stubProvider(now);
    const outcomes: string[] = [];
    const svc = service(provider, { onUse: (_p, o) => outcomes.push(o) });
    expect(await token(svc)).toBe(AT1);
    expect(await token(svc)).toBe(AT1);
    expect(provider.received).toEqual([]);
    expect(outcomes).toEqual(['ok', 'ok']);
    expect(await svc.isConnected(SUB, PROVIDER)).toBe(true);
  });

  it("each use is reported with the request id of the tool call it was handed to (the audit record's link to the call)", async () => {
    await connect(nearExpiry);
    const uses: string[] = [];
    const svc = service(stubProvider(now), { onUse: (_p, o, _sub, requestId) => uses.push(`${o}:${requestId ?? '-'}`) });
    expect(await svc.forTool(SUB, [PROVIDER], 'req-a')[PROVIDER]!.accessToken()).toBe(accessTokenNo(2));
    expect(await svc.forTool(SUB, [PROVIDER], 'req-b')[PROVIDER]!.accessToken()).toBe(accessTokenNo(2));
    await token(svc);
    expect(uses).toEqual(['refreshed:req-a', 'ok:req-b', 'ok:-']);
  });

  it('a token a minute from expiry is refreshed once; the rotated refresh token is sealed into the row', async () => {
    const before = await connect(nearExpiry);
    const provider = stubProvider(now);
    const outcomes: string[] = [];
    const svc = service(provider, { onUse: (_p, o) => outcomes.push(o) });
    expect(await token(svc)).toBe(accessTokenNo(2));
    expect(provider.received).toEqual([RT1]);

    const row = (await store.get(SUB, PROVIDER))!;
    expect(row).toMatchObject({ status: 'active', keyId: 'k1', scope: 'read', expiresAt: T0S + 3600, createdAt: before.createdAt });
    expect(row.sealed).not.toBe(before.sealed);
    expect(await sealer.open(row.sealed, BIND)).toEqual({
      accessToken: accessTokenNo(2),
      refreshToken: refreshTokenNo(2),
      expiresAt: T0S + 3600,
      scope: 'read',
      tokenType: 'Bearer',
      issuedAt: T0S,
    });
    // The new token is fresh: the next call uses it, no second refresh.
    expect(await token(svc)).toBe(accessTokenNo(2));
    expect(provider.received).toHaveLength(1);
    expect(outcomes).toEqual(['refreshed', 'ok']);
  });

  it('single flight in one process: 10 concurrent calls make exactly 1 provider refresh and all get the new token', async () => {
    await connect(nearExpiry);
    const provider = stubProvider(now, { delayMs: 100 });
    const svc = service(provider);
    const tokens = await Promise.all(Array.from({ length: 10 }, () => token(svc)));
    expect(tokens).toEqual(Array(10).fill(accessTokenNo(2)));
    expect(provider.received).toEqual([RT1]);
    expect(await sealer.open((await store.get(SUB, PROVIDER))!.sealed, BIND)).toMatchObject({ refreshToken: refreshTokenNo(2) });
  });

  it('single flight across replicas: two services on two Kysely instances of one database refresh exactly once, and both get the new token', async () => {
    await connect(nearExpiry);
    // A second "replica": its own pool (PostgreSQL) or its own connection to the same file (SQLite).
    const db2 = await openDatabase(backend.target);
    try {
      const a = stubProvider(now, { delayMs: 200 });
      const b = stubProvider(now, { delayMs: 200 });
      const replicaA = service(a);
      const replicaB = createCredentialService({
        store: connectionsStore(db2, kind),
        sealer,
        providers: new Map([[PROVIDER, b.client]]),
        log: createLogger('debug', (line) => lines.push(line)),
        now,
      });
      const tokens = await Promise.all([token(replicaA), token(replicaB), token(replicaA), token(replicaB)]);
      expect(tokens).toEqual(Array(4).fill(accessTokenNo(2)));
      // One provider refresh in all: whichever replica won the lock; the other re-read the row.
      expect([...a.received, ...b.received]).toEqual([RT1]);
      const row = (await store.get(SUB, PROVIDER))!;
      expect(await sealer.open(row.sealed, BIND)).toMatchObject({ accessToken: accessTokenNo(2), refreshToken: refreshTokenNo(2) });
    } finally {
      await db2.destroy();
    }
  });

  it('invalid_grant from the provider: the row is marked needs_reconnect and the call asks to reconnect', async () => {
    const before = await connect(nearExpiry);
    const provider = stubProvider(now);
    provider.behaviour = 'invalid_grant';
    const outcomes: string[] = [];
    const svc = service(provider, { onUse: (_p, o) => outcomes.push(o) });
    const e = await rejection(token(svc));
    expect(e).toBeInstanceOf(ConnectionRequiredError);
    expect(e).toMatchObject({ provider: PROVIDER, reason: 'reconnect' });
    const row = (await store.get(SUB, PROVIDER))!;
    // Kept (disconnecting still revokes it), but no longer used.
    expect(row).toMatchObject({ status: 'needs_reconnect', sealed: before.sealed });
    expect(await svc.isConnected(SUB, PROVIDER)).toBe(false);
    // Later calls ask again without troubling the provider.
    expect(await rejection(token(svc))).toMatchObject({ name: 'ConnectionRequiredError', reason: 'reconnect' });
    expect(provider.received).toEqual([RT1]);
    expect(outcomes[0]).toBe('reconnect');
  });

  it('provider unavailable: ProviderUnavailableError, the row unchanged (still active, same ciphertext); it works once the provider is back', async () => {
    const before = await connect(nearExpiry);
    const provider = stubProvider(now);
    provider.behaviour = 'unavailable';
    const outcomes: string[] = [];
    const svc = service(provider, { onUse: (_p, o) => outcomes.push(o) });
    const e = await rejection(token(svc));
    expect(e).toBeInstanceOf(ProviderUnavailableError);
    expect(e).toMatchObject({ provider: PROVIDER });
    expect(await store.get(SUB, PROVIDER)).toEqual(before);
    expect(outcomes).toEqual(['unavailable']);

    provider.behaviour = 'ok';
    expect(await token(svc)).toBe(accessTokenNo(2));
    expect(provider.received).toEqual([RT1, RT1]);
  });

  it('no connection row: ConnectionRequiredError("missing"), for this person only', async () => {
    await connect({}, 'bob');
    const svc = service(stubProvider(now));
    const e = await rejection(token(svc, SUB));
    expect(e).toBeInstanceOf(ConnectionRequiredError);
    expect(e).toMatchObject({ provider: PROVIDER, reason: 'missing' });
    expect(await svc.isConnected(SUB, PROVIDER)).toBe(false);
    expect(await token(svc, 'bob')).toBe(AT1);
  });

  it.each([
    ['a tampered ciphertext', 'tampered', async (row: { sealed: string }) => tamper(row.sealed)],
    ['another person’s ciphertext copied into the row', 'wrong_binding', async () => sealer.seal({ accessToken: AT1, expiresAt: T0S + 3600 }, { sub: 'bob', provider: PROVIDER })],
  ])('%s: ConnectionRequiredError("reconnect") and the row marked needs_reconnect', async (_case, reason, replace) => {
    const row = await connect();
    await db.updateTable('connections').set({ sealed: await replace(row) }).where('sub', '=', SUB).execute();
    const provider = stubProvider(now);
    const svc = service(provider);
    expect(await rejection(token(svc))).toMatchObject({ name: 'ConnectionRequiredError', provider: PROVIDER, reason: 'reconnect' });
    expect(await store.get(SUB, PROVIDER)).toMatchObject({ status: 'needs_reconnect' });
    expect(provider.received).toEqual([]);
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged).toContainEqual(expect.objectContaining({ level: 'error', msg: expect.stringContaining('cannot be opened'), reason, sub: SUB, provider: PROVIDER }));
  });

  it('a ciphertext under a key no longer configured: reconnect asked, but the row is left active (putting the key back restores it)', async () => {
    await connect();
    const gone = createSealer([{ kid: 'gone', key: new Uint8Array(randomBytes(32)) }]);
    const sealed = await gone.seal({ accessToken: AT1, expiresAt: T0S + 3600 }, BIND);
    await db.updateTable('connections').set({ sealed }).where('sub', '=', SUB).execute();
    const provider = stubProvider(now);
    expect(await rejection(token(service(provider)))).toMatchObject({ name: 'ConnectionRequiredError', reason: 'reconnect' });
    expect(await store.get(SUB, PROVIDER)).toMatchObject({ status: 'active', sealed });
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged).toContainEqual(expect.objectContaining({ level: 'error', reason: 'unknown_key', sub: SUB, provider: PROVIDER }));
    expect(provider.received).toEqual([]);
  });

  it('an expiring token with no refresh token: reconnect, row marked, provider not called', async () => {
    await connect({ ...nearExpiry, refreshToken: undefined });
    const provider = stubProvider(now);
    const svc = service(provider);
    expect(await rejection(token(svc))).toMatchObject({ name: 'ConnectionRequiredError', reason: 'reconnect' });
    expect(await store.get(SUB, PROVIDER)).toMatchObject({ status: 'needs_reconnect' });
    expect(provider.received).toEqual([]);
  });

  // Refresh when fewer than `lead` seconds are left: a minute (refreshWithinSeconds), or a
  // quarter of the token's lifetime when it has issuedAt and that lifetime is under four minutes.
  it.each([
    ['no issuedAt, 61 s left: used as is', {}, 3600, 3600 - 61, false],
    ['no issuedAt, 60 s left: refreshed', {}, 3600, 3600 - 60, true],
    ['1 h lifetime, 61 s left: used as is', { issuedAt: T0S }, 3600, 3600 - 61, false],
    ['1 h lifetime, 60 s left: refreshed', { issuedAt: T0S }, 3600, 3600 - 60, true],
    ['2 min lifetime, 31 s left (past half): used as is', { issuedAt: T0S }, 120, 89, false],
    ['2 min lifetime, 30 s left (three quarters): refreshed', { issuedAt: T0S }, 120, 90, true],
    ['20 s lifetime, 6 s left: used as is', { issuedAt: T0S }, 20, 14, false],
    ['20 s lifetime, 5 s left: refreshed', { issuedAt: T0S }, 20, 15, true],
  ])('lead time: %s', async (_case, extra, lifetime, elapsed, refreshed) => {
    await connect({ ...extra, expiresAt: T0S + lifetime });
    const provider = stubProvider(now);
    const svc = service(provider);
    clock = T0 + elapsed * 1000;
    expect(await token(svc)).toBe(refreshed ? accessTokenNo(2) : AT1);
    expect(provider.received).toHaveLength(refreshed ? 1 : 0);
  });

  it('lead time: a token without expiry is never refreshed; refreshWithinSeconds widens the minute', async () => {
    await connect({ expiresAt: undefined });
    const provider = stubProvider(now);
    clock = T0 + 365 * 86_400_000;
    expect(await token(service(provider))).toBe(AT1);

    await db.deleteFrom('connections').execute();
    clock = T0;
    await connect({ expiresAt: T0S + 299 });
    expect(await token(service(provider, { refreshWithinSeconds: 300 }))).toBe(accessTokenNo(2));
    expect(provider.received).toEqual([RT1]);
  });

  it('a refreshed short-lived token is stamped with issuedAt, so the next call uses it instead of refreshing again', async () => {
    await connect(nearExpiry);
    // The provider issues 40-second tokens: shorter than the one-minute margin.
    const provider = stubProvider(now, { ttl: 40 });
    const svc = service(provider);
    expect(await token(svc)).toBe(accessTokenNo(2));
    clock += 20_000;
    expect(await token(svc)).toBe(accessTokenNo(2));
    clock += 10_000; // 30 s of 40: three quarters
    expect(await token(svc)).toBe(accessTokenNo(3));
    expect(provider.received).toEqual([RT1, refreshTokenNo(2)]);
  });

  it('no access or refresh token ever reaches the log, whatever happens', async () => {
    const provider = stubProvider(now, { delayMs: 10 });
    const svc = service(provider);
    const errors: unknown[] = [];
    const attempt = async () => {
      try {
        await token(svc);
      } catch (e) {
        errors.push(e);
      }
    };
    // Fresh use, refresh with rotation, provider down, grant revoked, tampered ciphertext.
    await connect();
    await attempt();
    await connect(nearExpiry);
    await Promise.all([attempt(), attempt()]);
    await connect(nearExpiry);
    provider.behaviour = 'unavailable';
    await attempt();
    provider.behaviour = 'invalid_grant';
    await attempt();
    const row = await connect();
    await db.updateTable('connections').set({ sealed: tamper(row.sealed) }).where('sub', '=', SUB).execute();
    await attempt();

    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(errors.map((e) => (e as Error).name)).toEqual(['ProviderUnavailableError', 'ConnectionRequiredError', 'ConnectionRequiredError']);
    const secrets = [AT1, RT1, accessTokenNo(2), refreshTokenNo(2), accessTokenNo(3), refreshTokenNo(3)];
    const said = [...lines, ...errors.map((e) => `${(e as Error).message} ${(e as Error).stack}`)].join('\n');
    for (const secret of secrets) expect(said).not.toContain(secret);
  });

  /**
   * Issue 29 #5: opened credentials are kept in memory, and nothing kept
   * outlives a removal or a revocation on any replica. Two services on one
   * database, each composed as production composes it (the prepared version
   * read on SQLite), with their own connection or pool. The services' clock
   * stands still, so no expiry in memory plays a part: only the per-use check
   * of the row does.
   */
  describe('opened credentials kept in memory, checked against the shared row on every use', () => {
    let db2: Db;
    let opens: number;
    beforeEach(async () => {
      db2 = await openDatabase(backend.target);
      opens = 0;
    });
    afterEach(async () => {
      await db2.destroy();
    });
    const counting = (inner: CredentialSealer): CredentialSealer => ({
      newestKeyId: inner.newestKeyId,
      seal: (secret, bind) => inner.seal(secret, bind),
      open: (sealed, bind) => {
        opens++;
        return inner.open(sealed, bind);
      },
      keyIdOf: (sealed) => inner.keyIdOf(sealed),
    });
    /** A replica: its own store on `on`, the production version read, the stub provider. */
    const replica = (on: Db, provider = stubProvider(now), over: Partial<CredentialServiceOptions> = {}) => {
      const s = connectionsStore(on, kind);
      return createCredentialService({
        store: s,
        versions: connectionVersions(on, kind, s),
        sealer: counting(sealer),
        providers: new Map([[PROVIDER, provider.client]]),
        log: createLogger('debug', (line) => lines.push(line)),
        now,
        ...over,
      });
    };

    it('a credential unchanged in the row is opened once and then served from memory', async () => {
      await connect();
      const a = replica(db);
      for (let i = 0; i < 5; i++) expect(await token(a)).toBe(AT1);
      expect(opens).toBe(1);
      // forget drops it on this replica at once: the next use opens the row again.
      a.forget(SUB);
      expect(await token(a)).toBe(AT1);
      expect(opens).toBe(2);
    });

    it.each([
      ['disconnected on another replica (row deleted)', 'missing', (s: ConnectionsStore) => s.delete(SUB, PROVIDER)],
      ['revoked: another replica was refused the refresh (row marked needs_reconnect)', 'reconnect', (s: ConnectionsStore) => s.markNeedsReconnect(SUB, PROVIDER)],
      ['the account removed on another replica (all its data deleted)', 'missing', async () => void (await deleteSubjectData(db2, SUB))],
    ])('%s: never served again from the first replica’s memory', async (_case, reason, change) => {
      await connect();
      await connect({}, 'bob');
      const a = replica(db);
      expect(await token(a)).toBe(AT1);
      expect(await token(a, 'bob')).toBe(AT1);
      await change(connectionsStore(db2, kind));
      expect(await rejection(token(a))).toMatchObject({ name: 'ConnectionRequiredError', provider: PROVIDER, reason });
      expect(await rejection(token(a))).toMatchObject({ name: 'ConnectionRequiredError', reason });
      expect(await a.isConnected(SUB, PROVIDER)).toBe(false);
      // Someone else's kept credential is untouched.
      expect(await token(a, 'bob')).toBe(AT1);
    });

    it('the same, on the replica that made the change (disconnect through the connect flow): its copy is dropped at once', async () => {
      await connect();
      const a = replica(db);
      expect(await token(a)).toBe(AT1);
      await connectionsStore(db, kind).delete(SUB, PROVIDER);
      a.forget(SUB, PROVIDER);
      expect(await rejection(token(a))).toMatchObject({ name: 'ConnectionRequiredError', reason: 'missing' });
    });

    it('a refresh or a new grant written by another replica is used at once, not the copy kept here', async () => {
      await connect();
      const a = replica(db);
      expect(await token(a)).toBe(AT1);
      // Another replica refreshes (new ciphertext, same row) …
      const b = replica(db2);
      await connectionsStore(db2, kind).withRefreshLock(SUB, PROVIDER, async () => ({
        sealed: await sealer.seal({ accessToken: accessTokenNo(7), refreshToken: refreshTokenNo(7), expiresAt: T0S + 3600 }, BIND),
        keyId: sealer.newestKeyId,
      }));
      expect(await token(a)).toBe(accessTokenNo(7));
      // … or the person connects again there.
      await connect({ accessToken: accessTokenNo(8) });
      expect(await token(a)).toBe(accessTokenNo(8));
      expect(await token(b)).toBe(accessTokenNo(8));
    });

    it('a disconnect and a reconnect in between (same row, new grant) never serve the old token', async () => {
      await connect();
      const a = replica(db);
      expect(await token(a)).toBe(AT1);
      await connectionsStore(db2, kind).delete(SUB, PROVIDER);
      await connect({ accessToken: accessTokenNo(9) });
      expect(await token(a)).toBe(accessTokenNo(9));
    });

    it('this replica’s own refresh keeps the new credential: the next use decrypts nothing', async () => {
      await connect(nearExpiry);
      const provider = stubProvider(now);
      const a = replica(db, provider);
      expect(await token(a)).toBe(accessTokenNo(2));
      const after = opens;
      expect(await token(a)).toBe(accessTokenNo(2));
      expect(opens).toBe(after);
      expect(provider.received).toEqual([RT1]);
    });

    it('uses begun in one turn are answered together, each with the row of its own key only', async () => {
      await connect();
      await connect({ accessToken: accessTokenNo(3) }, 'bob');
      // SQLite: count the selects the version read runs (its statements are prepared on the server's handle).
      const handle = sqliteHandleOf(db);
      let selects = 0;
      if (handle) {
        const prepare = handle.prepare.bind(handle);
        handle.prepare = ((source: string) => {
          const statement = prepare(source);
          if (!source.includes('"connections"')) return statement;
          const all = statement.all.bind(statement);
          statement.all = ((...params: unknown[]) => {
            selects++;
            return all(...params);
          }) as typeof statement.all;
          return statement;
        }) as typeof handle.prepare;
      }
      const a = replica(db);
      const uses = [token(a), token(a, 'bob'), token(a), rejection(token(a, 'carol')), token(a, 'bob'), token(a)];
      expect(await Promise.all(uses)).toEqual([AT1, accessTokenNo(3), AT1, expect.objectContaining({ name: 'ConnectionRequiredError', reason: 'missing' }), accessTokenNo(3), AT1]);
      if (handle) expect(selects).toBe(1);
      // More keys than one select names: still each its own row.
      const many = Array.from({ length: 40 }, (_, i) => `p${i}`);
      for (const sub of many.slice(0, 20)) await connect({ accessToken: `AT-${sub}` }, sub);
      const answers = await Promise.all(many.map((sub) => token(a, sub).catch((e: Error) => e.name)));
      expect(answers).toEqual(many.map((sub, i) => (i < 20 ? `AT-${sub}` : 'ConnectionRequiredError')));
    });

    it('a revocation committed by another connection in the same turn reaches every use begun after it', async () => {
      const handle = sqliteHandleOf(db2);
      // A synchronous write between two uses of one turn: SQLite only (PostgreSQL writes take a round trip).
      if (!handle) return;
      await connect();
      const a = replica(db);
      expect(await token(a)).toBe(AT1);
      // Begun before the write: it may be answered either way (its read may come after the write).
      const before = token(a).catch(() => undefined);
      handle.prepare(`UPDATE connections SET status = 'needs_reconnect' WHERE sub = ? AND provider = ?`).run(SUB, PROVIDER);
      expect(await rejection(token(a))).toMatchObject({ name: 'ConnectionRequiredError', reason: 'reconnect' });
      await before;
    });

    it('revoked and disconnected by another process: the next use here sees both', async () => {
      await connect();
      await connect({}, 'bob');
      const a = replica(db);
      expect(await token(a)).toBe(AT1);
      expect(await token(a, 'bob')).toBe(AT1);
      await inAnotherProcess(backend, [
        [`UPDATE connections SET status = 'needs_reconnect' WHERE sub = ? AND provider = ?`, SUB, PROVIDER],
        [`DELETE FROM connections WHERE sub = ? AND provider = ?`, 'bob', PROVIDER],
      ]);
      expect(await rejection(token(a))).toMatchObject({ name: 'ConnectionRequiredError', reason: 'reconnect' });
      expect(await rejection(token(a, 'bob'))).toMatchObject({ name: 'ConnectionRequiredError', reason: 'missing' });
    });

    it('the number kept is bounded (cacheSize): the least recently used is opened again', async () => {
      for (const sub of ['p1', 'p2', 'p3']) await connect({}, sub);
      const a = replica(db, stubProvider(now), { cacheSize: 2 });
      for (const sub of ['p1', 'p2', 'p3']) expect(await token(a, sub)).toBe(AT1);
      expect(opens).toBe(3);
      expect(await token(a, 'p3')).toBe(AT1);
      expect(opens).toBe(3);
      expect(await token(a, 'p1')).toBe(AT1);
      expect(opens).toBe(4);
    });
  });
});

const requireHere = createRequire(import.meta.url);

/** Run `statements` ([sql with ? placeholders, ...values]) in a separate Node process on the backend's database, and wait for it to exit. */
async function inAnotherProcess(backend: Backend, statements: [string, ...string[]][]): Promise<void> {
  const target = backend.target;
  const script =
    target.kind === 'sqlite'
      ? `const db = new (require(process.env.DRIVER))(process.env.TARGET); db.pragma('busy_timeout = 5000');
         for (const [sql, ...values] of JSON.parse(process.env.STATEMENTS)) db.prepare(sql).run(...values);
         db.close();`
      : `const pg = require(process.env.DRIVER); const c = new pg.Client({ connectionString: process.env.TARGET });
         (async () => { await c.connect();
           for (const [sql, ...values] of JSON.parse(process.env.STATEMENTS)) { let n = 0; await c.query(sql.replace(/\\?/g, () => '$' + ++n), values); }
           await c.end(); })().catch((e) => { console.error(e); process.exit(1); });`;
  const env = {
    PATH: process.env.PATH ?? '',
    DRIVER: requireHere.resolve(target.kind === 'sqlite' ? 'better-sqlite3' : 'pg'),
    TARGET: target.kind === 'sqlite' ? target.path : target.url,
    STATEMENTS: JSON.stringify(statements),
  };
  await new Promise<void>((resolve, reject) =>
    execFile(process.execPath, ['-e', script], { env }, (error, _stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve())),
  );
}

/**
 * A provider reached over real HTTP on loopback (the real provider client,
 * openid-client underneath), whose token endpoint holds every request until
 * the test answers it: a provider in a brownout, or one slow enough that
 * concurrent refreshes overlap.
 */
async function heldTokenEndpoint() {
  const held: ServerResponse[] = [];
  let answer: ((res: ServerResponse) => void) | undefined;
  let arrivals = 0;
  const waiters: Array<{ n: number; fire: () => void }> = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      arrivals++;
      if (answer) answer(res);
      else held.push(res);
      for (const w of waiters.filter((w) => arrivals >= w.n)) w.fire();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    tokenEndpoint: `http://127.0.0.1:${port}/token`,
    get arrivals() {
      return arrivals;
    },
    /** Resolves once `n` token requests have arrived. */
    arrived: (n: number) => new Promise<void>((fire) => (arrivals >= n ? fire() : waiters.push({ n, fire }))),
    /** Answer every held request, and every later one, with `respond`. */
    release(respond: (res: ServerResponse) => void) {
      answer = respond;
      for (const res of held.splice(0)) respond(res);
    },
    async close() {
      this.release((res) => res.writeHead(503).end());
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const providerAt = (tokenEndpoint: string) =>
  createProviderClient(
    {
      name: PROVIDER,
      displayName: 'GitHub',
      authorizationEndpoint: 'http://127.0.0.1:9/authorize',
      tokenEndpoint,
      clientId: 'our-client',
      clientSecret: 'our-secret',
      tokenEndpointAuthMethod: 'client_secret_basic',
      scopes: ['read'],
      pkce: true,
      authorizationParams: {},
    },
    // As in production (src/connections/index.ts): each provider request is limited on its own.
    { timeoutMs: 10_000 },
  );

const rotated = (res: ServerResponse) =>
  res
    .writeHead(200, { 'content-type': 'application/json' })
    .end(JSON.stringify({ access_token: accessTokenNo(2), refresh_token: refreshTokenNo(2), token_type: 'Bearer', expires_in: 3600, scope: 'read' }));

describe('credential refresh on PostgreSQL with a provider over HTTP (real store, sealer and provider client; loopback provider)', () => {
  // The production pool size (src/store/database.ts).
  const pgBackends = storeBackends('credentials-pool', 10);
  let backend: Backend;
  let db: Db;
  let endpoint: Awaited<ReturnType<typeof heldTokenEndpoint>>;
  const sealer = createSealer([{ kid: 'k1', key: new Uint8Array(randomBytes(32)) }]);
  // As in production (src/connections/index.ts).
  const storeOn = (on: Db) => connectionsStore(on, 'postgres', { leaseMs: 25_000, lockWaitMs: 30_000 });
  const serviceOn = (on: Db) =>
    createCredentialService({ store: storeOn(on), sealer, providers: new Map([[PROVIDER, providerAt(endpoint.tokenEndpoint)]]), log: createLogger('error', () => undefined) });
  const token = (svc: CredentialService, sub: string) => svc.forTool(sub, [PROVIDER])[PROVIDER]!.accessToken();
  async function connectNearExpiry(sub: string) {
    const c: StoredCredential = { accessToken: AT1, refreshToken: RT1, expiresAt: Math.floor(Date.now() / 1000) + 30, tokenType: 'Bearer' };
    await storeOn(db).upsert({ sub, provider: PROVIDER, sealed: await sealer.seal(c, { sub, provider: PROVIDER }), keyId: 'k1', expiresAt: c.expiresAt! });
  }

  beforeAll(async () => {
    backend = await pgBackends.postgres();
  });
  afterAll(async () => {
    await backend?.cleanup();
  });
  beforeEach(async () => {
    db = await openDatabase(backend.target);
    await db.deleteFrom('connections').execute();
    endpoint = await heldTokenEndpoint();
  });
  afterEach(async () => {
    await endpoint.close();
    await db.destroy();
  });

  it('issue 26 #9: twelve refreshes hanging at the provider do not hold the pool of ten; an unrelated query completes while they hang', async () => {
    const people = Array.from({ length: 12 }, (_, i) => `person-${i}`);
    for (const sub of people) await connectNearExpiry(sub);
    const svc = serviceOn(db);
    const events: string[] = [];
    const refreshes = people.map((sub) =>
      token(svc, sub).then(
        () => events.push('a refresh ended'),
        (e: Error) => events.push(`a refresh ended: ${e.name}: ${e.message}`),
      ),
    );
    // As many refreshes as the pool has connections are now waiting on the provider.
    await endpoint.arrived(10);
    const unrelated = storeOn(db)
      .list('someone-else')
      .then(
        () => events.push('unrelated query done'),
        (e: Error) => events.push(`unrelated query failed: ${e.message}`),
      );
    await Promise.race([unrelated, ...refreshes]);
    expect(events).toEqual(['unrelated query done']);
    // Every refresh reached the provider at once: none waited for a pooled connection.
    await endpoint.arrived(12);
    endpoint.release((res) => res.writeHead(503).end());
    await Promise.all(refreshes);
    expect(events.slice(1)).toEqual(Array(12).fill('a refresh ended: ProviderUnavailableError: GitHub cannot be reached just now; try again in a moment'));
  });

  it('issue 26 #9: two replicas refreshing one credential at once make one provider request; both get the rotated token', async () => {
    await connectNearExpiry(SUB);
    const replica2 = await openDatabase(backend.target);
    try {
      const a = serviceOn(db);
      const b = serviceOn(replica2);
      const first = token(a, SUB);
      await endpoint.arrived(1);
      // The second replica asks while the first one's refresh is held at the provider.
      const second = token(b, SUB);
      await new Promise((r) => setTimeout(r, 300));
      endpoint.release(rotated);
      expect(await Promise.all([first, second])).toEqual([accessTokenNo(2), accessTokenNo(2)]);
      expect(endpoint.arrivals).toBe(1);
      const row = (await storeOn(db).get(SUB, PROVIDER))!;
      expect(await sealer.open(row.sealed, BIND)).toMatchObject({ accessToken: accessTokenNo(2), refreshToken: refreshTokenNo(2) });
    } finally {
      await replica2.destroy();
    }
  });
});
