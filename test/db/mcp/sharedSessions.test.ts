import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RemovedSubjects } from '../../../src/account/removedSubjects.js';
import { type App, buildApp } from '../../../src/app/app.js';
import { toAuthInfo } from '../../../src/auth/principal.js';
import { REGISTRABLE_SCOPES } from '../../../src/auth/scopes.js';
import type { AccessTokenVerifier } from '../../../src/auth/tokenVerifier.js';
import { loadConfig } from '../../../src/config/config.js';
import { createHydra } from '../../../src/hydra/index.js';
import { createLogger } from '../../../src/log/logger.js';
import { Metrics } from '../../../src/metrics/metrics.js';
import { type Db, openDatabase } from '../../../src/store/database.js';
import { removedSubjectsStore } from '../../../src/store/removedSubjectsStore.js';
import { loadTools } from '../../../src/tools/registry.js';
import type { ToolDefinition } from '../../../src/tools/contract.js';
import { type Backend, storeBackends } from '../../support/backends.js';
import { freeLoopbackPort } from '../../../scripts/hydra.js';

/**
 * Issue 29 item 1: 2025-era sessions in the shared database. Two replicas
 * (two apps, each with its own database handle and HTTP port, one database)
 * and the official SDK v2 client, whose requests alternate between them after
 * `initialize`. Only the token check is fixed (token "alice" → sub alice, …).
 */
const backends = storeBackends('shared-sessions');
const TOOLS_DIR = fileURLToPath(new URL('../../../tools/', import.meta.url));
const REVALIDATE_MS = 150;
// Only the idle-expiry test runs with a short idle time; elsewhere a loaded machine's pauses must not expire sessions.
const IDLE_MS = 1000;

const verifier: AccessTokenVerifier = {
  // "alice", "bob", or "alice~client-2": the token names the person (and client).
  verifyAccessToken: async (token) => {
    const [sub, clientId = 'client-1'] = token.split('~');
    return toAuthInfo({ sub: sub!, clientId, scopes: ['notes:read', 'notes:write'], expiresAt: Date.now() / 1000 + 600 }, token);
  },
  isActiveNow: async () => true,
};

