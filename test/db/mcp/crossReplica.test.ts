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
import { PostgresSessionBus } from '../../../src/mcp/postgresSessionBus.js';
import { removedSubjectsStore } from '../../../src/store/removedSubjectsStore.js';
import { loadTools } from '../../../src/tools/registry.js';
import type { ToolDefinition } from '../../../src/tools/contract.js';
import { type Backend, storeBackends } from '../../support/backends.js';
import { freeLoopbackPort } from '../../../scripts/hydra.js';
import { cutAfter } from '../../support/streamCut.js';

/**
 * Issue 29 item 2: a 2025 session's messages cross replicas. Two apps on one
 * real PostgreSQL, each with its own LISTEN/NOTIFY bus (src/mcp/
 * postgresSessionBus.ts), and the official SDK v2 client, whose requests are
 * routed by a fetch that picks the replica per request, so each case puts the
 * call on one replica and the message that concerns it on the other. Only the
 * token check is fixed (token "alice" → sub alice). SQLite is one process by
 * definition: nothing crosses there.
 */
const TOOLS_DIR = fileURLToPath(new URL('../../../tools/', import.meta.url));
const backends = storeBackends('cross-replica');

const verifier: AccessTokenVerifier = {
  verifyAccessToken: async (token) => toAuthInfo({ sub: token, clientId: 'client-1', scopes: [], expiresAt: Date.now() / 1000 + 600 }, token),
  isActiveNow: async () => true,
};

interface Replica {
  name: string;
  app: App;
  db: Db;
  bus: PostgresSessionBus;
  server: Server;
  url: string;
}

/** Which replica each request went to: `${name} ${HTTP method} ${JSON-RPC method or "-"}${" last-event-id" if resuming}`. */
type Route = (req: { httpMethod: string; rpc: string | undefined; lastEventId: string | null }) => Replica;

