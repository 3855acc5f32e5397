import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toAuthInfo } from '../../src/auth/principal.js';
import type { AccessTokenVerifier } from '../../src/auth/tokenVerifier.js';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { startServer } from '../../src/main.js';
import { freeLoopbackPort } from '../../scripts/hydra.js';

/**
 * Both protocol eras on one /mcp, and the LEGACY_SSE switch, through the real
 * app (routing, middleware, SDK handlers). Only the token check is fixed:
 * the e2e tests (test/e2e/revision2026.test.ts) cover it with the real Hydra.
 */
describe('MCP eras on /mcp and the deprecated SSE transport', () => {
  let dir: string;
  const fixed: AccessTokenVerifier = {
    verifyAccessToken: async (token) =>
      toAuthInfo({ sub: 'sub-eras', clientId: 'c-eras', scopes: ['notes:read'], expiresAt: Date.now() / 1000 + 60 }, token),
    isActiveNow: async () => true,
  };
  const env = async (extra: Record<string, string> = {}) => ({
    HOST: '127.0.0.1',
    PORT: String(await freeLoopbackPort()),
    HYDRA_PUBLIC_URL: 'http://127.0.0.1:9',
    HYDRA_ADMIN_URL: 'http://127.0.0.1:9',
    DATABASE_PATH: join(dir, `db-${Math.random()}.sqlite`),
    SESSION_SECRET: 's'.repeat(40),
    LOG_LEVEL: 'silent',
    METRICS_PORT: 'off',
    ...extra,
  });
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: 'Bearer t' };
  const modern = (method: string, params: Record<string, unknown>, hdrs: Record<string, string>) =>
    JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method,
      params: { ...params, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } },
      ...hdrs,
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-eras-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a 2026-07-28 request is answered without a session; a 2025 initialize opens one', async () => {
    const server = await startServer(await env(), { verifier: () => fixed });
    try {
      const call = await fetch(`${server.url}/mcp`, {
        method: 'POST',
        headers: { ...headers, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'whoami' },
        body: modern('tools/call', { name: 'whoami', arguments: {} }, {}),
      });
      expect(call.status).toBe(200);
      expect(call.headers.get('mcp-session-id')).toBeNull();
      expect(await call.text()).toContain('sub-eras');

      const init = await fetch(`${server.url}/mcp`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
        }),
      });
      expect(init.status).toBe(200);
      expect(init.headers.get('mcp-session-id')).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await server.stop();
    }
  });

  it('a 2026-07-28 request whose Mcp-Method header disagrees with its body is refused, and no tool runs', async () => {
    const server = await startServer(await env(), { verifier: () => fixed });
    try {
      const res = await fetch(`${server.url}/mcp`, {
        method: 'POST',
        headers: { ...headers, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' },
        body: modern('tools/call', { name: 'whoami', arguments: {} }, {}),
      });
      expect(res.status).toBe(400);
      expect(await res.text()).not.toContain('sub-eras');
    } finally {
      await server.stop();
    }
  });

  it('LEGACY_SSE=off: /sse and /messages are not served; on (the default) /sse opens a stream', async () => {
    const off = await startServer(await env({ LEGACY_SSE: 'off' }), { verifier: () => fixed });
    try {
      expect((await fetch(`${off.url}/sse`, { headers: { authorization: 'Bearer t' } })).status).toBe(404);
      expect((await fetch(`${off.url}/messages?sessionId=x`, { method: 'POST', headers, body: '{}' })).status).toBe(404);
    } finally {
      await off.stop();
    }
    const on = await startServer(await env(), { verifier: () => fixed });
    const ac = new AbortController();
    try {
      const res = await fetch(`${on.url}/sse`, { headers: { authorization: 'Bearer t', accept: 'text/event-stream' }, signal: ac.signal });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/event-stream');
    } finally {
      ac.abort();
      await on.stop();
    }
  });

  it('LEGACY_SSE takes on or off only', () => {
    expect(loadConfig({}).legacySse).toBe(true);
    expect(loadConfig({ LEGACY_SSE: 'off' }).legacySse).toBe(false);
    expect(() => loadConfig({ LEGACY_SSE: 'no' })).toThrow(ConfigError);
    expect(() => loadConfig({ LEGACY_SSE: 'no' })).toThrow('LEGACY_SSE');
  });
});
