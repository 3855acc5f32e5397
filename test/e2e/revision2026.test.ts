/**
 * MCP 2026-07-28 end to end against the real Ory Hydra: an SDK v2 client
 * (`@modelcontextprotocol/client`) signs in with its own OAuth provider and
 * calls tools without `initialize` or sessions; the same client in `auto`
 * mode lands on the 2026 era too. The 2025 era is covered by the SDK v1
 * client in oauthFlow.test.ts and the others.
 */
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack, type TestUser } from './stack.js';
import { connectV2, REVISION } from './v2Client.js';

async function call(client: Client, name: string, args: Record<string, unknown> = {}) {
  const result = await client.callTool({ name, arguments: args });
  const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
  return { isError: result.isError === true, text, value: result.isError ? undefined : (JSON.parse(text) as any) };
}

describe('MCP 2026-07-28 with the SDK v2 client against the real Ory Hydra', () => {
  let stack: Stack;
  let carol: TestUser;
  let dave: TestUser;

  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: 'opaque', database: 'sqlite' });
    carol = await stack.addUser('carol@example.com', 'violet kettle 2026');
    dave = await stack.addUser('dave@example.com', 'amber ladder 2026');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('protected resource metadata no longer lists offline_access (SEP-2207); the AS metadata still does', async () => {
    const prm = (await (await fetch(`${stack.baseUrl}/.well-known/oauth-protected-resource/mcp`)).json()) as { scopes_supported: string[] };
    expect(prm.scopes_supported).toEqual(['openid', 'notes:read', 'notes:write']);
    const root = (await (await fetch(`${stack.baseUrl}/.well-known/oauth-protected-resource`)).json()) as { scopes_supported: string[] };
    expect(root.scopes_supported).not.toContain('offline_access');
    const as = (await (await fetch(`${stack.baseUrl}/.well-known/oauth-authorization-server`)).json()) as { scopes_supported: string[] };
    expect(as.scopes_supported).toContain('offline_access');
  });

  it('pinned to 2026-07-28: signs in, discovers, lists tools, calls whoami and notes as the signed-in user, with no session', async () => {
    const { client, oauth } = await connectV2(stack, carol, { pin: REVISION });
    try {
      expect(client.getProtocolEra()).toBe('modern');
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['long_task', 'notes_add', 'notes_delete', 'notes_get', 'notes_list', 'notes_stats', 'whoami']);
      const me = await call(client, 'whoami');
      expect(me.isError).toBe(false);
      expect(me.value.sub).toBe(carol.sub);
      const added = await call(client, 'notes_add', { title: 'from 2026', body: 'no initialize' });
      expect(added.isError, added.text).toBe(false);
      const list = await call(client, 'notes_list');
      expect(list.value.notes.map((n: { title: string }) => n.title)).toEqual(['from 2026']);
      // The v2 client asks for offline_access itself (AS metadata lists it), and refresh works.
      expect(oauth.tokens()?.refresh_token).toBeTruthy();
    } finally {
      await client.close();
    }
  });

  it('on the wire: a 2026 request needs no session, and server/discover names the revision', async () => {
    const { client, oauth } = await connectV2(stack, dave, { pin: REVISION });
    await client.close();
    const token = oauth.tokens()!.access_token;
    const post = (method: string, params: Record<string, unknown>, name?: string) =>
      fetch(stack.mcpUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${token}`,
          'mcp-protocol-version': REVISION,
          'mcp-method': method,
          ...(name ? { 'mcp-name': name } : {}),
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method,
          params: { ...params, _meta: { 'io.modelcontextprotocol/protocolVersion': REVISION, 'io.modelcontextprotocol/clientCapabilities': {} } },
        }),
      });
    const discover = await post('server/discover', {});
    expect(discover.status).toBe(200);
    expect(discover.headers.get('mcp-session-id')).toBeNull();
    expect(await discover.text()).toContain(REVISION);
    const whoami = await post('tools/call', { name: 'whoami', arguments: {} }, 'whoami');
    expect(whoami.status).toBe(200);
    expect(await whoami.text()).toContain(dave.sub);
  });

  it('a call beyond the granted scopes gets 403 insufficient_scope with a step-up challenge, without offline_access', async () => {
    const { client, oauth } = await connectV2(stack, dave, { pin: REVISION }, { uncheck: ['notes:write'] });
    try {
      const me = await call(client, 'whoami');
      expect(me.value.scopes).not.toContain('notes:write');
      const token = oauth.tokens()!.access_token;
      const res = await fetch(stack.mcpUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${token}`,
          'mcp-protocol-version': REVISION,
          'mcp-method': 'tools/call',
          'mcp-name': 'notes_add',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 9,
          method: 'tools/call',
          params: { name: 'notes_add', arguments: { title: 'x', body: 'y' }, _meta: { 'io.modelcontextprotocol/protocolVersion': REVISION } },
        }),
      });
      expect(res.status).toBe(403);
      const challenge = res.headers.get('www-authenticate') ?? '';
      expect(challenge).toContain('error="insufficient_scope"');
      expect(challenge).toMatch(/scope="[^"]*\bnotes:write\b[^"]*"/);
      expect(challenge).not.toContain('offline_access');
      // The v2 client sees the same 403 and goes back to /authorize for the wider scope.
      await expect(client.callTool({ name: 'notes_add', arguments: { title: 'x', body: 'y' } })).rejects.toThrow();
      expect(oauth.authorizationUrl!.searchParams.get('scope')).toContain('notes:write');
    } finally {
      await client.close();
    }
  });

  it('progress of a long task reaches a 2026 client on the response stream of its call', async () => {
    const { client } = await connectV2(stack, carol, { pin: REVISION });
    try {
      const seen: number[] = [];
      const result = await client.callTool({ name: 'long_task', arguments: { seconds: 3 } }, { onprogress: (p) => seen.push(p.progress) });
      expect(result.isError).toBeFalsy();
      expect(seen.slice(0, 2)).toEqual([1, 2]);
    } finally {
      await client.close();
    }
  });

  it('cancelling a call closes its response stream (2026-07-28) and the tool stops', async () => {
    const { client } = await connectV2(stack, dave, { pin: REVISION });
    try {
      const ac = new AbortController();
      const running = client.callTool({ name: 'long_task', arguments: { seconds: 30 } }, { signal: ac.signal, onprogress: () => ac.abort('enough') });
      await expect(running).rejects.toThrow();
      await expect
        .poll(async () => ((await stack.lastRunOfLongTask(dave.sub)) as { status?: string } | undefined)?.status, { timeout: 5000 })
        .toBe('cancelled');
      expect(await stack.lastRunOfLongTask(dave.sub)).toEqual({ status: 'cancelled', completed: 1, of: 30 });
    } finally {
      await client.close();
    }
  });

  it('in auto mode the v2 client finds the 2026 era through server/discover and calls tools', async () => {
    const { client } = await connectV2(stack, carol, 'auto');
    try {
      expect(client.getProtocolEra()).toBe('modern');
      const me = await call(client, 'whoami');
      expect(me.value.sub).toBe(carol.sub);
    } finally {
      await client.close();
    }
  });
});
