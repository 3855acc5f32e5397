import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '../../scripts/hydra.js';
import { toAuthInfo } from '../../src/auth/principal.js';
import type { AccessTokenVerifier } from '../../src/auth/tokenVerifier.js';
import { type RunningServer, startServer } from '../../src/main.js';

/**
 * The whole server as main.ts composes it, scraped on its metrics port: a
 * tool call, token requests and the readiness checks move their metrics,
 * and no sub, client id or token the requests carried appears anywhere in
 * the scrape. Hydra is an address where nothing listens (its checks fail).
 */
describe('the metrics port of a running server', () => {
  const SUB = 'sub-6d0e2b-person-not-a-label';
  const CLIENT_ID = 'client-a47f19-not-a-label';
  const TOKEN = 'ory_at_BEARER-2c8e55-not-a-label';
  const REFRESH = 'ory_rt_REFRESH-91b3d0-not-a-label';
  let dir: string;
  let server: RunningServer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-scrape-'));
    const fixed: AccessTokenVerifier = {
      verifyAccessToken: async (token) => toAuthInfo({ sub: SUB, clientId: CLIENT_ID, scopes: [], expiresAt: Date.now() / 1000 + 60 }, token),
      isActiveNow: async () => true,
    };
    const nowhere = `http://127.0.0.1:${await freeLoopbackPort()}`;
    server = await startServer(
      {
        HOST: '127.0.0.1',
        PORT: String(await freeLoopbackPort()),
        HYDRA_PUBLIC_URL: nowhere,
        HYDRA_ADMIN_URL: nowhere,
        DATABASE_PATH: join(dir, 'db.sqlite'),
        SESSION_SECRET: 's'.repeat(40),
        LOG_LEVEL: 'silent',
        METRICS_PORT: '0',
        MCP_STATELESS: 'true',
      },
      { verifier: () => fixed },
    );
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('tools/call, /token and readiness are in the scrape; no sub, client id or token is', async () => {
    const call = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
    });
    expect(call.status).toBe(200);
    const token = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: REFRESH, client_id: CLIENT_ID }).toString(),
    });
    // Hydra cannot be reached: 503 temporarily_unavailable.
    expect(token.status).toBe(503);

    const text = await (await fetch(server.metricsUrl!)).text();
    expect(text).toMatch(/^mcp_tool_call_duration_seconds_count\{tool="whoami",outcome="ok"\} 1$/m);
    expect(text).toMatch(/^oauth_token_requests_total\{grant_type="refresh_token",outcome="temporarily_unavailable"\} 1$/m);
    expect(text).toMatch(/^dependency_up\{dependency="database"\} 1$/m);
    expect(text).toMatch(/^dependency_up\{dependency="hydra_admin"\} 0$/m);
    expect(text).toMatch(/^ready 0$/m);
    // Plain http public URL: no certificate to watch.
    expect(text).not.toMatch(/^public_url_certificate_expiry_timestamp_seconds /m);
    for (const secret of [SUB, CLIENT_ID, TOKEN, REFRESH]) expect(text, `a value of length ${secret.length} is in the scrape`).not.toContain(secret);
  });
});
