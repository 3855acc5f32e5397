import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { DEFAULT_REFRESH_MS } from '../../src/account/removedSubjects.js';
import { call, connectAs } from './flow.js';
import { type Stack, startStack, type TestUser } from './stack.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const REVISION = '2025-06-18';
const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: REVISION, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };

/**
 * Agents with no person present (issue 14 part 5), on the real stack (Ory
 * Hydra built from its Go module, our server, the official MCP SDK client),
 * with both token kinds. It follows the MCP client-credentials extension
 * (io.modelcontextprotocol/oauth-client-credentials, modelcontextprotocol/
 * ext-auth specification/draft/oauth-client-credentials.mdx): the client is
 * "pre-registered ... out-of-band through administrative channels" (here
 * `npm run client -- add --machine`), "Dynamic Client Registration is not
 * used", the AS metadata lists `client_secret_basic`, and the token request
 * names the MCP server as `resource`.
 */
describe.each(['opaque', 'jwt'] as const)('machine clients with %s access tokens (real Ory Hydra)', (tokens) => {
  let stack: Stack;
  let scratch: string;
  let machine: { id: string; secret: string };
  let alice: TestUser;

  /** `npm run client -- <args>` against this stack's Hydra and database, from a directory with no .env. */
  const clientCli = (...args: string[]) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = spawn(process.execPath, [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), join(ROOT, 'scripts/client.ts'), ...args], {
        cwd: scratch,
        env: { PATH: process.env.PATH ?? '', ...stack.env },
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (err += d));
      child.on('close', (code) => resolve({ code, out, err }));
    });

  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: tokens, database: 'sqlite' });
    scratch = await mkdtemp(join(tmpdir(), 'hydra-mcp-machines-'));
    const added = await clientCli('add', '--machine', 'nightly-report', '--scopes', 'notes:read');
    if (added.code !== 0) throw new Error(`client add failed: ${added.out}\n${added.err}`);
    machine = { id: /client_id: +(\S+)/.exec(added.out)![1]!, secret: /client_secret: +(\S+)/.exec(added.out)![1]! };
    alice = await stack.addUser(`alice-${tokens}@example.com`, 'correct horse battery staple');
  }, 300_000);
  afterAll(async () => {
    await stack?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  /** A client-credentials token from OUR /token (proxied to Hydra), client authenticated with HTTP Basic. */
  const tokenRequest = (id: string, secret: string, fields: Record<string, string> = {}) =>
    fetch(`${stack.baseUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(id, secret) },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: stack.mcpUrl.href, scope: 'notes:read', ...fields }).toString(),
    });
  const machineToken = async () => {
    const res = await tokenRequest(machine.id, machine.secret);
    const body = (await res.json()) as { access_token?: string; error?: string };
    expect(res.status, JSON.stringify(body)).toBe(200);
    return body.access_token!;
  };
  /** The official SDK client with a fixed bearer token. */
  const connectWithToken = async (token: string) => {
    const client = new Client({ name: 'machine', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(stack.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    return client;
  };
  const rawCall = (token: string, sessionId: string, name: string) =>
    fetch(stack.mcpUrl, {
      method: 'POST',
      headers: { ...MCP_HEADERS, authorization: `Bearer ${token}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': REVISION },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name, arguments: {} } }),
    });
  const openSession = async (token: string) => {
    const res = await fetch(stack.mcpUrl, { method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${token}` }, body: JSON.stringify(initialize) });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    return res.headers.get('mcp-session-id')!;
  };

  it('AS metadata (RFC 8414) lists client_credentials and client_secret_basic, as the extension requires', async () => {
    const meta = (await (await fetch(`${stack.baseUrl}/.well-known/oauth-authorization-server`)).json()) as Record<string, string[]>;
    expect(meta.grant_types_supported).toContain('client_credentials');
    expect(meta.token_endpoint_auth_methods_supported).toContain('client_secret_basic');
  });

  it('npm run client -- add --machine → token at our /token (Basic) → whoami answers with sub = client id, kind machine', async () => {
    const token = await machineToken();
    const client = await connectWithToken(token);
    try {
      const me = await call(client, 'whoami');
      expect(me.isError, me.text).toBe(false);
      expect(me.value).toMatchObject({ sub: machine.id, client_id: machine.id, kind: 'machine', scopes: ['notes:read'] });
    } finally {
      await client.close();
    }
  });

  it('the official SDK’s ClientCredentialsProvider finds its way alone: 401 → PRM → AS metadata → /token → call', async () => {
    const authProvider = new ClientCredentialsProvider({ clientId: machine.id, clientSecret: machine.secret, scope: 'notes:read', expectedIssuer: stack.baseUrl });
    const client = new Client({ name: 'sdk-machine', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(stack.mcpUrl, { authProvider }));
    try {
      expect((await call(client, 'whoami')).value).toMatchObject({ sub: machine.id, kind: 'machine' });
    } finally {
      await client.close();
    }
  });

  it('a people-only tool (notes_list) → HTTP 403 access_denied naming the tool and saying machines may not call it', async () => {
    const token = await machineToken();
    const res = await rawCall(token, await openSession(token), 'notes_list');
    expect(res.status).toBe(403);
    const body = (await res.json()) as { id: number; error: { message: string; data: { error: string; tool: string } } };
    expect(body).toMatchObject({ id: 9, error: { data: { error: 'access_denied', tool: 'notes_list' } } });
    expect(body.error.message).toContain('tool notes_list may be called by people only');
    expect(body.error.message).toContain('machines may not call it');
    // Through the SDK client, the refusal's text is what the agent sees.
    const client = await connectWithToken(token);
    try {
      await expect(client.callTool({ name: 'notes_list', arguments: {} })).rejects.toThrow(/access_denied: tool notes_list may be called by people only/);
    } finally {
      await client.close();
    }
  });

  it('/register refuses grant_types client_credentials with invalid_client_metadata naming the operator command', async () => {
    const res = await fetch(`${stack.baseUrl}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'sneaky agent', redirect_uris: ['http://127.0.0.1:9/cb'], grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: 'invalid_client_metadata',
      error_description: 'grant_types must not include client_credentials: machine clients are made by an operator (npm run client -- add --machine), not registered',
    });
  });

  it('a client that registered normally and then tries client_credentials gets nothing usable', async () => {
    const reg = (await (
      await fetch(`${stack.baseUrl}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: 'ordinary app', redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'client_secret_basic' }),
      })
    ).json()) as { client_id: string; client_secret: string };
    expect(reg.client_secret).toBeTruthy();
    const res = await tokenRequest(reg.client_id, reg.client_secret);
    const body = (await res.json()) as { access_token?: string; error?: string };
    // Hydra: the client was not registered for that grant.
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(body.access_token).toBeUndefined();
    expect(body.error).toBe('unauthorized_client');
  });

  it('a client_credentials client with our audience that an operator made without the machine mark: its token is refused (401, not a machine client)', async () => {
    // Hydra's public registration is closed (issue 26 #1); the admin API is the only other door.
    const direct = await fetch(`${stack.hydra.adminUrl}/admin/clients`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_types: ['client_credentials'], audience: [stack.mcpUrl.href], scope: 'notes:read', token_endpoint_auth_method: 'client_secret_post' }),
    });
    expect(direct.status).toBe(201);
    const reg = (await direct.json()) as { client_id: string; client_secret: string };
    const minted = await fetch(`${stack.hydra.publicUrl}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: reg.client_id, client_secret: reg.client_secret, scope: 'notes:read', audience: stack.mcpUrl.href }),
    });
    expect(minted.status).toBe(200);
    const { access_token } = (await minted.json()) as { access_token: string };
    const res = await fetch(stack.mcpUrl, { method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${access_token}` }, body: JSON.stringify(initialize) });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(res.headers.get('www-authenticate')).toContain('not a machine client of this server');
  });

  it('the machine mark cannot be self-granted: Hydra’s registration is closed and ours drops `metadata`', async () => {
    const atHydra = await fetch(`${stack.hydra.publicUrl}/oauth2/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_types: ['client_credentials'], audience: [stack.mcpUrl.href], metadata: { machine: true } }),
    });
    expect(atHydra.status).toBe(404);
    const ours = await fetch(`${stack.baseUrl}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:9/cb'], metadata: { machine: true } }),
    });
    expect(ours.status).toBe(201);
    const { client_id } = (await ours.json()) as { client_id: string };
    const held = (await (await fetch(`${stack.hydra.adminUrl}/admin/clients/${client_id}`)).json()) as { metadata?: unknown };
    expect(held.metadata ?? {}).toEqual({});
  });

  it('a person’s token still works everywhere: whoami says person, notes tools answer', async () => {
    const a = await connectAs(stack, alice);
    try {
      expect((await call(a.client, 'whoami')).value).toMatchObject({ sub: alice.sub, kind: 'person' });
      expect((await call(a.client, 'notes_add', { title: 't', body: 'b' })).isError).toBe(false);
      const listed = await call(a.client, 'notes_list');
      expect(listed.isError, listed.text).toBe(false);
    } finally {
      await a.close();
    }
  });

  it('npm run client -- remove ID: the machine’s token is refused within one removed-subjects refresh', async () => {
    const token = await machineToken();
    const removed = await clientCli('remove', machine.id);
    expect(removed, removed.err).toMatchObject({ code: 0 });
    const deadline = Date.now() + DEFAULT_REFRESH_MS + 3_000;
    let status = 0;
    while (Date.now() < deadline) {
      const res = await fetch(stack.mcpUrl, { method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${token}` }, body: JSON.stringify(initialize) });
      status = res.status;
      await res.body?.cancel();
      if (status === 401) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(401);
    expect((await tokenRequest(machine.id, machine.secret)).status).toBe(401);
  });
});
