import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '../../scripts/hydra.js';
import { type RunningServer, startServer } from '../../src/main.js';
import { HSTS_VALUE } from '../../src/app/securityHeaders.js';

/**
 * Our real server behind a (simulated) TLS-terminating proxy on loopback: the
 * proxy is this test, sending what Caddy sends (X-Forwarded-For, -Proto, the
 * public Host). No Hydra is needed for what is checked here: the per-address
 * limit on /register answers before Hydra is asked.
 */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-proxy-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function serve(env: Record<string, string>): Promise<RunningServer> {
  const port = await freeLoopbackPort();
  const closed = await freeLoopbackPort();
  return startServer({
    HOST: '127.0.0.1',
    PORT: String(port),
    // Nothing listens there: nothing here needs Hydra.
    HYDRA_PUBLIC_URL: `http://127.0.0.1:${closed}`,
    HYDRA_ADMIN_URL: `http://127.0.0.1:${closed}`,
    DATABASE_PATH: join(dir, `${port}.sqlite`),
    METRICS_PORT: 'off',
    LOG_LEVEL: 'silent',
    ...env,
  });
}

/** One request as a proxy forwards it: with the public Host (which fetch cannot set) and X-Forwarded-* headers. */
function forwarded(server: RunningServer, method: string, path: string, headers: Record<string, string>, body?: string) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>((resolve, reject) => {
    const req = request(`${server.url}${path}`, { method, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** POST /register as forwarded by a proxy for `client`; the draft-6 RateLimit-Remaining of that client's address. */
async function registerFrom(server: RunningServer, client: string, host: string): Promise<number> {
  const res = await forwarded(server, 'POST', '/register', { 'content-type': 'application/json', 'x-forwarded-for': client, 'x-forwarded-proto': 'https', host }, '{}');
  expect(res.status, 'answered by the registration endpoint, not refused by the host guard').toBe(400);
  const remaining = res.headers['ratelimit-remaining'];
  expect(remaining, `RateLimit-Remaining on ${res.status}`).toBeDefined();
  return Number(remaining);
}

describe('TRUST_PROXY: per-address limits behind a TLS-terminating proxy', () => {
  it('TRUST_PROXY=loopback: each client behind the proxy has its own count (req.ip from X-Forwarded-For)', async () => {
    const server = await serve({ TRUST_PROXY: 'loopback', PUBLIC_BASE_URL: 'https://mcp.example.com', ALLOWED_HOSTS: '' });
    try {
      const a1 = await registerFrom(server, '203.0.113.7', 'mcp.example.com');
      const a2 = await registerFrom(server, '203.0.113.7', 'mcp.example.com');
      const b1 = await registerFrom(server, '198.51.100.9', 'mcp.example.com');
      expect(a2).toBe(a1 - 1);
      expect(b1).toBe(a1);
    } finally {
      await server.stop();
    }
  });

  it('TRUST_PROXY unset: X-Forwarded-For is ignored, every request counts against the proxy\'s own address', async () => {
    const server = await serve({ PUBLIC_BASE_URL: 'https://mcp.example.com' });
    try {
      const a1 = await registerFrom(server, '203.0.113.7', 'mcp.example.com');
      const b1 = await registerFrom(server, '198.51.100.9', 'mcp.example.com');
      // A forged header cannot buy a fresh allowance.
      expect(b1).toBe(a1 - 1);
    } finally {
      await server.stop();
    }
  });

  it('TRUST_PROXY=1 trusts one hop only: an address the client itself put in front is not believed', async () => {
    const server = await serve({ TRUST_PROXY: '1', PUBLIC_BASE_URL: 'https://mcp.example.com' });
    try {
      const a1 = await registerFrom(server, '203.0.113.7', 'mcp.example.com');
      // The client forged "10.9.9.9", the proxy appended the real 203.0.113.7: still one count.
      const a2 = await registerFrom(server, '10.9.9.9, 203.0.113.7', 'mcp.example.com');
      expect(a2).toBe(a1 - 1);
    } finally {
      await server.stop();
    }
  });
});

describe('Strict-Transport-Security', () => {
  it('is sent on every answer when PUBLIC_BASE_URL is https', async () => {
    const server = await serve({ TRUST_PROXY: 'loopback', PUBLIC_BASE_URL: 'https://mcp.example.com' });
    try {
      for (const path of ['/healthz', '/.well-known/oauth-protected-resource/mcp', '/login']) {
        const res = await forwarded(server, 'GET', path, { host: 'mcp.example.com', 'x-forwarded-proto': 'https' });
        // Reached the page (the host guard lets the public host through); /login without a challenge is a 400 page.
        expect(res.status, path).toBe(path === '/login' ? 400 : 200);
        expect(res.headers['strict-transport-security'], path).toBe(HSTS_VALUE);
      }
    } finally {
      await server.stop();
    }
  });

  it('is not sent when the public URL is plain http (loopback development)', async () => {
    const server = await serve({});
    try {
      const res = await fetch(`${server.url}/healthz`);
      expect(res.status).toBe(200);
      expect(res.headers.get('strict-transport-security')).toBeNull();
    } finally {
      await server.stop();
    }
  });
});
