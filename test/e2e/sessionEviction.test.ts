import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { DEFAULT_SESSION_LIMITS } from '../../src/mcp/sessions.js';
import { call, type Connected, connectAs } from './flow.js';
import { type Stack, startStack, type TestUser } from './stack.js';

const PROTOCOL = '2025-06-18';
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'reconnecting', version: '1' } } };
const CAP = DEFAULT_SESSION_LIMITS.maxPerUser;

interface JsonRpcAnswer {
  result?: { content?: { type: string; text: string }[] };
  error?: { code: number; message: string };
}

/** The one JSON-RPC message of a POST answer, sent as JSON or as a one-event SSE stream. */
async function answerOf(res: Response): Promise<JsonRpcAnswer> {
  const text = await res.text();
  if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) return JSON.parse(text) as JsonRpcAnswer;
  const data = text.split('\n').find((l) => l.startsWith('data: '));
  if (!data) throw new Error(`no data in the SSE answer: ${text}`);
  return JSON.parse(data.slice('data: '.length)) as JsonRpcAnswer;
}

/**
 * A client that never ends its sessions (drops the connection, or sends its
 * DELETE without the token): one person's reconnects evict that person's least
 * recently used session instead of locking them out (issue 18, item 2), against
 * the real Hydra. MCP 2025-06-18 basic/transports, "Session Management": a
 * terminated session's id answers 404, and the client starts a new session.
 */
