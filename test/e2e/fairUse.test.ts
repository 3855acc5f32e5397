import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, type Connected, connectAs } from './flow.js';
import { type Stack, startStack } from './stack.js';

/** The other person calls at a steady pace (one call per 50 ms at most). */
const PACE_MS = 50;
/** The other person's measured calls in each phase (with and without the flood). */
const N = 40;
/** Concurrent requests of the flood. */
const FLOOD_CONCURRENCY = 16;

/**
 * The flood runs in a child process (plain `fetch`, FLOOD_CONCURRENCY loops of
 * raw tools/call POSTs with one token and session, as the SDK transport sends
 * them), so its own client work is not on our server's event loop. It stops
 * when its stdin closes and prints every answer as JSON.
 */
const FLOODER = `
const { url, token, session, version, concurrency } = JSON.parse(process.env.FLOOD);
let flooding = true;
let nextId = 1000;
const answers = [];
process.stdin.on('end', () => { flooding = false; });
process.stdin.resume();
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (flooding) {
    const id = nextId++;
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': session, 'mcp-protocol-version': version },
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
    });
    answers.push({ id, status: res.status, retryAfter: res.headers.get('retry-after'), body: res.status === 429 ? await res.json() : await res.text() });
  }
}));
process.stdout.write(JSON.stringify(answers));
`;

function startFlood(stack: Stack, c: Connected) {
  const t = c.client.transport as StreamableHTTPClientTransport;
  const env = { url: stack.mcpUrl.href, token: c.oauth.tokens()!.access_token, session: t.sessionId!, version: t.protocolVersion ?? '2025-06-18', concurrency: FLOOD_CONCURRENCY };
  const child = spawn(process.execPath, ['--input-type=module', '-e', FLOODER], { env: { ...process.env, FLOOD: JSON.stringify(env) }, stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  const done = new Promise<{ id: number; status: number; retryAfter: string | null; body: any }[]>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`flooder exited ${code}`)))),
  );
  return { stop: () => (child.stdin.end(), done) };
}

/** `n` whoami calls by `c`, one every PACE_MS; each one's latency in ms. */
async function timedCalls(c: Connected, n: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    const r = await call(c.client, 'whoami');
    const took = performance.now() - start;
    ms.push(took);
    expect(r.isError, r.text).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, PACE_MS - took)));
  }
  return ms;
}

const summary = (ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!.toFixed(1);
  return `median ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${s[s.length - 1]!.toFixed(1)} ms (n=${s.length})`;
};

/**
 * `flooder` floods /mcp with whoami calls (FLOOD_CONCURRENCY at a time) while
 * `steady` makes N paced calls; `steady` also makes N calls before, without the
 * flood. Returns both latency series and every flood answer.
 */
async function floodWhileMeasuring(stack: Stack, flooder: Connected, steady: Connected) {
  await timedCalls(steady, 3); // warm-up
  const quiet = await timedCalls(steady, N);
  const started = performance.now();
  const flood = startFlood(stack, flooder);
  // Let it get going before measuring.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const during = await timedCalls(steady, N);
  const answers = await flood.stop();
  const seconds = (performance.now() - started) / 1000;
  return { quiet, during, answers, seconds };
}

async function twoPeople(stack: Stack, tag: string) {
  const alice = await connectAs(stack, await stack.addUser(`alice-${tag}@example.com`, 'alice flood password'));
  const bob = await connectAs(stack, await stack.addUser(`bob-${tag}@example.com`, 'bob steady password'));
  return { alice, bob };
}

/**
 * Fair use against the real stack: Ory Hydra (JWT access tokens, so a flood
 * costs no introspection), our server with small limits, the SDK client.
 * One token floods /mcp; another person's calls keep being answered, and
 * their latency with and without the flood is measured and printed (the
 * flood comes from a child process; all share this machine's two cores).
 */