interface Replica {
  app: App;
  db: Db;
  server: Server;
  url: string;
  rebuilds: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(['sqlite', 'postgres'] as const)('2025 sessions shared by two replicas on %s', (kind) => {
  let backend: Backend;
  let tools: ToolDefinition[];
  const replicas: Replica[] = [];
  const clients: Client[] = [];

  async function startReplica({ idleMs = 60_000, revalidateMs = REVALIDATE_MS } = {}): Promise<Replica> {
    const port = await freeLoopbackPort();
    const env = {
      HOST: '127.0.0.1',
      PORT: String(port),
      HYDRA_PUBLIC_URL: 'http://127.0.0.1:9',
      HYDRA_ADMIN_URL: 'http://127.0.0.1:9',
      SESSION_SECRET: 's'.repeat(40),
      LOG_LEVEL: 'silent',
      METRICS_PORT: 'off',
      ...(backend.target.kind === 'postgres' ? { DATABASE_URL: backend.target.url } : { DATABASE_PATH: backend.target.path }),
    };
    const config = loadConfig(env);
    const db = await openDatabase(backend.target);
    const log = createLogger('silent');
    const hydra = createHydra({ adminUrl: config.hydra.adminUrl, publicUrl: config.hydra.publicUrl });
    const removedSubjects = new RemovedSubjects({ store: removedSubjectsStore(db), retentionSeconds: 3600, log });
    const rebuilds: number[] = [];
    const app = buildApp({
      config,
      db,
      hydraAdmin: hydra.admin,
      hydraPublic: hydra.public,
      tools,
      log,
      version: 'test',
      metrics: new Metrics(),
      verifier,
      removedSubjects,
      sharedSessions: { revalidateMs, limits: { idleMs, maxPerUser: 3 }, onRebuilt: (ms) => rebuilds.push(ms) },
    });
    const server = createServer(app.app);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const replica = { app, db, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, rebuilds };
    replicas.push(replica);
    return replica;
  }

  /** An SDK v2 client whose every request goes to the next replica in turn (the first, initialize, to `first`). */
  async function roundRobinClient(token: string, order: Replica[]): Promise<{ client: Client; transport: StreamableHTTPClientTransport; hits: string[] }> {
    const hits: string[] = [];
    let n = 0;
    const roundRobin: typeof fetch = (input, init) => {
      const target = order[n++ % order.length]!;
      const url = new URL(input instanceof Request ? input.url : String(input));
      hits.push(`${init?.method ?? 'GET'} ${target.url}`);
      return fetch(new URL(url.pathname + url.search, target.url), init);
    };
    const transport = new StreamableHTTPClientTransport(new URL('/mcp', order[0]!.url), { fetch: roundRobin, requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'round-robin', version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    return { client, transport, hits };
  }

  /** One raw POST to a replica's /mcp with a session id. */
  const post = (r: Replica, token: string, sessionId: string, body: unknown) =>
    fetch(`${r.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify(body),
    });
  const listTools = (r: Replica, token: string, sessionId: string) => post(r, token, sessionId, { jsonrpc: '2.0', id: 9, method: 'tools/list' });

  beforeAll(async () => {
    backend = await backends[kind]();
    tools = await loadTools(TOOLS_DIR, REGISTRABLE_SCOPES);
  });
  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.close()));
    for (const r of replicas.splice(0)) {
      await r.app.closeSessions();
      await new Promise((done) => r.server.close(done));
      r.server.closeAllConnections();
      await r.db.destroy();
    }
  });
  afterAll(async () => {
    await backend?.cleanup();
  });

  it('initialize on one replica; tools/list and tools/call alternate between both; the session is rebuilt once on the other', async () => {
    const [a, b] = [await startReplica(), await startReplica()];
    const { client, transport, hits } = await roundRobinClient('alice', [a, b]);
    expect(transport.sessionId).toBeTruthy();
    for (let i = 0; i < 6; i++) {
      const listed = await client.listTools();
      expect(listed.tools.map((t) => t.name)).toContain('whoami');
      const called = await client.callTool({ name: 'whoami', arguments: {} });
      expect(JSON.parse((called.content as { text: string }[])[0]!.text)).toMatchObject({ sub: 'alice' });
    }
    // Both replicas answered POSTs of the session (initialize went to a).
    const posts = hits.filter((h) => h.startsWith('POST'));
    expect(new Set(posts).size).toBe(2);
    expect(a.rebuilds.length + b.rebuilds.length, 'rebuilt once, on the replica that did not see initialize').toBe(1);
    expect(b.rebuilds).toHaveLength(1);
    const row = await a.db.selectFrom('mcp_sessions').selectAll().where('id', '=', transport.sessionId!).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ sub: 'alice', client_id: 'client-1', protocol_version: client.getNegotiatedProtocolVersion?.() ?? expect.any(String) });
    expect(JSON.parse(row.client_info)).toMatchObject({ name: 'round-robin', version: '1.0.0' });
    console.log(`[${kind}] rebuild of a session on the other replica: ${b.rebuilds.map((ms) => ms.toFixed(2)).join(', ')} ms`);
  });

  it("another person's token (or another client's) with the session id: 404 on both replicas; the owner still served", async () => {
    const [a, b] = [await startReplica(), await startReplica()];
    const { client, transport } = await roundRobinClient('alice', [a]);
    const id = transport.sessionId!;
    for (const r of [a, b]) {
      for (const token of ['bob', 'alice~client-2']) {
        const res = await listTools(r, token, id);
        expect(res.status, `${token} on ${r === a ? 'a' : 'b'}`).toBe(404);
        expect(await res.json()).toMatchObject({ error: { code: -32001, message: 'Session not found' } });
      }
    }
    expect(b.rebuilds, 'nothing rebuilt for a foreign token').toHaveLength(0);
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    expect((await listTools(b, 'alice', id)).status).toBe(200);
  });

  it('DELETE on one replica: the other, which holds the session too, answers 404 within the revalidation window', async () => {
    const [a, b] = [await startReplica(), await startReplica()];
    const { transport } = await roundRobinClient('alice', [a]);
    const id = transport.sessionId!;
    expect((await listTools(b, 'alice', id)).status).toBe(200);
    const del = await fetch(`${a.url}/mcp`, { method: 'DELETE', headers: { authorization: 'Bearer alice', 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' } });
    expect(del.status).toBe(200);
    expect((await listTools(a, 'alice', id)).status).toBe(404);
    expect(await a.db.selectFrom('mcp_sessions').select('id').where('id', '=', id).executeTakeFirst()).toBeUndefined();
    await sleep(REVALIDATE_MS + 20);
    expect((await listTools(b, 'alice', id)).status).toBe(404);
  });

  it('account removal on one replica ends the session on both', async () => {
    const [a, b] = [await startReplica(), await startReplica()];
    const { transport } = await roundRobinClient('carol', [a]);
    const id = transport.sessionId!;
    expect((await listTools(b, 'carol', id)).status).toBe(200);
    // Hydra is not running here: the removal stops at its Hydra step, after onRecorded has ended the sessions.
    await a.app.removeAccount({ deletedAccount: 'carol' }).catch(() => undefined);
    expect(await a.db.selectFrom('mcp_sessions').select('id').where('sub', '=', 'carol').execute()).toEqual([]);
    expect((await listTools(a, 'carol', id)).status).toBe(404);
    await sleep(REVALIDATE_MS + 20);
    expect((await listTools(b, 'carol', id)).status).toBe(404);
  });

  it("a person's 4th session (cap 3) evicts their least recently used one on every replica", async () => {
    const [a, b] = [await startReplica(), await startReplica()];
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await roundRobinClient('dave', [i % 2 ? b : a])).transport.sessionId!);
    // The first is used (on b, where it is rebuilt): the second is now the least recently used.
    expect((await listTools(b, 'dave', ids[0]!)).status).toBe(200);
    ids.push((await roundRobinClient('dave', [a])).transport.sessionId!);
    expect((await a.db.selectFrom('mcp_sessions').select('id').where('sub', '=', 'dave').execute()).map((r) => r.id).sort()).toEqual([ids[0], ids[2], ids[3]].sort());
    await sleep(REVALIDATE_MS + 20);
    for (const r of [a, b]) expect((await listTools(r, 'dave', ids[1]!)).status).toBe(404);
    for (const r of [a, b]) expect((await listTools(r, 'dave', ids[0]!)).status).toBe(200);
  });

  it('idle expiry: a session unused for the idle time is deleted and answers 404 on both replicas', async () => {
    const [a, b] = [await startReplica({ idleMs: IDLE_MS }), await startReplica({ idleMs: IDLE_MS })];
    const { transport } = await roundRobinClient('erin', [a]);
    const id = transport.sessionId!;
    expect((await listTools(b, 'erin', id)).status).toBe(200);
    // The sweep runs every idle time (when shorter than a minute); give it two.
    await sleep(IDLE_MS * 2 + 100);
    expect(await a.db.selectFrom('mcp_sessions').select('id').where('id', '=', id).executeTakeFirst()).toBeUndefined();
    for (const r of [a, b]) expect((await listTools(r, 'erin', id)).status).toBe(404);
  });

  it('last-seen is written at most once per revalidation interval, not per request', async () => {
    // An interval far longer than the requests take, however loaded the machine: no write among them.
    const a = await startReplica({ revalidateMs: 60_000 });
    const { client, transport } = await roundRobinClient('frank', [a]);
    const seenOn = async (db: Db) => Number((await db.selectFrom('mcp_sessions').select('last_seen_at').where('id', '=', transport.sessionId!).executeTakeFirstOrThrow()).last_seen_at);
    const first = await seenOn(a.db);
    for (let i = 0; i < 5; i++) await client.listTools();
    expect(await seenOn(a.db), 'five requests within the interval: no write').toBe(first);
    // A replica with a short interval writes once it has passed.
    const b = await startReplica({ revalidateMs: 200 });
    expect((await listTools(b, 'frank', transport.sessionId!)).status).toBe(200);
    const rebuilt = await seenOn(b.db);
    await sleep(250);
    expect((await listTools(b, 'frank', transport.sessionId!)).status).toBe(200);
    expect(await seenOn(b.db)).toBeGreaterThan(Math.max(first, rebuilt));
  });
});
