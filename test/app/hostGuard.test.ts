import { request as httpRequest } from 'node:http';
import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowedHosts, hostGuard, originGuard, originPolicy } from '../../src/app/hostGuard.js';

/** Send a request with any Host header (fetch will not let us set it). */
function get(port: number, path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('hostGuard (DNS-rebinding protection)', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    const app = express();
    app.use(hostGuard(allowedHosts(new URL('http://127.0.0.1:3000'), ['mcp.internal:8080'])));
    app.get('/healthz', (_q, r) => void r.send('ok'));
    app.all('/mcp', (_q, r) => void r.send('mcp'));
    await new Promise<void>((r) => (server = app.listen(0, '127.0.0.1', () => r())));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it.each(['127.0.0.1:3000', 'localhost:3000', '[::1]:3000', 'LOCALHOST:3000', 'mcp.internal:8080'])('answers Host %s', async (host) => {
    expect(await get(port, '/mcp', host)).toBe(200);
  });
  it.each(['evil.example', 'evil.example:3000', '127.0.0.1:3001', ''])('refuses Host "%s" with 421', async (host) => {
    expect(await get(port, '/mcp', host)).toBe(421);
  });
  it('keeps /healthz open to probes by IP', async () => {
    expect(await get(port, '/healthz', '10.1.2.3:3000')).toBe(200);
  });
  it('adds no loopback aliases for a public host', () => {
    expect([...allowedHosts(new URL('https://mcp.example.com'), [])]).toEqual(['mcp.example.com']);
  });
});

describe('originGuard (MCP transport Origin check)', () => {
  const run = (policy: Parameters<typeof originGuard>[0], origin?: string) => {
    let status = 0;
    let passed = false;
    const res = { status: (s: number) => ((status = s), res), json: () => res } as never;
    originGuard(policy)({ headers: origin ? { origin } : {} } as never, res, () => void (passed = true));
    return passed ? 'pass' : status;
  };
  const local = originPolicy(new URL('http://127.0.0.1:3000'), []);
  const prod = originPolicy(new URL('https://mcp.example.com'), ['https://app.example.com']);

  it.each([
    ['no Origin (non-browser client)', 'pass', local, undefined],
    ['our own origin', 'pass', prod, 'https://mcp.example.com'],
    ['a configured origin', 'pass', prod, 'https://app.example.com'],
    ['a loopback origin when we run on loopback (MCP Inspector)', 'pass', local, 'http://127.0.0.1:6274'],
    ['a foreign origin', 403, local, 'http://evil.example'],
    ['a loopback origin when we do not run on loopback', 403, prod, 'http://localhost:6274'],
    ['a null origin', 403, local, 'null'],
  ])('%s → %s', (_case, expected, policy, origin) => {
    expect(run(policy, origin)).toBe(expected);
  });
});