describe('fair use: per-token limits on /mcp and /messages (real Hydra, SDK client)', () => {
  // A slow refill (one token every 10 s) so what is refused does not hang on how fast this machine
  // is today; a burst that covers the other person's measured calls (3 + 2 × N).
  const PER_MINUTE = 6;
  const BURST = 100;
  let stack: Stack;
  let alice: Connected;
  let bob: Connected;

  beforeAll(async () => {
    stack = await startStack({
      accessTokenStrategy: 'jwt',
      database: 'sqlite',
      appEnv: async () => ({ MCP_REQUESTS_PER_MINUTE: String(PER_MINUTE), MCP_BURST: String(BURST) }),
    });
    ({ alice, bob } = await twoPeople(stack, 'limited'));
  });
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await stack?.stop();
  });

  it("a flood from one token gets 429 + Retry-After + a JSON-RPC error naming the limit; another person's calls keep working (latency measured)", async () => {
    const { quiet, during, answers, seconds } = await floodWhileMeasuring(stack, alice, bob);
    const statuses = answers.map((a) => a.status);
    const refusals = answers.filter((a) => a.status === 429);
    const admitted = statuses.filter((s) => s === 200).length;
    console.log(
      `[fair use, limits on] flood: ${statuses.length} requests in ${seconds.toFixed(1)} s (${(statuses.length / seconds).toFixed(0)}/s), ${admitted} admitted, ${refusals.length} refused with 429\n` +
        `[fair use, limits on] other user's whoami without the flood: ${summary(quiet)}\n` +
        `[fair use, limits on] other user's whoami during the flood:  ${summary(during)}`,
    );
    expect(statuses.every((s) => s === 200 || s === 429), statuses.filter((s) => s !== 200 && s !== 429).join(' ')).toBe(true);
    // The burst, plus one a second refilled (and the one the warm-up may have left): never more.
    expect(admitted).toBeLessThanOrEqual(BURST + Math.ceil((seconds * PER_MINUTE) / 60) + 1);
    expect(refusals.length).toBeGreaterThan(0);
    for (const r of refusals) {
      expect(r.retryAfter).toMatch(/^[1-9][0-9]*$/);
      expect(r.body).toMatchObject({
        jsonrpc: '2.0',
        id: r.id,
        error: { code: 429, message: expect.stringContaining('Rate limit exceeded'), data: { limit: 'principal', requestsPerMinute: PER_MINUTE, burst: BURST } },
      });
    }

    // What the SDK client shows its user: the HTTP status and our message.
    await expect(call(alice.client, 'whoami')).rejects.toThrow(/429[\s\S]*Rate limit exceeded/);

    const metrics = await (await fetch(stack.server.metricsUrl!)).text();
    const counted = Number(/mcp_rate_limited_total\{scope="principal",transport="streamable-http"\} (\d+)/.exec(metrics)?.[1]);
    expect(counted).toBeGreaterThanOrEqual(refusals.length);
  });

  it('the legacy SSE transport is limited too: POST /messages over the limit gets the same JSON-RPC 429', async () => {
    const carol = await connectAs(stack, await stack.addUser('carol-sse@example.com', 'carol sse password'), { transport: 'sse' });
    try {
      // The /messages?sessionId=… URL the server named in its `endpoint` event (the SDK keeps it private).
      const endpoint = (carol.client.transport as SSEClientTransport as unknown as { _endpoint: URL })._endpoint;
      expect(endpoint.pathname).toBe('/messages');
      const post = (id: number) =>
        fetch(endpoint, {
          method: 'POST',
          headers: { authorization: `Bearer ${carol.oauth.tokens()!.access_token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
        });
      const results = await Promise.all(Array.from({ length: BURST + 10 }, (_, i) => post(i)));
      const refused = results.filter((r) => r.status === 429);
      expect(refused.length).toBeGreaterThan(0);
      expect(Number(refused[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await refused[0]!.json()).toMatchObject({ jsonrpc: '2.0', error: { code: 429, data: { limit: 'principal' } } });
      // GET /sse (a new stream) is refused too, with the plain JSON 429.
      const again = await fetch(stack.sseUrl, { headers: { authorization: `Bearer ${carol.oauth.tokens()!.access_token}`, accept: 'text/event-stream' } });
      expect(again.status).toBe(429);
      expect(await again.json()).toMatchObject({ error: 'too_many_requests', limit: 'principal' });
    } finally {
      await carol.close();
    }
  });
});

/**
 * For comparison, the same flood with the limits off (MCP_REQUESTS_PER_MINUTE=off,
 * as the benchmark runs): every flood call is served, and the other person's
 * latency under it is printed beside the numbers above.
 */
describe('fair use off (MCP_REQUESTS_PER_MINUTE=off): the same flood, all served', () => {
  let stack: Stack;
  let alice: Connected;
  let bob: Connected;

  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: 'jwt', database: 'sqlite', appEnv: async () => ({ MCP_REQUESTS_PER_MINUTE: 'off' }) });
    ({ alice, bob } = await twoPeople(stack, 'unlimited'));
  });
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await stack?.stop();
  });

  it("no request is refused, however many one token sends; the other person's latency is measured the same way", async () => {
    const { quiet, during, answers, seconds } = await floodWhileMeasuring(stack, alice, bob);
    console.log(
      `[fair use, limits off] flood: ${answers.length} requests in ${seconds.toFixed(1)} s (${(answers.length / seconds).toFixed(0)}/s), all served\n` +
        `[fair use, limits off] other user's whoami without the flood: ${summary(quiet)}\n` +
        `[fair use, limits off] other user's whoami during the flood:  ${summary(during)}`,
    );
    // Past any default burst (60): with the limits on, most of these would have been 429.
    expect(answers.length).toBeGreaterThan(100);
    expect(answers.filter((a) => a.status !== 200).map((a) => a.status)).toEqual([]);
  });
});
