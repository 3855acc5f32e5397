import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.js';
import { call, connectAs } from './flow.js';
import { type Stack, startStack, type TestUser } from './stack.js';

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };

/**
 * Bad input, against the real Hydra: every case gets a specific error and
 * changes nothing. Each test names its case; README "Security" lists them.
 */
describe('bad input is refused precisely and changes nothing (real Ory Hydra)', () => {
  let stack: Stack;
  let alice: TestUser;
  let bob: TestUser;
  let aliceToken: string;
  let bobToken: string;

  const countClients = async () => ((await (await fetch(`${stack.hydra.adminUrl}/admin/clients?page_size=500`)).json()) as unknown[]).length;
  const register = (redirect_uris: string[]) =>
    fetch(`${stack.baseUrl}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'bad', redirect_uris, token_endpoint_auth_method: 'none' }),
    });

  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: 'opaque', database: 'sqlite' });
    alice = await stack.addUser('erin@example.com', 'erin password 1');
    bob = await stack.addUser('frank@example.com', 'frank password 2');
    const a = await connectAs(stack, alice);
    aliceToken = a.oauth.tokens()!.access_token;
    await a.close();
    const b = await connectAs(stack, bob);
    bobToken = b.oauth.tokens()!.access_token;
    await b.close();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('malformed JSON body → 400 with JSON-RPC parse error -32700', async () => {
    const res = await fetch(stack.mcpUrl, { method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${aliceToken}` }, body: '{"jsonrpc":' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error: body is not valid JSON' }, id: null });
  });

  it('JSON that is not an initialize request and has no session → 400', async () => {
    const res = await fetch(stack.mcpUrl, { method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${aliceToken}` }, body: JSON.stringify({ hello: 'world' }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('send initialize first');
  });

  it('oversized body (over 1 MB) → 413', async () => {
    const big = JSON.stringify({ ...initialize, params: { ...initialize.params, padding: 'x'.repeat(1_100_000) } });
    const res = await fetch(stack.mcpUrl, { method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${aliceToken}` }, body: big });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: number } }).error.code).toBe(-32600);
  });

  it("another user's Streamable HTTP session id → 404, and the owner's session keeps working", async () => {
    const a = await connectAs(stack, alice);
    try {
      const sessionId = (a.client as unknown as { _transport: { sessionId?: string } })._transport.sessionId!;
      expect(sessionId).toBeTruthy();
      const res = await fetch(stack.mcpUrl, {
        method: 'POST',
        headers: { ...MCP_HEADERS, authorization: `Bearer ${bobToken}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
      });
      expect(res.status).toBe(404);
      expect((await call(a.client, 'whoami')).value.sub).toBe(alice.sub);
    } finally {
      await a.close();
    }
  });

  it("another user's SSE session id → 404, and nothing reaches that session", async () => {
    const a = await connectAs(stack, alice, { transport: 'sse' });
    try {
      const sessionId = (a.client as unknown as { _transport: { _endpoint?: URL } })._transport._endpoint!.searchParams.get('sessionId')!;
      const res = await fetch(`${stack.baseUrl}/messages?sessionId=${sessionId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${bobToken}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'notes_add', arguments: { title: 'planted', body: 'by bob' } } }),
      });
      expect(res.status).toBe(404);
      expect((await call(a.client, 'notes_list')).value.notes.map((n: { title: string }) => n.title)).not.toContain('planted');
    } finally {
      await a.close();
    }
  });

  it.each([
    ['a javascript: URI', 'invalid_client_metadata', 'javascript:alert(1)'],
    ['http on a non-loopback host', 'invalid_redirect_uri', 'http://evil.example/cb'],
    ['a fragment', 'invalid_redirect_uri', 'https://app.example.com/cb#frag'],
    ['userinfo (reads as one host, goes to another)', 'invalid_redirect_uri', 'https://app.example.com@evil.example/cb'],
    ['a file: URI', 'invalid_redirect_uri', 'file:///etc/passwd'],
    ['a ws: URI', 'invalid_redirect_uri', 'ws://127.0.0.1:1/cb'],
    ['a wildcard', 'invalid_redirect_uri', 'https://*.example.com/cb'],
  ])('dynamic registration with %s → 400 %s, no client created', async (_case, error, uri) => {
    const before = await countClients();
    const res = await register([uri]);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe(error);
    expect(await countClients()).toBe(before);
  });

  it.each([
    ['larger than 16 KB', JSON.stringify({ redirect_uris: ['http://127.0.0.1:1/cb'], client_name: 'x'.repeat(20_000) }), 'Registration request is larger than 16 KB'],
    ['not JSON', '{"redirect_uris":', 'Registration request is not valid JSON'],
  ])('dynamic registration %s → 400 invalid_client_metadata, no client created', async (_case, body, description) => {
    const before = await countClients();
    const res = await fetch(`${stack.baseUrl}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_client_metadata', error_description: description });
    expect(await countClients()).toBe(before);
  });

  it('unsupported MCP-Protocol-Version on a session → 400', async () => {
    const a = await connectAs(stack, alice);
    try {
      const sessionId = (a.client as unknown as { _transport: { sessionId?: string } })._transport.sessionId!;
      const res = await fetch(stack.mcpUrl, {
        method: 'POST',
        headers: { ...MCP_HEADERS, authorization: `Bearer ${a.oauth.tokens()!.access_token}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '1999-01-01' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list' }),
      });
      expect(res.status).toBe(400);
      expect(JSON.stringify(await res.json())).toContain('Unsupported protocol version');
    } finally {
      await a.close();
    }
  });

  it('a registration with one bad redirect URI among good ones → 400, no client created (all or nothing)', async () => {
    const before = await countClients();
    const res = await register(['cursor://anysphere.cursor-mcp/oauth/callback', 'https://app.example.com/cb', 'about:blank']);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_redirect_uri', error_description: expect.stringContaining('about:blank') });
    expect(await countClients()).toBe(before);
  });

  /**
   * GET /authorize for a freshly registered client: a PKCE request plus
   * `params`. The refusal must go back to the client's redirect URI
   * (RFC 6749 §4.1.2.1); returns that URL.
   */
  async function refusedAtClient(params: Record<string, string>): Promise<URL> {
    const callback = 'http://127.0.0.1:53682/callback';
    const reg = (await (await register([callback])).json()) as { client_id: string };
    const url = new URL(`${stack.baseUrl}/authorize`);
    url.search = new URLSearchParams({
      client_id: reg.client_id,
      response_type: 'code',
      redirect_uri: callback,
      code_challenge: 'x'.repeat(43),
      code_challenge_method: 'S256',
      ...params,
    }).toString();
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const back = new URL(res.headers.get('location')!);
    expect(back.origin + back.pathname).toBe(callback);
    return back;
  }

  it('a state shorter than 8 characters → invalid_request naming the rule, redirected to the client before sign-in', async () => {
    const back = await refusedAtClient({ state: 'abc' });
    expect(back.searchParams.get('error')).toBe('invalid_request');
    expect(back.searchParams.get('error_description')).toContain('state must be at least 8 characters');
    expect(back.searchParams.get('state'), 'the client gets its own state back (RFC 6749 §4.1.2.1)').toBe('abc');
  });

  it('authorization for a resource that is not ours → invalid_target, no Hydra flow', async () => {
    const back = await refusedAtClient({ state: 'state-12345678', resource: 'https://other.example/mcp' });
    expect(back.searchParams.get('error')).toBe('invalid_target');
  });

  it('token request naming another resource → 400 invalid_target', async () => {
    const res = await fetch(`${stack.baseUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x', client_id: 'y', resource: 'https://other.example/mcp' }).toString(),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_target');
  });

  it('a Hydra token issued for another audience → 401 invalid_token', async () => {
    // A client made with Hydra's admin API, whose tokens name another resource server.
    const created = (await (
      await fetch(`${stack.hydra.adminUrl}/admin/clients`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_types: ['client_credentials'], audience: ['https://other.example/mcp'], scope: 'notes:read', token_endpoint_auth_method: 'client_secret_post' }),
      })
    ).json()) as { client_id: string; client_secret: string };
    const token = (await (
      await fetch(`${stack.hydra.publicUrl}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: created.client_id, client_secret: created.client_secret, scope: 'notes:read', audience: 'https://other.example/mcp' }).toString(),
      })
    ).json()) as { access_token: string };
    const res = await fetch(stack.mcpUrl, { method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${token.access_token}` }, body: JSON.stringify(initialize) });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error_description="Token was not issued for this resource"');
  });

  it('refresh asking for more scope than granted → no escalation: the new token keeps the granted scopes', async () => {
    const b = await connectAs(stack, bob, { uncheck: ['notes:write'] });
    await b.close();
    const res = await fetch(`${stack.baseUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: b.oauth.tokens()!.refresh_token!,
        client_id: b.oauth.clientInformation()!.client_id,
        scope: 'notes:read notes:write',
      }).toString(),
    });
    // Hydra answers 200 but ignores the extra scope (fosite keeps the original grant).
    const body = (await res.json()) as { scope?: string; access_token?: string; error?: string };
    if (res.status === 200) {
      expect(body.scope?.split(' ')).not.toContain('notes:write');
      const write = await fetch(stack.mcpUrl, {
        method: 'POST',
        headers: { ...MCP_HEADERS, authorization: `Bearer ${body.access_token}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'notes_add', arguments: { title: 'x', body: 'y' } } }),
      });
      expect(write.status).toBe(403);
    } else {
      expect(res.status).toBe(400);
    }
  });

  it.each([
    ['a forged login challenge', '/login?login_challenge=forged-challenge-value'],
    ['a forged consent challenge', '/consent?consent_challenge=forged-challenge-value'],
    ['a forged logout challenge', '/logout?logout_challenge=forged-challenge-value'],
  ])('%s → readable 410 page, nothing accepted', async (_case, path) => {
    const res = await fetch(`${stack.baseUrl}${path}`);
    expect(res.status).toBe(410);
    expect(await res.text()).toContain('Start again from your app');
  });

  it('a replayed consent challenge yields no second authorization code', async () => {
    const browser = new Browser();
    const b = await connectAs(stack, bob, { browser });
    await b.close();
    const used = browser.history.find((l) => l.includes('/consent?consent_challenge='))!.split(' ')[1]!;
    // Hydra v2.3 still shows a used consent request; the flow it leads to must not issue a code.
    const page = await browser.open(used);
    const end = page.status === 200 && page.url.pathname === '/consent' ? await page.submit('Allow', {}, (u) => u.href.startsWith('http://127.0.0.1:53682/')) : page;
    expect(end.url.searchParams.get('code')).toBeNull();
  });

  // Last: it uses up this server's registration allowance.
  it('dynamic registration is rate-limited per address → 429 once the hourly allowance is spent', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 25 && !statuses.includes(429); i++) statuses.push((await register([`http://127.0.0.1:${40000 + i}/cb`])).status);
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s === 201).length).toBeLessThanOrEqual(20);
  });
});
