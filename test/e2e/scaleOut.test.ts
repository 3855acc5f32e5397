import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import { parse } from 'node-html-parser';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureHydraBinary, ourPageUrls, freeLoopbackPort, type RunningHydra, startHydra } from '../../scripts/hydra.js';
import { createUserStore } from '../../src/account/userStore.js';
import { type RunningServer, startServer } from '../../src/main.js';
import { openDatabase } from '../../src/store/database.js';
import { createTestDatabase } from '../support/postgres.js';
import { call, connectAs } from './flow.js';
import type { Stack } from './stack.js';

/**
 * A small round-robin load balancer on loopback. A request whose connection
 * is refused (the replica is down) goes to the next one; nothing that reached
 * a replica is ever sent twice.
 */
function roundRobin(ports: number[]): Server {
  let next = 0;
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const attempt = (tries: number) => {
        const port = ports[next++ % ports.length]!;
        // A new connection per request (agent: false): a stopped replica then refuses it
        // instead of resetting a pooled keep-alive socket mid-request.
        const up = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers, agent: false }, (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
        });
        up.on('error', (e: NodeJS.ErrnoException) => {
          if (e.code === 'ECONNREFUSED' && tries > 1) return attempt(tries - 1);
          if (!res.headersSent) res.writeHead(502).end();
          else res.destroy();
        });
        up.end(body);
      };
      attempt(ports.length);
    });
  });
}

