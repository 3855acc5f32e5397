import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { call, connectAs } from './flow.js';
import { type Stack, startStack, type TestUser } from './stack.js';

/** POST an MCP initialize with `token`; the status says whether the token opens the door. */
async function initializeWith(stack: Stack, token: string | undefined) {
  return fetch(stack.mcpUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    }),
  });
}

async function tokenRequest(stack: Stack, path: '/token' | '/revoke', form: Record<string, string>) {
  const res = await fetch(`${stack.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

// Opaque tokens with our data on SQLite; JWT tokens with our data on PostgreSQL.
describe.each([
  ['opaque', 'sqlite'],
  ['jwt', 'postgres'],
] as const)('OAuth 2.1 flow against the real Ory Hydra (%s access tokens, data on %s)', (strategy, database) => {
  let stack: Stack;
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    stack = await startStack({
      accessTokenStrategy: strategy,
      database: database === 'sqlite' ? 'sqlite' : { postgresAdminUrl: inject('postgresUrl') },
    });
    console.log(`Ory Hydra ${stack.hydra.version} (${strategy} access tokens, our data on ${database}) at ${stack.hydra.publicUrl}`);
    alice = await stack.addUser('alice@example.com', 'correct horse battery');
    bob = await stack.addUser('Bob@Example.com', 'staple tuna orbit 42');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers a call without a token with 401 and a resource_metadata challenge (RFC 9728 §5.1)', async () => {
    const res = await initializeWith(stack, undefined);
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain(`resource_metadata="${stack.baseUrl}/.well-known/oauth-protected-resource/mcp"`);
  });

  it('serves protected resource and authorization server metadata (RFC 9728, RFC 8414)', async () => {
    const prm = (await (await fetch(`${stack.baseUrl}/.well-known/oauth-protected-resource/mcp`)).json()) as Record<string, unknown>;
    expect(prm.resource).toBe(`${stack.baseUrl}/mcp`);
    expect(prm.authorization_servers).toEqual([`${stack.baseUrl}/`]);
    const as = (await (await fetch(`${stack.baseUrl}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(as.registration_endpoint).toBe(`${stack.baseUrl}/register`);
    expect(as.code_challenge_methods_supported).toEqual(['S256']);
    expect(as.scopes_supported).toEqual(['openid', 'offline_access', 'notes:read', 'notes:write']);
  });

  it('Streamable HTTP: registers, signs in, consents, lists tools and calls whoami as the signed-in user', async () => {
    const { client, oauth, close } = await connectAs(stack, alice);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['long_task', 'notes_add', 'notes_delete', 'notes_get', 'notes_list', 'notes_stats', 'whoami']);
      const me = await call(client, 'whoami');
      expect(me.isError).toBe(false);
      expect(me.value.sub).toBe(alice.sub);
      expect(me.value.client_id).toBe(oauth.clientInformation()!.client_id);
      expect(me.value.scopes).toEqual(expect.arrayContaining(['notes:read', 'notes:write']));
      // The registration response was normalised: no nulls or empty strings reached the client.
      expect(Object.values(oauth.clientInformation()!).filter((v) => v === null || v === '')).toEqual([]);
    } finally {
      await close();
    }
  });

  it('legacy HTTP+SSE: the same flow and tool calls work over /sse and /messages', async () => {
    const { client, close } = await connectAs(stack, bob, { transport: 'sse' });
    try {
      const me = await call(client, 'whoami');
      expect(me.value.sub).toBe(bob.sub);
      const added = await call(client, 'notes_add', { title: 'over sse', body: 'legacy transport' });
      expect(added.isError).toBe(false);
      expect((await call(client, 'notes_get', { id: added.value.id })).value.title).toBe('over sse');
    } finally {
      await close();
    }
  });

  it.each(['streamable-http', 'sse'] as const)('reports progress of a long task over %s', async (transport) => {
    const { client, close } = await connectAs(stack, alice, { transport });
    try {
      const seen: number[] = [];
      const result = await client.callTool({ name: 'long_task', arguments: { seconds: 3 } }, undefined, {
        onprogress: (p) => seen.push(p.progress),
      });
      expect(result.isError).toBeFalsy();
      // The SDK client handles notifications a microtask late, so the last one can
      // lose the race with the result when both arrive in one read; the earlier ones may not.
      expect(seen.slice(0, 2)).toEqual([1, 2]);
    } finally {
      await close();
    }
  });

  it('cancels a long task over Streamable HTTP: the server stops working (MCP cancellation)', async () => {
    const { client, close } = await connectAs(stack, bob);
    try {
      const ac = new AbortController();
      const call = client.callTool({ name: 'long_task', arguments: { seconds: 30 } }, undefined, {
        signal: ac.signal,
        onprogress: () => ac.abort('enough'),
      });
      await expect(call).rejects.toThrow();
      // The tool records its last run; the server's own database shows it stopped after one step.
      await expect
        .poll(async () => ((await stack.lastRunOfLongTask(bob.sub)) as { status?: string } | undefined)?.status, { timeout: 5000 })
        .toBe('cancelled');
      expect(await stack.lastRunOfLongTask(bob.sub)).toEqual({ status: 'cancelled', completed: 1, of: 30 });
    } finally {
      await close();
    }
  });

  it("keeps two users' notes apart: lists, gets and deletes never reach another user's rows", async () => {
    const a = await connectAs(stack, alice);
    const b = await connectAs(stack, bob);
    try {
      const note = await call(a.client, 'notes_add', { title: 'alice secret', body: 'for alice only' });
      expect(note.isError).toBe(false);
      const bobsList = await call(b.client, 'notes_list');
      expect(bobsList.value.notes.map((n: { title: string }) => n.title)).not.toContain('alice secret');
      const stolen = await call(b.client, 'notes_get', { id: note.value.id });
      expect(stolen).toMatchObject({ isError: true, text: `No note with id ${note.value.id}` });
      const deleted = await call(b.client, 'notes_delete', { id: note.value.id });
      expect(deleted.isError).toBe(true);
      expect((await call(a.client, 'notes_get', { id: note.value.id })).value.body).toBe('for alice only');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('answers a call beyond the granted scopes with 403 insufficient_scope and a step-up challenge (MCP 2025-11-25)', async () => {
    const { client, oauth, close } = await connectAs(stack, bob, { uncheck: ['notes:write'] });
    try {
      const me = await call(client, 'whoami');
      expect(me.value.scopes).not.toContain('notes:write');
      const before = await call(client, 'notes_list');
      expect(before.isError).toBe(false);

      // On the wire: 403 naming every scope the client needs, so one step-up suffices.
      const token = oauth.tokens()!.access_token;
      const res = await fetch(stack.mcpUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'notes_add', arguments: { title: 'x', body: 'y' } } }),
      });
      expect(res.status).toBe(403);
      const challenge = res.headers.get('www-authenticate') ?? '';
      expect(challenge).toContain('error="insufficient_scope"');
      expect(challenge).toMatch(/scope="[^"]*\bnotes:read\b[^"]*"/);
      expect(challenge).toMatch(/scope="[^"]*\bnotes:write\b[^"]*"/);
      expect(challenge).toContain(`resource_metadata="${stack.baseUrl}/.well-known/oauth-protected-resource/mcp"`);

      // The SDK client reads the challenge and tries to up-scope; holding a refresh
      // token, SDK 1.32 refreshes (which cannot widen scopes) instead of asking the
      // person again, so it gives up with the 403.
      await expect(client.callTool({ name: 'notes_add', arguments: { title: 'nope', body: 'not stored' } })).rejects.toThrow(
        'Server returned 403 after trying upscoping',
      );

      const after = await call(client, 'notes_list');
      expect(after.value.notes).toEqual(before.value.notes);
    } finally {
      await close();
    }
  });

  it('grants this server as the token audience (RFC 8707) and refreshes with a rotated refresh token', async () => {
    const { oauth, close } = await connectAs(stack, alice);
    await close();
    const first = oauth.tokens()!;
    expect(first.refresh_token, 'offline_access was granted, so Hydra issued a refresh token').toBeTruthy();
    if (strategy === 'jwt') {
      const claims = JSON.parse(Buffer.from(first.access_token.split('.')[1]!, 'base64url').toString()) as { aud: string[] };
      expect(claims.aud).toContain(`${stack.baseUrl}/mcp`);
    }
    const refreshed = await tokenRequest(stack, '/token', {
      grant_type: 'refresh_token',
      refresh_token: first.refresh_token!,
      client_id: oauth.clientInformation()!.client_id,
    });
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    expect(refreshed.body.refresh_token).not.toBe(first.refresh_token);
    expect((await initializeWith(stack, refreshed.body.access_token as string)).status).toBe(200);
  });

  // JWT access tokens are verified locally until they expire, so this case is opaque-only by design.
  if (strategy === 'opaque') it('a revoked opaque access token stops working at once (RFC 7009)', async () => {
    const { oauth, close } = await connectAs(stack, alice);
    await close();
    const { access_token } = oauth.tokens()!;
    expect((await initializeWith(stack, access_token)).status).toBe(200);
    const revoked = await tokenRequest(stack, '/revoke', { token: access_token, client_id: oauth.clientInformation()!.client_id });
    expect(revoked.status).toBe(200);
    const res = await initializeWith(stack, access_token);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  // A revoked JWT still verifies locally until it expires; tools marked onlineCheck ask Hydra.
  if (strategy === 'jwt') it('a revoked JWT keeps read access until expiry but cannot delete (onlineCheck)', async () => {
    const { client, oauth, close } = await connectAs(stack, alice);
    try {
      const note = await call(client, 'notes_add', { title: 'keep me', body: 'safe' });
      const revoked = await tokenRequest(stack, '/revoke', { token: oauth.tokens()!.access_token, client_id: oauth.clientInformation()!.client_id });
      expect(revoked.status).toBe(200);
      expect((await call(client, 'whoami')).isError).toBe(false);
      const del = await call(client, 'notes_delete', { id: note.value.id });
      expect(del).toMatchObject({ isError: true });
      expect(del.text).toContain('invalid_token');
      expect((await call(client, 'notes_get', { id: note.value.id })).value.title).toBe('keep me');
    } finally {
      await close();
    }
  });

  it('two windows sharing one refresh token both refresh within the rotation grace period', async () => {
    const { oauth, close } = await connectAs(stack, bob);
    await close();
    const form = { grant_type: 'refresh_token', refresh_token: oauth.tokens()!.refresh_token!, client_id: oauth.clientInformation()!.client_id };
    const first = await tokenRequest(stack, '/token', form);
    const second = await tokenRequest(stack, '/token', form);
    expect([first.status, second.status]).toEqual([200, 200]);
    // Neither refresh revoked the chain: both new access tokens work.
    expect((await initializeWith(stack, first.body.access_token as string)).status).toBe(200);
    expect((await initializeWith(stack, second.body.access_token as string)).status).toBe(200);
  });

  it('revoking the refresh token ends the grant', async () => {
    const { oauth, close } = await connectAs(stack, bob);
    await close();
    const { access_token, refresh_token } = oauth.tokens()!;
    const clientId = oauth.clientInformation()!.client_id;
    expect((await tokenRequest(stack, '/revoke', { token: refresh_token!, client_id: clientId })).status).toBe(200);
    const again = await tokenRequest(stack, '/token', { grant_type: 'refresh_token', refresh_token: refresh_token!, client_id: clientId });
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_grant');
    if (strategy === 'opaque') {
      // Hydra revokes the access tokens of the grant with its refresh token.
      expect((await initializeWith(stack, access_token)).status).toBe(401);
    }
  });
  // Runs last: it stops this suite's Hydra.
  it('when Hydra is unreachable: opaque tokens get 503 with Retry-After, JWTs keep working on cached keys', async () => {
    const { oauth, close } = await connectAs(stack, alice);
    await close();
    const token = oauth.tokens()!.access_token;
    expect((await initializeWith(stack, token)).status).toBe(200);
    await stack.hydra.stop();
    const res = await initializeWith(stack, token);
    if (strategy === 'opaque') {
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(((await res.json()) as { error: string }).error).toBe('temporarily_unavailable');
    } else {
      expect(res.status).toBe(200);
    }
  });
});
