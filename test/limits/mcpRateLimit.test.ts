import type { Server } from 'node:http';
import express, { type RequestHandler } from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toAuthInfo } from '../../src/auth/principal.js';
import { createMcpRateLimit, type LimitedEvent, type McpRateLimitOptions, RATE_LIMITED_CODE } from '../../src/limits/mcpRateLimit.js';
import { createLogger } from '../../src/log/logger.js';
import { type Db, openDatabase } from '../../src/store/database.js';
import { type TokenBuckets, tokenBucketsStore } from '../../src/store/tokenBuckets.js';

/**
 * The limiter on a real Express app over the real shared table (SQLite). The
 * bearer check is replaced by a step that sets `req.auth` from headers: the
 * limiter only reads the principal the real check leaves there.
 */
describe('MCP fair-use limiter', () => {
  let db: Db;
  let clock: number;
  const servers: Server[] = [];
  const lines: string[] = [];
  const log = createLogger('info', (l) => lines.push(l));

  beforeEach(async () => {
    db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    clock = 1_700_000_000_000;
    lines.length = 0;
    answered.length = 0;
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
    await db.destroy().catch(() => {});
  });

  const asCaller: RequestHandler = (req, _res, next) => {
    const sub = req.get('x-sub');
    if (sub) req.auth = toAuthInfo({ sub, clientId: req.get('x-client') ?? 'app-1', scopes: [], expiresAt: 0 }, 'token');
    next();
  };

  /** Responses the app began to send (status line written), by path: a held refusal whose client left adds none. */
  const answered: string[] = [];

  /**
   * One replica: its own limiter instance (own fast-path memory) over the given buckets.
   * Refusals are answered at once (maxHoldMs 0) unless a test asks for the hold, so the fake clock rules every other test.
   */
  async function replica(overrides: Partial<McpRateLimitOptions> = {}, buckets: TokenBuckets = tokenBucketsStore(db)) {
    const limiter = createMcpRateLimit({ buckets, principal: { requestsPerMinute: 60, burst: 3 }, client: { requestsPerMinute: 120, burst: 5, clientIds: ['app-1'] }, log, now: () => clock, maxHoldMs: 0, ...overrides });
    const app = express();
    app.use((req, res, next) => {
      res.set('X-Request-Id', 'req-42');
      const writeHead = res.writeHead;
      res.writeHead = function (this: typeof res, ...args: Parameters<typeof writeHead>) {
        answered.push(req.path);
        return writeHead.apply(this, args);
      } as typeof writeHead;
      next();
    });
    app.post('/mcp', asCaller, express.json(), limiter('streamable-http'), (_req, res) => void res.json({ ok: true }));
    app.get('/sse', asCaller, limiter('sse'), (_req, res) => void res.json({ ok: true }));
    const server = await new Promise<Server>((r) => {
      const s = app.listen(0, '127.0.0.1', () => r(s));
    });
    servers.push(server);
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    return {
      post: (sub: string, body: unknown, client = 'app-1', signal?: AbortSignal) =>
        fetch(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-sub': sub, 'x-client': client }, body: JSON.stringify(body), ...(signal ? { signal } : {}) }),
      get: (sub: string, client = 'app-1') => fetch(`${base}/sse`, { headers: { 'x-sub': sub, 'x-client': client } }),
      anonymous: () => fetch(`${base}/sse`),
    };
  }
  const callTool = (id: number | string, name = 'whoami') => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

  it('admits the burst, then answers 429 with an integer Retry-After and a JSON-RPC error echoing the id and naming the limit', async () => {
    const r = await replica();
    for (let i = 0; i < 3; i++) expect((await r.post('alice', callTool(i))).status).toBe(200);
    const refused = await r.post('alice', callTool('call-7'));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.headers.get('cache-control')).toBe('no-store');
    expect(await refused.json()).toEqual({
      jsonrpc: '2.0',
      id: 'call-7',
      error: {
        code: RATE_LIMITED_CODE,
        message: 'Rate limit exceeded: at most 60 requests a minute (bursts of 3) for this user through this app; retry after 1 s',
        data: { limit: 'principal', requestsPerMinute: 60, burst: 3, retryAfterSeconds: 1 },
      },
    });
    // One interval later one token is back.
    clock += 1000;
    expect((await r.post('alice', callTool(8))).status).toBe(200);
    expect((await r.post('alice', callTool(9))).status).toBe(429);
  });

  it('a batch gets one error per request, in order; a GET and a notification-only POST get the plain JSON 429', async () => {
    const r = await replica({ principal: { requestsPerMinute: 60, burst: 1 } });
    expect((await r.get('bob')).status).toBe(200);
    const batch = await r.post('bob', [callTool(1), { jsonrpc: '2.0', method: 'notifications/cancelled', params: {} }, callTool(2)]);
    expect(batch.status).toBe(429);
    expect(((await batch.json()) as { id: number; error: { code: number } }[]).map((e) => [e.id, e.error.code])).toEqual([
      [1, 429],
      [2, 429],
    ]);
    for (const res of [await r.get('bob'), await r.post('bob', { jsonrpc: '2.0', method: 'notifications/initialized' }), await r.post('bob', { not: 'json-rpc' })]) {
      expect(res.status).toBe(429);
      expect(Number.isInteger(Number(res.headers.get('retry-after')))).toBe(true);
      expect(await res.json()).toMatchObject({ error: 'too_many_requests', limit: 'principal', retry_after_seconds: 1 });
    }
  });

  it("one user's flood leaves another user of the same app, and other apps, their own allowance until the app's shared bucket is spent", async () => {
    const r = await replica();
    for (let i = 0; i < 3; i++) expect((await r.post('alice', callTool(i))).status).toBe(200);
    for (let i = 0; i < 20; i++) expect((await r.post('alice', callTool(i))).status).toBe(429);
    // The app's bucket (5) gave alice 3 and nothing for her 20 refused: carol gets the other 2.
    expect((await r.post('carol', callTool(1))).status).toBe(200);
    expect((await r.post('carol', callTool(2))).status).toBe(200);
    const shared = await r.post('carol', callTool(3));
    expect(shared.status).toBe(429);
    expect(await shared.json()).toMatchObject({ error: { data: { limit: 'client', requestsPerMinute: 120, burst: 5 } } });
    // Another app's users are untouched.
    expect((await r.post('alice', callTool(1), 'app-2')).status).toBe(200);
  });

  it('without a per-client bucket only the caller is limited', async () => {
    const r = await replica({ client: undefined });
    for (const sub of ['u1', 'u2', 'u3']) for (let i = 0; i < 3; i++) expect((await r.post(sub, callTool(i))).status, sub).toBe(200);
  });

  it("issue 26 #8: only the clients an operator names share a bucket; a refusal by it leaves the caller's own bucket whole", async () => {
    const r = await replica();
    // app-2 is not named: three people spend 9 in all, past app-1's shared 5, and none is refused by the app.
    for (const sub of ['u1', 'u2', 'u3']) for (let i = 0; i < 3; i++) expect((await r.post(sub, callTool(i), 'app-2')).status, sub).toBe(200);
    // app-1 is: alice takes 3, carol 2, then carol is refused by the app's bucket, again and again.
    for (let i = 0; i < 3; i++) expect((await r.post('alice', callTool(i))).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await r.post('carol', callTool(i))).status).toBe(200);
    for (let i = 0; i < 5; i++) expect(await (await r.post('carol', callTool(i))).json()).toMatchObject({ error: { data: { limit: 'client' } } });
    // A second on: two tokens back in the app's bucket, one in carol's, who still holds the one the
    // app's refusals did not spend: she is served twice, then refused by her own bucket.
    clock += 1000;
    const answers = [];
    for (let i = 0; i < 3; i++) {
      const res = await r.post('carol', callTool(i));
      answers.push(res.status === 429 ? ((await res.json()) as { error: { data: { limit: string } } }).error.data.limit : res.status);
    }
    expect(answers).toEqual([200, 200, 'principal']);
  });

  it('issue 26 #4: a batch of N messages takes N tokens, all or none (from a lease too); a refused batch tells onLimited once per message', async () => {
    const inner = tokenBucketsStore(db);
    const asked: [number, number][] = [];
    const counted: TokenBuckets = { take: (b, now, want = 1, need = 1) => (asked.push([want, need]), inner.take(b, now, want, need)) };
    const events: LimitedEvent[] = [];
    const r = await replica({ principal: { requestsPerMinute: 60, burst: 10 }, client: undefined, leaseSize: 4, onLimited: (e) => events.push(e) }, counted);
    // One request leases 4 and spends 1; a batch of 3 spends the other 3 without the database.
    expect((await r.post('frank', callTool(1))).status).toBe(200);
    expect((await r.post('frank', [callTool(2), callTool(3), callTool(4)])).status).toBe(200);
    expect(asked).toEqual([[4, 1]]);
    // The lease spent, a batch of 5 asks the database for at least 5 (6 are left), a single call for 1 to 4 (1 is left).
    expect((await r.post('frank', [1, 2, 3, 4, 5].map((i) => callTool(10 + i)))).status).toBe(200);
    expect((await r.post('frank', callTool(20))).status).toBe(200);
    expect(asked).toEqual([
      [4, 1],
      [5, 5],
      [4, 1],
    ]);
    // None left: a batch of 2 is refused whole, one JSON-RPC error and one onLimited event per message.
    const refused = await r.post('frank', [callTool(30, 'notes_add'), { jsonrpc: '2.0', method: 'notifications/cancelled', params: {} }, callTool(31)]);
    expect(refused.status).toBe(429);
    const errors = (await refused.json()) as { id: number; error: { message: string } }[];
    expect(errors.map((e) => e.id)).toEqual([30, 31]);
    expect(errors[0]!.error.message).toContain('a batch of 3 messages counts as 3 requests');
    expect(events.map((e) => [e.method, e.tool, e.jsonRpcId])).toEqual([
      ['tools/call', 'notes_add', 30],
      ['notifications/cancelled', undefined, undefined],
      ['tools/call', 'whoami', 31],
    ]);
    // Three tokens back (3 s): a batch of 4 is refused, and took nothing: three single calls are then served.
    clock += 3000;
    expect((await r.post('frank', [1, 2, 3, 4].map((i) => callTool(40 + i)))).status).toBe(429);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await r.post('frank', callTool(50 + i))).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    // A batch larger than the burst never fits: refused at once.
    clock += 60_000;
    expect((await r.post('frank', Array.from({ length: 11 }, (_, i) => callTool(60 + i)))).status).toBe(429);
    expect((await r.post('frank', Array.from({ length: 10 }, (_, i) => callTool(80 + i)))).status).toBe(200);
  });

  it('two replicas over one table share the limit', async () => {
    const [a, b] = [await replica(), await replica()];
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await (i % 2 ? a : b).post('alice', callTool(i))).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429]);
  });

  it('answers the rest of a flood from memory until the retry time, then asks the shared buckets again', async () => {
    const inner = tokenBucketsStore(db);
    let takes = 0;
    const counted: TokenBuckets = { take: (b, now) => (takes++, inner.take(b, now)) };
    const r = await replica({}, counted);
    for (let i = 0; i < 4; i++) await r.post('alice', callTool(i));
    expect(takes).toBe(4);
    for (let i = 0; i < 50; i++) expect((await r.post('alice', callTool(i))).status).toBe(429);
    expect(takes, 'refusals within the retry time did not touch the database').toBe(4);
    clock += 999;
    expect((await r.post('alice', callTool(1))).headers.get('retry-after')).toBe('1');
    expect(takes).toBe(4);
    clock += 1;
    expect((await r.post('alice', callTool(2))).status).toBe(200);
    expect(takes).toBe(5);
  });

  it('leases: one statement takes a few tokens, the next requests here spend them; two replicas leasing still admit only the burst', async () => {
    const inner = tokenBucketsStore(db);
    let takes = 0;
    const counted: TokenBuckets = { take: (b, now, want) => (takes++, inner.take(b, now, want)) };
    const limits = { principal: { requestsPerMinute: 60, burst: 10 }, client: { requestsPerMinute: 60, burst: 100, clientIds: ['app-1'] }, leaseSize: 4 };
    const a = await replica(limits, counted);
    const b = await replica(limits, counted);
    const statuses = [];
    // Replica a leases 4 and spends them; b leases 4; a 2 (all that is left); then both refuse.
    for (const r of [a, a, a, a, b, b, b, b, a, a, a, b]) statuses.push((await r.post('erin', callTool(1))).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 429, 429]);
    expect(takes).toBe(5);
    // A lease is spent within a second or lost: 4 s on, a leases all 4 tokens back and spends one;
    // a second later its 3 are gone, and only the one token refilled since is admitted.
    clock += 4000;
    expect((await a.post('erin', callTool(1))).status).toBe(200);
    clock += 1001;
    const later = [];
    for (let i = 0; i < 3; i++) later.push((await a.post('erin', callTool(i))).status);
    expect(later).toEqual([200, 429, 429]);
    expect(takes).toBe(5 + 3);
  });

  it('a busy caller leases twice as many each time it spends a lease within its second (up to 256, and an eighth of the burst: 125 here): 200 requests, 5 statements', async () => {
    const inner = tokenBucketsStore(db);
    const wants: number[] = [];
    const counted: TokenBuckets = { take: (b, now, want) => (wants.push(want ?? 1), inner.take(b, now, want)) };
    const a = await replica({ principal: { requestsPerMinute: 60000, burst: 1000 }, client: { requestsPerMinute: 60000, burst: 1000, clientIds: ['app-1'] } }, counted);
    for (let i = 0; i < 200; i++) expect((await a.post('busy', callTool(i))).status).toBe(200);
    expect(wants).toEqual([8, 16, 32, 64, 125]);
    // A second idle: the lease lapsed, the next one starts small again.
    clock += 1001;
    expect((await a.post('busy', callTool(0))).status).toBe(200);
    expect(wants.at(-1)).toBe(8);
  });

  it('tells onLimited who was refused, for which method and tool, with the request ids; a throwing callback is logged, not answered', async () => {
    const events: LimitedEvent[] = [];
    const counts: string[] = [];
    const r = await replica({
      principal: { requestsPerMinute: 60, burst: 1 },
      onLimited: (e) => {
        events.push(e);
        if (e.method === 'GET') throw new Error('audit queue full');
      },
      onCounted: (scope, transport) => counts.push(`${scope}/${transport}`),
    });
    await r.post('alice', callTool(1));
    expect((await r.post('alice', callTool(5, 'notes_add'))).status).toBe(429);
    expect((await r.get('alice')).status).toBe(429);
    expect(events).toEqual([
      { sub: 'alice', clientId: 'app-1', transport: 'streamable-http', method: 'tools/call', tool: 'notes_add', requestId: 'req-42', jsonRpcId: 5, scope: 'principal', retryAfterSeconds: 1 },
      { sub: 'alice', clientId: 'app-1', transport: 'sse', method: 'GET', requestId: 'req-42', scope: 'principal', retryAfterSeconds: 1 },
    ]);
    expect(counts).toEqual(['principal/streamable-http', 'principal/sse']);
    expect(lines.some((l) => l.includes('onLimited failed') && l.includes('audit queue full'))).toBe(true);
  });

  it('a request without a principal is left to the bearer check; a database that fails lets requests through and says so', async () => {
    const r = await replica({ principal: { requestsPerMinute: 60, burst: 1 } });
    for (let i = 0; i < 3; i++) expect((await r.anonymous()).status).toBe(200);
    await db.destroy();
    expect((await r.post('dave', callTool(1))).status).toBe(200);
    expect((await r.post('dave', callTool(2))).status).toBe(200);
    // Said once a minute, not once per request.
    expect(lines.filter((l) => l.includes('fair-use limit not checked'))).toHaveLength(1);
    clock += 60_000;
    expect((await r.post('dave', callTool(3))).status).toBe(200);
    expect(lines.filter((l) => l.includes('fair-use limit not checked'))).toHaveLength(2);
  });

  /** The status of one request and how long (real time) its answer took. */
  async function timed(request: Promise<Response>): Promise<{ status: number; ms: number; res: Response }> {
    const start = performance.now();
    const res = await request;
    return { status: res.status, ms: performance.now() - start, res };
  }

  describe('holding refusals (a client that ignores Retry-After cannot make the server spend its time refusing it)', () => {
    const HOLD = { maxHoldMs: 1000 };

    it('holds a refusal until its retry time: a 200 ms refill is answered after about 200 ms', async () => {
      // 300 a minute: one token every 200 ms.
      const r = await replica({ ...HOLD, principal: { requestsPerMinute: 300, burst: 1 }, client: undefined });
      const admitted = await timed(r.post('alice', callTool(1)));
      expect(admitted.status).toBe(200);
      const refused = await timed(r.post('alice', callTool(2)));
      expect(refused.status).toBe(429);
      expect(refused.ms).toBeGreaterThanOrEqual(150);
      // Admitted at once: compared with the held one, not with a fixed time, since other test files share the cores.
      expect(admitted.ms).toBeLessThan(refused.ms);
      expect(refused.ms).toBeLessThan(900);
      expect(refused.res.headers.get('retry-after')).toBe('1');
    });

    it('holds at most 1 s however far the retry time is (one a minute: Retry-After 60)', async () => {
      const r = await replica({ ...HOLD, principal: { requestsPerMinute: 1, burst: 1 }, client: undefined });
      await r.post('alice', callTool(1));
      const refused = await timed(r.post('alice', callTool(2)));
      expect(refused.status).toBe(429);
      expect(refused.res.headers.get('retry-after')).toBe('60');
      expect(refused.ms).toBeGreaterThanOrEqual(950);
      expect(refused.ms).toBeLessThan(1800);
    });

    it('a held answer has the same status, headers and bodies as one answered at once (JSON-RPC, batch, GET)', async () => {
      const r = await replica(HOLD);
      for (let i = 0; i < 3; i++) expect((await r.post('alice', callTool(i))).status).toBe(200);
      const [one, batch, get] = await Promise.all([timed(r.post('alice', callTool('call-7'))), timed(r.post('alice', [callTool(1), callTool(2)])), timed(r.get('alice'))]);
      for (const t of [one, batch, get]) {
        expect(t.status).toBe(429);
        expect(t.ms, 'held for the 1 s retry time').toBeGreaterThanOrEqual(950);
        expect(t.res.headers.get('retry-after')).toBe('1');
        expect(t.res.headers.get('cache-control')).toBe('no-store');
        expect(t.res.headers.get('content-type')).toMatch(/^application\/json/);
      }
      const message = 'Rate limit exceeded: at most 60 requests a minute (bursts of 3) for this user through this app; retry after 1 s';
      const error = { code: RATE_LIMITED_CODE, message, data: { limit: 'principal', requestsPerMinute: 60, burst: 3, retryAfterSeconds: 1 } };
      expect(await one.res.json()).toEqual({ jsonrpc: '2.0', id: 'call-7', error });
      // A batch counts one request per message (issue 26 #4), and its message says so.
      const batchError = { ...error, message: message.replace('; retry', '; a batch of 2 messages counts as 2 requests; retry') };
      expect(await batch.res.json()).toEqual([
        { jsonrpc: '2.0', id: 1, error: batchError },
        { jsonrpc: '2.0', id: 2, error: batchError },
      ]);
      expect(await get.res.json()).toEqual({ error: 'too_many_requests', error_description: message, limit: 'principal', retry_after_seconds: 1 });
    });

    it('holds at most maxHeld at once: past it refusals are answered at once; once released, the next is held again', async () => {
      const r = await replica({ ...HOLD, maxHeld: 2, principal: { requestsPerMinute: 1, burst: 1 }, client: undefined });
      await r.post('alice', callTool(1));
      // Two held first (in order, so the others find the limit full).
      const heldOnes = [timed(r.post('alice', callTool(2))), timed(r.post('alice', callTool(3)))];
      await new Promise((resolve) => setTimeout(resolve, 100));
      const atOnce = await Promise.all([timed(r.post('alice', callTool(4))), timed(r.post('alice', callTool(5)))]);
      for (const t of atOnce) {
        expect(t.status).toBe(429);
        expect(t.ms).toBeLessThan(500);
      }
      for (const t of await Promise.all(heldOnes)) {
        expect(t.status).toBe(429);
        expect(t.ms).toBeGreaterThanOrEqual(950);
      }
      const again = await timed(r.post('alice', callTool(6)));
      expect(again.status).toBe(429);
      expect(again.ms, 'the held ones were released').toBeGreaterThanOrEqual(950);
    });

    it('a client that disconnects while held is sent nothing, nothing throws, its slot is freed; the refusal was still counted and told', async () => {
      const events: LimitedEvent[] = [];
      const counts: string[] = [];
      const r = await replica({ ...HOLD, maxHeld: 1, principal: { requestsPerMinute: 1, burst: 1 }, client: undefined, onLimited: (e) => events.push(e), onCounted: (s) => counts.push(s) });
      await r.post('alice', callTool(1));
      expect(answered).toEqual(['/mcp']);
      const abort = new AbortController();
      const left = r.post('alice', callTool(2), 'app-1', abort.signal);
      await new Promise((resolve) => setTimeout(resolve, 200));
      abort.abort();
      await expect(left).rejects.toThrow(/abort/i);
      // The server hears the socket close a moment after the client drops it.
      await new Promise((resolve) => setTimeout(resolve, 100));
      // The slot is free at once: the next refusal is held (not answered at once past maxHeld 1).
      const next = await timed(r.post('alice', callTool(3)));
      expect(next.status).toBe(429);
      expect(next.ms).toBeGreaterThanOrEqual(950);
      // Past the departed one's hold time too: it was never answered.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(answered).toEqual(['/mcp', '/mcp']);
      expect(events.map((e) => e.jsonRpcId)).toEqual([2, 3]);
      expect(counts).toEqual(['principal', 'principal']);
      expect(lines, 'nothing warned or failed').toEqual([]);
    });

    it('maxHoldMs 0 answers at once', async () => {
      const r = await replica({ maxHoldMs: 0, principal: { requestsPerMinute: 1, burst: 1 }, client: undefined });
      await r.post('alice', callTool(1));
      const refused = await timed(r.post('alice', callTool(2)));
      expect(refused.status).toBe(429);
      expect(refused.ms).toBeLessThan(500);
    });
  });

  it.each([
    ['a rate of 0', { principal: { requestsPerMinute: 0, burst: 1 } }, /principal requestsPerMinute must be an integer from 1 to 60000, got 0/],
    ['a fractional rate', { principal: { requestsPerMinute: 1.5, burst: 1 } }, /principal requestsPerMinute must be an integer/],
    ['a client burst of -5', { client: { requestsPerMinute: 10, burst: -5, clientIds: ['app-1'] } }, /client burst must be a positive integer, got -5/],
    ['client ids that are not a list', { client: { requestsPerMinute: 10, burst: 5, clientIds: 'app-1' as unknown as string[] } }, /clientIds must be a list of client ids/],
    ['a hold of 1001 ms', { maxHoldMs: 1001 }, /maxHoldMs must be an integer from 0 to 1000, got 1001/],
    ['a negative hold', { maxHoldMs: -1 }, /maxHoldMs must be an integer from 0 to 1000, got -1/],
    ['a fractional maxHeld', { maxHeld: 2.5 }, /maxHeld must be a non-negative integer, got 2.5/],
  ])('refuses to build with %s', (_name, overrides, message) => {
    expect(() => createMcpRateLimit({ buckets: tokenBucketsStore(db), principal: { requestsPerMinute: 60, burst: 3 }, log, ...overrides })).toThrow(message);
  });
});