describe('a person at the session cap: the least recently used session is evicted, never a refusal (real Ory Hydra)', () => {
  let stack: Stack;
  let alice: TestUser;
  let bob: TestUser;
  let aliceToken: string;
  let bobConnected: Connected;

  const post = (token: string, body: unknown, sessionId?: string) =>
    fetch(stack.mcpUrl, {
      method: 'POST',
      headers: { ...MCP_HEADERS, authorization: `Bearer ${token}`, ...(sessionId ? { 'mcp-session-id': sessionId, 'mcp-protocol-version': PROTOCOL } : {}) },
      body: JSON.stringify(body),
    });
  const whoami = (sessionId: string) => post(aliceToken, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } }, sessionId);
  /** Live sessions by transport, from the metrics gauge `mcp_sessions_active`. */
  const liveSessions = async (transport: 'streamable-http' | 'sse') => {
    const text = await (await fetch(stack.server.metricsUrl!)).text();
    const line = text.split('\n').find((l) => l.startsWith(`mcp_sessions_active{transport="${transport}"} `));
    if (!line) throw new Error(`no mcp_sessions_active gauge for ${transport} in:\n${text}`);
    return Number(line.split(' ')[1]);
  };

  beforeAll(async () => {
    // Opening 21 sessions in a moment is more than the default fair-use burst (60 requests): raised, this test is about the session cap.
    stack = await startStack({ accessTokenStrategy: 'jwt', database: 'sqlite', appEnv: async () => ({ MCP_BURST: '300' }) });
    alice = await stack.addUser('grace@example.com', 'grace password 1');
    bob = await stack.addUser('heidi@example.com', 'heidi password 2');
    const a = await connectAs(stack, alice);
    aliceToken = a.oauth.tokens()!.access_token;
    // End the flow's own session properly, so Alice starts with none and the counts below are exact.
    await (a.client.transport as StreamableHTTPClientTransport).terminateSession();
    await a.close();
    // Bob's session is older than every one of Alice's: global recency must not touch it.
    bobConnected = await connectAs(stack, bob);
  });
  afterAll(async () => {
    await bobConnected?.close();
    await stack?.stop();
  });

  it(`30 initializes without DELETE: all accepted, the newest works, the oldest answer 404, the other person unaffected, live sessions stay at ${CAP}`, async () => {
    expect(await liveSessions('streamable-http')).toBe(1); // Bob's
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await post(aliceToken, initialize);
      const answer = await answerOf(res);
      expect(res.status, `initialize #${i + 1}: ${JSON.stringify(answer)}`).toBe(200);
      const id = res.headers.get('mcp-session-id');
      expect(id, `initialize #${i + 1} got a session id`).toBeTruthy();
      ids.push(id!);
      // Memory stays bounded as the client keeps reconnecting: Alice's at most CAP, plus Bob's one.
      expect(await liveSessions('streamable-http')).toBe(Math.min(i + 1, CAP) + 1);
    }
    expect(new Set(ids).size).toBe(30);

    const newest = ids[29]!;
    expect((await post(aliceToken, { jsonrpc: '2.0', method: 'notifications/initialized' }, newest)).status).toBe(202);
    const me = await answerOf(await whoami(newest));
    expect(JSON.parse(me.result!.content![0]!.text).sub).toBe(alice.sub);

    // The ten least recently used are gone: 404, which tells a client to initialize again.
    for (const id of ids.slice(0, 30 - CAP)) {
      const res = await whoami(id);
      expect(res.status, `evicted session ${ids.indexOf(id) + 1}`).toBe(404);
      expect((await answerOf(res)).error).toEqual({ code: -32001, message: 'Session not found' });
    }
    // The CAP most recent are all alive.
    for (const id of ids.slice(30 - CAP)) expect((await whoami(id)).status, `session ${ids.indexOf(id) + 1}`).toBe(200);

    expect((await call(bobConnected.client, 'whoami')).value.sub).toBe(bob.sub);
    expect(await liveSessions('streamable-http')).toBe(CAP + 1);
  });

  it('a session used recently survives the next eviction, however old it is', async () => {
    // Alice holds CAP sessions from the test above; this one evicts the oldest of them.
    const first = await post(aliceToken, initialize);
    expect(first.status).toBe(200);
    const old = first.headers.get('mcp-session-id')!;
    await answerOf(first);
    // Fill up: CAP - 1 newer sessions, then use the oldest (`old`) once.
    const newer: string[] = [];
    for (let i = 0; i < CAP - 1; i++) {
      const res = await post(aliceToken, initialize);
      await answerOf(res);
      newer.push(res.headers.get('mcp-session-id')!);
    }
    expect((await whoami(old)).status).toBe(200);
    // One more: the least recently used is now newer[0], not `old`.
    const next = await post(aliceToken, initialize);
    await answerOf(next);
    expect(next.status).toBe(200);
    expect((await whoami(old)).status).toBe(200);
    expect((await whoami(newer[0]!)).status).toBe(404);
    expect(await liveSessions('streamable-http')).toBe(CAP + 1);
  });

  it(`legacy SSE shares the rule: a ${CAP + 1}st stream closes the person's least recently used one, whose id then answers 404`, async () => {
    const aborts: AbortController[] = [];
    /** Opens GET /sse and reads the endpoint event; returns the session id and the open stream. */
    const openStream = async () => {
      const abort = new AbortController();
      aborts.push(abort);
      const res = await fetch(stack.sseUrl, { headers: { accept: 'text/event-stream', authorization: `Bearer ${aliceToken}` }, signal: abort.signal });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      let text = '';
      while (!/sessionId=([^\s&]+)/.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`SSE stream ended before its endpoint event: ${text}`);
        text += new TextDecoder().decode(value);
      }
      return { id: /sessionId=([^\s&]+)/.exec(text)![1]!, reader };
    };
    const message = (id: string) =>
      fetch(`${stack.baseUrl}/messages?sessionId=${id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${aliceToken}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' }),
      });
    try {
      const streams: Awaited<ReturnType<typeof openStream>>[] = [];
      for (let i = 0; i < CAP; i++) streams.push(await openStream());
      expect(await liveSessions('sse')).toBe(CAP);
      const newest = await openStream();
      // The evicted stream is ended by the server: the reader sees its end.
      const ended = async () => {
        for (;;) if ((await streams[0]!.reader.read()).done) return true;
      };
      expect(await ended()).toBe(true);
      expect((await message(streams[0]!.id)).status).toBe(404);
      expect((await message(streams[1]!.id)).status).toBe(202);
      expect((await message(newest.id)).status).toBe(202);
      expect(await liveSessions('sse')).toBe(CAP);
      expect(await liveSessions('streamable-http')).toBe(CAP + 1); // the other transport's registry untouched
    } finally {
      for (const a of aborts) a.abort();
    }
  });
});
