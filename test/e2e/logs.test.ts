import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.js';
import { call, connectAs } from './flow.js';
import { type Stack, startStack } from './stack.js';

describe('logs and metrics (real Ory Hydra, every log line captured at debug level)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: 'opaque', database: 'sqlite', captureLogs: true });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('never contain tokens, passwords, codes or challenges; one JSON line per request with its id and sub', async () => {
    const password = 'very-secret-password-42';
    const user = await stack.addUser('ivy@example.com', password);
    const browser = new Browser();
    const { client, oauth, close } = await connectAs(stack, user, { browser });
    await call(client, 'notes_add', { title: 'logged?', body: 'no' });
    await close();
    // A wrong password and a refresh also pass through the logs.
    const wrong = await (await new Browser().open(oauth.authorizationUrl!.href)).submit('Sign in', {
      fill: { Email: user.email, Password: 'wrong-password-99' },
    });
    expect(wrong.status).toBe(401);
    const tokens = oauth.tokens()!;
    const refreshed = (await (
      await fetch(`${stack.baseUrl}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: oauth.clientInformation()!.client_id }),
      })
    ).json()) as { access_token: string; refresh_token: string };

    const secrets = [
      password,
      'wrong-password-99',
      tokens.access_token,
      tokens.refresh_token!,
      refreshed.access_token,
      refreshed.refresh_token,
      ...browser.history.flatMap((line) => {
        const u = new URL(line.split(' ')[1]!);
        return ['login_challenge', 'consent_challenge', 'code', 'login_verifier', 'consent_verifier']
          .map((k) => u.searchParams.get(k))
          .filter((v): v is string => !!v);
      }),
    ];
    expect(secrets.length).toBeGreaterThan(8);
    const all = stack.logs.join('\n');
    for (const secret of secrets) expect(all.includes(secret), `a secret of length ${secret.length} reached the logs`).toBe(false);

    const lines = stack.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const mcpCalls = lines.filter((l) => l.msg === 'request' && l.path === '/mcp' && l.status === 200);
    expect(mcpCalls.length).toBeGreaterThan(0);
    expect(mcpCalls[0]).toMatchObject({ sub: user.sub, client_id: oauth.clientInformation()!.client_id });
    expect(mcpCalls[0]!.request_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('Prometheus metrics on their own port count requests, token checks, cache fill, Hydra calls, sessions and tool calls', async () => {
    expect(stack.server.metricsUrl).toBeDefined();
    const text = await (await fetch(stack.server.metricsUrl!)).text();
    expect(text).toMatch(/http_requests_total\{route="\/mcp",method="POST",status="200"\} \d+/);
    expect(text).toMatch(/token_verifications_total\{kind="introspection",outcome="ok",cache="miss"\} \d+/);
    expect(text).toMatch(/hydra_request_duration_seconds_count\{call="POST \/admin\/oauth2\/introspect",ok="true"\} \d+/);
    expect(text).toMatch(/mcp_tool_calls_total\{tool="notes_add",outcome="ok"\} 1/);
    expect(text).toContain('mcp_sessions_active{transport="streamable-http"}');
    // This stack caches nothing (INTROSPECTION_CACHE_SECONDS=0): the gauge is there and says so.
    expect(text).toMatch(/token_cache_entries\{cache="introspection"\} 0\n/);
    expect(text).toMatch(/token_cache_entries\{cache="jwt"\} 0\n/);
    expect((await fetch(`${stack.baseUrl}/metrics`)).status, 'the public port does not serve metrics').toBe(404);
  });
});