describe('a 2025 session across two replicas on PostgreSQL (issue 29 #2)', () => {
  let backend: Backend;
  let tools: ToolDefinition[];
  const replicas: Replica[] = [];
  const clients: Client[] = [];

  async function startReplica(name: string): Promise<Replica> {
    const port = await freeLoopbackPort();
    if (backend.target.kind !== 'postgres') throw new Error('postgres only');
    const config = loadConfig({
      HOST: '127.0.0.1',
      PORT: String(port),
      HYDRA_PUBLIC_URL: 'http://127.0.0.1:9',
      HYDRA_ADMIN_URL: 'http://127.0.0.1:9',
      SESSION_SECRET: 's'.repeat(40),
      LOG_LEVEL: 'silent',
      METRICS_PORT: 'off',
      DATABASE_URL: backend.target.url,
    });
    const db = await openDatabase(backend.target);
    const log = createLogger('silent');
    const hydra = createHydra({ adminUrl: config.hydra.adminUrl, publicUrl: config.hydra.publicUrl });
    const bus = await PostgresSessionBus.start(backend.target.url, log);
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
      removedSubjects: new RemovedSubjects({ store: removedSubjectsStore(db), retentionSeconds: 3600, log }),
      sessionBus: bus,
      // A resumed stream that is replayed on the replica not running the call is closed; the client asks again this soon.
      sharedSessions: { retryIntervalMs: 200 },
    });
    const server = createServer(app.app);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const replica = { name, app, db, bus, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    replicas.push(replica);
    return replica;
  }

  /** An SDK v2 client whose requests go where `route` says; `hits` records where each went. */
  async function routedClient(token: string, route: Route, cut?: (body: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array>) {
    const hits: string[] = [];
    let cutOnce = cut;
    const routed: typeof fetch = async (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const httpMethod = init?.method ?? 'GET';
      let rpc: string | undefined;
      if (typeof init?.body === 'string') rpc = (JSON.parse(init.body) as { method?: string }).method;
      const lastEventId = new Headers(init?.headers).get('last-event-id');
      const target = route({ httpMethod, rpc, lastEventId });
      hits.push(`${target.name} ${httpMethod} ${rpc ?? '-'}${lastEventId ? ' last-event-id' : ''}`);
      const res = await fetch(new URL(url.pathname + url.search, target.url), init);
      // The first tools/call's stream is cut short once, as a dropped connection would.
      if (cutOnce && rpc === 'tools/call' && res.body) {
        const body = cutOnce(res.body);
        cutOnce = undefined;
        return new Response(body, { status: res.status, headers: res.headers });
      }
      return res;
    };
    const transport = new StreamableHTTPClientTransport(new URL('/mcp', replicas[0]!.url), { fetch: routed, requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'cross-replica', version: '1.0.0' });
    const errors: string[] = [];
    client.onerror = (e) => errors.push(String(e));
    await client.connect(transport);
    clients.push(client);
    return { client, transport, hits, errors };
  }

  const lastRun = async (db: Db, sub: string) => {
    const row = await db.selectFrom('records').select('value').where('sub', '=', sub).where('collection', '=', 'long_task').where('key', '=', 'last_run').executeTakeFirst();
    return row ? (JSON.parse(row.value) as { status: string; completed: number; of: number }) : undefined;
  };

  beforeAll(async () => {
    backend = await backends.postgres();
    tools = await loadTools(TOOLS_DIR, REGISTRABLE_SCOPES);
  });
  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.close()));
    for (const r of replicas.splice(0)) {
      await r.app.closeSessions();
      await new Promise((done) => r.server.close(done));
      r.server.closeAllConnections();
      await r.bus.close();
      await r.db.destroy();
    }
  });
  afterAll(async () => {
    await backend?.cleanup();
  });

  it('long_task runs on A with its progress on its own stream; the cancellation POSTed to B stops it on A', async () => {
    const [a, b] = [await startReplica('A'), await startReplica('B')];
    // Everything on A but the cancellation.
    const { client, hits } = await routedClient('alice', ({ rpc }) => (rpc === 'notifications/cancelled' ? b : a));
    const progress: number[] = [];
    const cancel = new AbortController();
    const call = client.callTool({ name: 'long_task', arguments: { seconds: 20 } }, { signal: cancel.signal, onprogress: (p) => {
      progress.push(p.progress);
      if (p.progress === 2) cancel.abort('enough');
    } });
    await expect(call).rejects.toThrow();
    expect(progress).toEqual([1, 2]);
    // The tool saw the cancellation on A (it records why it stopped) within a second or two, not after 20 s.
    const until = Date.now() + 5000;
    let run = await lastRun(a.db, 'alice');
    while (run?.status !== 'cancelled' && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      run = await lastRun(a.db, 'alice');
    }
    expect(run).toMatchObject({ status: 'cancelled', of: 20 });
    expect(run!.completed).toBeLessThan(5);
    expect(hits).toContain('A POST tools/call');
    expect(hits).toContain('B POST notifications/cancelled');
  }, 30_000);

  it('a cancellation that reaches the replica running the call is acted on there and not published', async () => {
    const [a] = [await startReplica('A'), await startReplica('B')];
    const published: unknown[] = [];
    const publish = a.bus.publish.bind(a.bus);
    a.bus.publish = async (s, m) => {
      published.push(m);
      return publish(s, m);
    };
    const { client } = await routedClient('dora', () => a);
    const cancel = new AbortController();
    const call = client.callTool({ name: 'long_task', arguments: { seconds: 20 } }, { signal: cancel.signal, onprogress: () => cancel.abort('enough') });
    await expect(call).rejects.toThrow();
    const until = Date.now() + 5000;
    while ((await lastRun(a.db, 'dora'))?.status !== 'cancelled' && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(await lastRun(a.db, 'dora')).toMatchObject({ status: 'cancelled' });
    expect(published).toEqual([]);
  }, 30_000);

  it('a stream cut mid-call resumes with Last-Event-ID on B (not running the call): every progress step once, then the result, polled from the shared log', async () => {
    const [a, b] = [await startReplica('A'), await startReplica('B')];
    // Through the first progress event, then the connection drops.
    const cutAfterFirstProgress = cutAfter('notifications/progress');
    const { client, hits, errors } = await routedClient('erin', ({ lastEventId }) => (lastEventId ? b : a), cutAfterFirstProgress);
    const progress: number[] = [];
    const result = await client.callTool({ name: 'long_task', arguments: { seconds: 3 } }, { onprogress: (p) => progress.push(p.progress), timeout: 20_000 });
    expect(JSON.parse((result.content as { text: string }[])[0]!.text)).toEqual({ completed: 3 });
    expect(progress, 'each step once, in order: none lost, none repeated').toEqual([1, 2, 3]);
    const resumes = hits.filter((h) => h.endsWith('last-event-id'));
    expect(resumes.length, hits.join('\n')).toBeGreaterThanOrEqual(1);
    expect(resumes.every((h) => h.startsWith('B GET'))).toBe(true);
    expect(hits.filter((h) => h.includes('tools/call'))).toEqual(['A POST tools/call']);
    expect(errors).toEqual([]);
  }, 30_000);

  it("a Last-Event-ID of another person's stream replays nothing of it (the owner's own resume, on the same replica, gets it all)", async () => {
    const [a, b] = [await startReplica('A'), await startReplica('B')];
    const frank = await routedClient('frank', () => a);
    const ids: string[] = [];
    const done = await frank.client.callTool({ name: 'long_task', arguments: { seconds: 1 } }, { onresumptiontoken: (t) => ids.push(t), onprogress: () => {} });
    expect(done.isError).toBeFalsy();
    expect(ids.length).toBeGreaterThan(0);
    const mallory = await routedClient('mallory', () => b);
    const resume = (token: string, sessionId: string) =>
      fetch(`${b.url}/mcp`, {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${token}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25', 'last-event-id': ids[0]! },
        signal: AbortSignal.timeout(1500),
      }).then((r) => r.text());
    // Positive control: the owner, on B (which never ran the call), gets the rest of the stream.
    const own = await resume('frank', frank.transport.sessionId!);
    expect(own).toContain('step 1 of 1');
    expect(own).toContain('{\\"completed\\":1}');
    // Another person with their own session and the same event id: nothing, only the wait for events of their own stream.
    await expect(resume('mallory', mallory.transport.sessionId!)).rejects.toThrow(/timeout|aborted/i);
    // An id this server never sent: refused, naming the header.
    const bad = await fetch(`${b.url}/mcp`, {
      headers: { accept: 'text/event-stream', authorization: 'Bearer frank', 'mcp-session-id': frank.transport.sessionId!, 'mcp-protocol-version': '2025-11-25', 'last-event-id': 'stream 1' },
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { message: expect.stringContaining('Last-Event-ID is not an event id this server sent') } });
  }, 30_000);
});
