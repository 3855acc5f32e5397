import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { type AuditEvent, auditStore } from '../../src/store/auditStore.js';
import { type Db, openDatabase } from '../../src/store/database.js';
import { postMcp, tokenFor, whoami } from './rawMcp.js';
import { type Stack, startStack } from './stack.js';

/** A small burst and a slow refill (one token a minute): nothing comes back while a test runs. */
const BURST = 5;

/**
 * JSON-RPC batches and the fair-use limit (issue 26 #4), against the real Ory
 * Hydra and our server, in both Streamable HTTP modes. MCP 2025-06-18 removed
 * batching ("The body of the POST request MUST be a single JSON-RPC request,
 * notification, or response", basic/transports); 2025-03-26 allows it, so
 * there every message of a batch takes its own token and leaves its own
 * audit record.
 */
describe.each([
  { mode: 'sessions', stateless: false },
  { mode: 'stateless', stateless: true },
] as const)('issue 26 #4: JSON-RPC batches on /mcp ($mode, real Hydra)', ({ stateless }) => {
  let stack: Stack;
  let db: Db;
  let n = 0;

  beforeAll(async () => {
    stack = await startStack({
      accessTokenStrategy: 'jwt',
      database: 'sqlite',
      appEnv: async () => ({ MCP_REQUESTS_PER_MINUTE: '1', MCP_BURST: String(BURST), MCP_STATELESS: String(stateless) }),
    });
    db = await openDatabase(loadConfig(stack.env).database);
  });
  afterAll(async () => {
    await db?.destroy();
    await stack?.stop();
  });

  const person = async () => {
    const user = await stack.addUser(`batch-${stateless ? 'stateless' : 'sessions'}-${++n}@example.com`, 'batch person password');
    return { user, token: await tokenFor(stack, user) };
  };
  /** Opens what a client of `version` uses: with sessions, initialize + initialized (two requests, two tokens); stateless, nothing. */
  const open = async (token: string, version: string): Promise<{ headers: Record<string, string>; spent: number }> => {
    if (stateless) return { headers: { 'mcp-protocol-version': version }, spent: 0 };
    const init = await postMcp(stack, token, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'batcher', version: '1.0.0' } } });
    expect(init.status, init.body).toBe(200);
    expect(init.messages[0].result.protocolVersion).toBe(version);
    const headers = { 'mcp-session-id': init.session!, 'mcp-protocol-version': version };
    expect((await postMcp(stack, token, { jsonrpc: '2.0', method: 'notifications/initialized' }, headers)).status).toBe(202);
    return { headers, spent: 2 };
  };
  const toolCallsOf = async (sub: string): Promise<AuditEvent[]> => (await auditStore(db).pageForSubject(sub, { limit: 1000 })).events.filter((e) => e.kind === 'tool_call');
  /** Waits (up to 10 s: the writer flushes about once a second) until `sub` has `count` tool-call records. */
  const recordsOf = async (sub: string, count: number): Promise<AuditEvent[]> => {
    for (const deadline = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 100))) {
      const events = await toolCallsOf(sub);
      if (events.length >= count || Date.now() > deadline) return events;
    }
  };

  it.each(['2025-06-18', '2025-11-25'])('issue 26 #4: a batch from a %s client gets 400 with JSON-RPC -32600 (Invalid Request); nothing in it runs or spends the limit', async (version) => {
    const { user, token } = await person();
    const { headers, spent } = await open(token, version);
    const batch = await postMcp(stack, token, [whoami(1), whoami(2), whoami(3)], headers);
    expect(batch.status, batch.body).toBe(400);
    expect(batch.messages).toEqual([{ jsonrpc: '2.0', id: null, error: { code: -32600, message: expect.stringContaining(`batches are not supported`) } }]);
    if (!stateless) {
      // The session's negotiated version decides, not the header a client may leave out.
      expect((await postMcp(stack, token, [whoami(4), whoami(5)], { 'mcp-session-id': headers['mcp-session-id']! })).status).toBe(400);
    }
    // The whole burst is still there: the refused batches took nothing.
    for (let i = 0; i < BURST - spent; i++) expect((await postMcp(stack, token, whoami(10 + i), headers)).status, `call ${i + 1}`).toBe(200);
    expect((await postMcp(stack, token, whoami(99), headers)).status).toBe(429);
    // Only the single calls ran: one record each, plus the refused one.
    const records = await recordsOf(user.sub, BURST - spent + 1);
    expect(records.map((e) => e.outcome).sort()).toEqual([...Array<string>(BURST - spent).fill('ok'), 'rate_limited'].sort());
  });

  it('issue 26 #4: a 2026-07-28 batch is refused the same way, by its header or by the revision its messages name; nothing runs or spends the limit', async () => {
    const { user, token } = await person();
    const envelope = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'batcher', version: '1.0.0' }, 'io.modelcontextprotocol/clientCapabilities': {} };
    const modern = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'whoami', arguments: {}, _meta: envelope } });
    for (const [body, headers] of [
      [[whoami(1), whoami(2)], { 'mcp-protocol-version': '2026-07-28' }],
      [[modern(3), modern(4)], {}],
    ] as const) {
      const batch = await postMcp(stack, token, body, headers);
      expect(batch.status, batch.body).toBe(400);
      expect(batch.messages).toEqual([{ jsonrpc: '2.0', id: null, error: { code: -32600, message: expect.stringMatching(/batch/) } }]);
    }
    const { headers } = await open(token, '2025-03-26');
    const spent = stateless ? 0 : 2;
    for (let i = 0; i < BURST - spent; i++) expect((await postMcp(stack, token, whoami(10 + i), headers)).status, `call ${i + 1}`).toBe(200);
    expect((await postMcp(stack, token, whoami(99), headers)).status).toBe(429);
    expect((await recordsOf(user.sub, BURST - spent + 1)).filter((e) => e.outcome === 'ok')).toHaveLength(BURST - spent);
  });

  it('issue 26 #4: a 2025-03-26 batch of N tools/call takes N tokens (the next message over the burst is refused) and leaves N audit records; a refused batch leaves one record per call', async () => {
    const { user, token } = await person();
    const { headers, spent } = await open(token, '2025-03-26');
    const size = BURST - spent;
    const batch = await postMcp(stack, token, Array.from({ length: size }, (_, i) => whoami(i + 1)), headers);
    expect(batch.status, batch.body).toBe(200);
    expect(batch.messages.map((m) => [m.id, JSON.parse(m.result.content[0].text).sub])).toEqual(Array.from({ length: size }, (_, i) => [i + 1, user.sub]));
    // The burst is spent: one more message is one too many.
    const over = await postMcp(stack, token, whoami(50), headers);
    expect(over.status, over.body).toBe(429);
    expect(over.messages[0]).toMatchObject({ id: 50, error: { code: 429, data: { limit: 'principal', burst: BURST } } });
    // A refused batch: one JSON-RPC error and one audit record per call in it.
    const refused = await postMcp(stack, token, [whoami(60), whoami(61)], headers);
    expect(refused.status).toBe(429);
    expect(refused.messages.map((m) => [m.id, m.error.code])).toEqual([
      [60, 429],
      [61, 429],
    ]);
    const records = await recordsOf(user.sub, size + 3);
    expect(records.filter((e) => e.tool === 'whoami' && e.outcome === 'ok')).toHaveLength(size);
    expect(records.filter((e) => e.tool === 'whoami' && e.outcome === 'rate_limited')).toHaveLength(3);
    expect(records).toHaveLength(size + 3);
  });
});