/** One request straight to a replica's port, as the balancer sends it (the public Host). */
function toReplica(
  port: number,
  publicHost: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: { ...init.headers, host: publicHost }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

describe('scale-out: two replicas on one PostgreSQL behind a round-robin proxy (stateless Streamable HTTP, real Hydra)', () => {
  let hydra: RunningHydra;
  let proxy: Server;
  let dropDb: () => Promise<void>;
  let env: (port: number) => Record<string, string>;
  let replicaPorts: number[];
  const replicas: RunningServer[] = [];
  let base: string;
  let databaseUrl: string;

  beforeAll(async () => {
    const db = await createTestDatabase(inject('postgresUrl'));
    databaseUrl = db.url;
    dropDb = db.drop;
    const proxyPort = await freeLoopbackPort();
    replicaPorts = [await freeLoopbackPort(), await freeLoopbackPort()];
    base = `http://127.0.0.1:${proxyPort}`;
    hydra = await startHydra({
      binary: await ensureHydraBinary(),
      dsn: 'memory',
      accessTokenStrategy: 'opaque',
      ...ourPageUrls(base),
      secretsSystem: randomBytes(24).toString('hex'),
    });
    const sessionSecret = randomBytes(32).toString('hex');
    env = (port) => ({
      HOST: '127.0.0.1',
      PORT: String(port),
      // Both replicas are one service: one public URL, one secret, one database.
      PUBLIC_BASE_URL: base,
      SESSION_SECRET: sessionSecret,
      DATABASE_URL: databaseUrl,
      HYDRA_PUBLIC_URL: hydra.publicUrl,
      HYDRA_ADMIN_URL: hydra.adminUrl,
      HYDRA_ISSUER: hydra.issuer,
      MCP_STATELESS: 'true',
      INTROSPECTION_CACHE_SECONDS: '0',
      METRICS_PORT: 'off',
      LOG_LEVEL: 'silent',
      // Fair use: a burst that covers each person's calls in the first case, and a slow refill
      // (one token every 10 s) so the shared-limit case does not depend on this machine's speed.
      MCP_REQUESTS_PER_MINUTE: '6',
      MCP_BURST: '45',
    });
    // Both start (and migrate) at once.
    replicas.push(...(await Promise.all(replicaPorts.map((p) => startServer(env(p))))));
    proxy = roundRobin(replicaPorts);
    await new Promise<void>((r) => proxy.listen(proxyPort, '127.0.0.1', () => r()));
  });

  afterAll(async () => {
    await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
    for (const r of replicas) await r.stop();
    await hydra?.stop();
    await dropDb?.();
  });

  it('every acknowledged note exists exactly once after a replica is stopped and restarted mid-run', async () => {
    const db = await openDatabase({ kind: 'postgres', url: databaseUrl });
    try {
    const users = createUserStore(db);
    const people = await Promise.all([0, 1, 2, 3].map((i) => users.add(`scale${i}@example.com`, `scale password ${i}`)));
    const stack = { mcpUrl: new URL(`${base}/mcp`), sseUrl: new URL(`${base}/sse`) } as Stack;
    // One after another: Hydra's in-memory store is not built for concurrent writes.
    const clients = [];
    for (const [i, p] of people.entries()) clients.push(await connectAs(stack, { email: p.email, password: `scale password ${i}`, sub: p.id }));

    const acknowledged: { sub: string; id: string; title: string }[] = [];
    let failed = 0;
    const errors: string[] = [];
    const PER_USER = 30;
    let restarted: Promise<void> | undefined;
    await Promise.all(
      clients.map(async (c, u) => {
        for (let n = 0; n < PER_USER; n++) {
          const title = `u${u}-n${n}`;
          // Mid-run: replica 0 stops (gracefully, as on SIGTERM) and comes back on its port.
          if (u === 0 && n === 10) {
            restarted = replicas[0]!.stop().then(async () => {
              replicas[0] = await startServer(env(replicaPorts[0]!));
            });
          }
          try {
            const r = await call(c.client, 'notes_add', { title, body: 'scale-out' });
            if (r.isError) {
              failed++;
              errors.push(r.text);
            }
            else acknowledged.push({ sub: people[u]!.id, id: r.value.id, title });
          } catch (e) {
            failed++;
            errors.push(String(e));
          }
        }
      }),
    );
    expect(restarted, 'replica 0 was stopped mid-run').toBeDefined();
    await restarted;
    for (const c of clients) await c.close();

    const rows = await db.selectFrom('notes').select(['id', 'sub', 'title']).execute();
    expect(acknowledged.length + failed).toBe(4 * PER_USER);
    // A connection accepted just as the replica closes can be dropped before its
    // request is read; the proxy (like a balancer) does not resend what it sent,
    // so the client sees an error for it. No acknowledged write may be lost or doubled.
    expect(acknowledged.length, `${failed} calls failed while a replica restarted: ${errors.join(' | ').slice(0, 600)}`).toBeGreaterThanOrEqual(
      Math.floor(0.9 * 4 * PER_USER),
    );
    for (const note of acknowledged) {
      const same = rows.filter((r) => r.title === note.title && r.sub === note.sub);
      expect(same.map((r) => r.id), `note ${note.title} stored exactly once`).toEqual([note.id]);
    }
    } finally {
      await db.destroy();
    }
  });

  // DESIGN "A person's life": limits hold across replicas. The throttle counts in the shared
  // rate_counters table.
  it('sign-in failures spread over both replicas lock the account as on one: 10 let through, then 429 on either, even with the right password', async () => {
    const db = await openDatabase({ kind: 'postgres', url: databaseUrl });
    const person = { email: 'spread@example.com', password: 'the right password' };
    try {
      await createUserStore(db).add(person.email, person.password);
    } finally {
      await db.destroy();
    }
    const publicHost = new URL(base).host;
    /** Open the /account sign-in form on one replica and post it there. */
    const signIn = async (replica: number, password: string) => {
      const port = replicaPorts[replica]!;
      const form = await toReplica(port, publicHost, '/account');
      const cookie = (form.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ');
      const csrf = parse(form.text).querySelector('input[name=csrf]')?.getAttribute('value') ?? '';
      return toReplica(port, publicHost, '/account/sign-in', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: new URLSearchParams({ csrf, email: person.email, password }).toString(),
      });
    };
    // Fifteen wrong passwords at once, alternating replicas: each attempt is counted (one atomic
    // increment in PostgreSQL) before its password is checked, so exactly ten are let through, as
    // on one replica. Counted per process, each replica would have let all of its 7 or 8 through.
    const attempts = await Promise.all(Array.from({ length: 15 }, (_, i) => signIn(i % 2, `wrong password ${i}`)));
    const statuses = attempts.map((r) => r.status);
    expect(statuses.filter((s) => s === 401), statuses.join(' ')).toHaveLength(10);
    expect(statuses.filter((s) => s === 429), statuses.join(' ')).toHaveLength(5);
    for (const replica of [0, 1]) {
      const locked = await signIn(replica, person.password);
      expect(locked.status, `replica ${replica}`).toBe(429);
      expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
      expect(locked.text).toContain('Too many failed attempts.');
      expect(locked.headers['set-cookie']?.some((c) => c.startsWith('hmcp_account=')) ?? false).toBe(false);
    }
  });

  it('dynamic registration is limited per address across both replicas: 20 an hour in all, then 429 on either', async () => {
    const db = await openDatabase({ kind: 'postgres', url: databaseUrl });
    try {
      // A fresh allowance: the clients connected by the tests above registered from this address too.
      await db.deleteFrom('rate_counters').where('key', 'like', 'rl:register:%').execute();
    } finally {
      await db.destroy();
    }
    const publicHost = new URL(base).host;
    const register = (replica: number, i: number) =>
      toReplica(replicaPorts[replica]!, publicHost, '/register', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: `spread ${i}`, redirect_uris: [`http://127.0.0.1:${41000 + i}/cb`], token_endpoint_auth_method: 'none' }),
      });
    // One after another: Hydra's in-memory store is not built for concurrent writes.
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await register(i % 2, i)).status);
    expect(statuses).toEqual(Array(20).fill(201));
    // Counted per process, each replica would have seen 10 of its 20 and registered these too.
    for (const replica of [0, 1]) {
      const refused = await register(replica, 20 + replica);
      expect(refused.status, `replica ${replica}`).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(JSON.parse(refused.text)).toMatchObject({ error: 'too_many_requests' });
    }
  });

  it('fair use: one token spread over both replicas gets one shared bucket: the burst in all, then 429 on either', async () => {
    const db = await openDatabase({ kind: 'postgres', url: databaseUrl });
    let person;
    try {
      person = await createUserStore(db).add('fair@example.com', 'fair use password');
      // The registration case above spent this address's registrations; this client needs one.
      await db.deleteFrom('rate_counters').where('key', 'like', 'rl:register:%').execute();
    } finally {
      await db.destroy();
    }
    const stack = { mcpUrl: new URL(`${base}/mcp`), sseUrl: new URL(`${base}/sse`) } as Stack;
    const c = await connectAs(stack, { email: person.email, password: 'fair use password', sub: person.id });
    const token = c.oauth.tokens()!.access_token;
    await c.close();
    const publicHost = new URL(base).host;
    const BURST = 45;
    const whoami = (replica: number, id: number) =>
      toReplica(replicaPorts[replica]!, publicHost, '/mcp', {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2025-06-18',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
      });
    // Twice the burst at once, half to each replica. Counted per process, each would admit all 45 of its own.
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 2 * BURST }, (_, i) => whoami(i % 2, i)));
    const seconds = (Date.now() - started) / 1000;
    const admitted = answers.filter((a) => a.status === 200).length;
    console.log(`[fair use, two replicas] ${2 * BURST} calls at once in ${seconds.toFixed(1)} s: ${admitted} admitted, ${2 * BURST - admitted} refused`);
    // The connect above spent a few tokens (initialize, initialized); one comes back every 10 s.
    expect(admitted).toBeLessThanOrEqual(BURST + Math.ceil(seconds / 10) + 1);
    expect(admitted).toBeGreaterThan(0);
    for (const replica of [0, 1]) {
      const refused = answers.filter((a, i) => i % 2 === replica && a.status === 429);
      expect(refused.length, `replica ${replica} refused some`).toBeGreaterThan(0);
      expect(Number(refused[0]!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(refused[0]!.text)).toMatchObject({ jsonrpc: '2.0', error: { code: 429, data: { limit: 'principal', requestsPerMinute: 6, burst: BURST } } });
    }
    expect(answers.every((a) => a.status === 200 || a.status === 429), answers.map((a) => a.status).join(' ')).toBe(true);
  });
});
