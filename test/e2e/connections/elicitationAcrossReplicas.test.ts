import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freeLoopbackPort } from '../../../scripts/hydra.js';
import { type RunningServer, startServer } from '../../../src/main.js';
import { Browser, type Page } from '../../support/browser.js';
import { call, connectAs } from '../flow.js';
import { type Stack, startStack, type TestUser } from '../stack.js';
import { startUpstream, type Upstream } from '../upstream.js';
import { connectInBrowser, elicitingClient, upstreamMeTool } from './helpers.js';

/**
 * Issue 29: the connected-account URL elicitation completing across
 * replicas. Two server processes' worth of our server (A: the stack's, B:
 * a second one started here on the same PostgreSQL, Hydra and settings) and
 * a second real Hydra as the provider. The 2025 SDK client's every request
 * goes to A except its answer to the elicitation (a JSON-RPC response POST),
 * which goes to B: B does not run the call, so the answer must reach A over
 * the PostgreSQL bus, or the call waits in vain.
 */
let apiUrl = '';
const upstreamMe = upstreamMeTool(() => apiUrl);
const KEYS = `k1:${randomBytes(32).toString('base64url')}`;
const SECRET = randomBytes(32).toString('base64url');

describe('URL elicitation answered on another replica (issue 29 #2)', () => {
  let upstream: Upstream;
  let stack: Stack;
  let b: RunningServer;
  let alice: TestUser;
  const bLogs: string[] = [];
  /** Both replicas' warnings and errors, and the session's messages, for a failure's message. */
  const context = () => [...stack.logs.map((l) => `A ${l}`), ...bLogs.map((l) => `B ${l}`)].filter((l) => /"level":"(warn|error)"|session|elicit|bus/i.test(l)).slice(-40).join('\n');

  beforeAll(async () => {
    upstream = await startUpstream({ accessTokenTtl: '60s', storage: 'memory' });
    apiUrl = upstream.apiUrl;
    stack = await startStack({
      accessTokenStrategy: 'jwt',
      database: { postgresAdminUrl: inject('postgresUrl') },
      captureLogs: true,
      extraTools: [upstreamMe as never],
      appEnv: async (base, dir) => {
        const c = await upstream.registerClient({ redirectUris: [`${base}/account/connections/upstream/callback`], scope: 'offline_access profile' });
        const file = join(dir, 'connections.json');
        await writeFile(
          file,
          JSON.stringify({ providers: { upstream: { displayName: 'Upstream', issuer: upstream.issuer, clientId: c.clientId, clientSecret: c.clientSecret, scopes: ['offline_access', 'profile'] } } }),
        );
        // One service: B runs with these too, and the same public URL (A's).
        return { CONNECTIONS_FILE: file, CONNECTION_KEYS: KEYS, CONNECT_WAIT_SECONDS: '30', SESSION_SECRET: SECRET, PUBLIC_BASE_URL: base };
      },
    });
    const bPort = await freeLoopbackPort();
    // B is reached here at its own address, not through a proxy sending the public Host: it allows that host too.
    b = await startServer({ ...stack.env, PORT: String(bPort), ALLOWED_HOSTS: `127.0.0.1:${bPort}`, LOG_LEVEL: 'debug' }, { extraTools: [upstreamMe as never], logSink: (l) => void bLogs.push(l) });
    alice = await stack.addUser('alice@example.com', 'copper lantern 2026');
  }, 120_000);
  afterAll(async () => {
    await b?.stop();
    await stack?.stop();
    await upstream?.stop();
  });

  it('the call runs on A, the person accepts on B, connects in the browser, and the same call completes on A', async () => {
    const browser = new Browser();
    const completed: string[] = [];
    let connecting: Promise<Page> | undefined;
    const connected = await connectAs(stack, alice, { browser });
    await connected.close();
    // The session's requests: answers (a JSON-RPC response, the client's reply to elicitation/create) to B, all else to A.
    const routed: { to: 'A' | 'B'; what: string }[] = [];
    const routedFetch: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      let body: { method?: string; result?: unknown } | undefined;
      if (typeof init?.body === 'string') body = JSON.parse(init.body) as typeof body;
      const isAnswer = body !== undefined && body.method === undefined && body.result !== undefined;
      const to = isAnswer ? 'B' : 'A';
      routed.push({ to, what: `${init?.method ?? 'GET'} ${body?.method ?? (isAnswer ? 'answer' : '-')}` });
      return fetch(new URL(url.pathname + url.search, to === 'B' ? b.url : stack.baseUrl), init);
    };
    const client = elicitingClient(async (url) => {
      connecting = connectInBrowser(browser, url, alice, 'alice-upstream');
      return 'accept';
    }, completed)();
    await client.connect(new StreamableHTTPClientTransport(stack.mcpUrl, { authProvider: connected.oauth, fetch: routedFetch }));
    try {
      const me = await call(client, 'upstream_me').catch((e: unknown) => {
        throw new Error(`${String(e)}\nrouted: ${JSON.stringify(routed)}\n${context()}`);
      });
      expect(me.isError, me.text).toBe(false);
      expect(me.value).toMatchObject({ sub: 'alice-upstream' });
      expect((await connecting!).text()).toContain('Upstream connected');
      expect(completed, 'notifications/elicitation/complete, from A').toHaveLength(1);
      expect(routed.filter((r) => r.to === 'B').map((r) => r.what)).toEqual(['POST answer']);
      expect(bLogs.some((l) => l.includes('"msg":"session rebuilt"')), 'B served the answer in the session it rebuilt').toBe(true);
      expect(routed.filter((r) => r.what === 'POST tools/call').map((r) => r.to)).toEqual(['A']);
    } finally {
      await client.close();
    }
  }, 90_000);
});
