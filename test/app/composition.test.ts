import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toAuthInfo } from '../../src/auth/principal.js';
import type { AccessTokenVerifier } from '../../src/auth/tokenVerifier.js';
import { startServer } from '../../src/main.js';
import { freeLoopbackPort } from '../../scripts/hydra.js';

/**
 * The token verifier is chosen by the composition root's caller, never by
 * the environment: the benchmark's baseline swaps it through startServer,
 * and no setting can. (Hydra is not needed: nothing here reaches it.)
 */
describe('composition root: the verifier parameter', () => {
  let dir: string;
  // A real port: the Host allow-list is derived from it.
  const env = async () => ({
    HOST: '127.0.0.1',
    PORT: String(await freeLoopbackPort()),
    HYDRA_PUBLIC_URL: 'http://127.0.0.1:9',
    HYDRA_ADMIN_URL: 'http://127.0.0.1:9',
    DATABASE_PATH: join(dir, `db-${Math.random()}.sqlite`),
    SESSION_SECRET: 's'.repeat(40),
    LOG_LEVEL: 'silent',
    METRICS_PORT: 'off',
    MCP_STATELESS: 'true',
  });
  const whoami = (url: string, token: string) =>
    fetch(`${url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-composition-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a verifier passed to startServer decides who the caller is', async () => {
    const fixed: AccessTokenVerifier = {
      verifyAccessToken: async (token) => toAuthInfo({ sub: 'sub-fixed', clientId: 'c-fixed', scopes: [], expiresAt: Date.now() / 1000 + 60 }, token),
      isActiveNow: async () => true,
    };
    const server = await startServer(await env(), { verifier: () => fixed });
    try {
      const res = await whoami(server.url, 'anything');
      expect(res.status).toBe(200);
      const body = (await res.json()) as { result: { content: { text: string }[] } };
      expect(JSON.parse(body.result.content[0]!.text)).toMatchObject({ sub: 'sub-fixed', client_id: 'c-fixed' });
    } finally {
      await server.stop();
    }
  });

  it('without it, the Hydra verifier checks every token, whatever the environment says', async () => {
    const server = await startServer({ ...(await env()), BENCH_VERIFIER: 'fixed', VERIFIER: 'none', AUTH: 'off' });
    try {
      // Not a JWT, so it is introspected at an admin URL where nothing listens: 503, never a tool result.
      const res = await whoami(server.url, 'anything');
      expect(res.status).toBe(503);
    } finally {
      await server.stop();
    }
  });
});
