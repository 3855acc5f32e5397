import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAs } from './flow.js';
import { type Stack, startStack } from './stack.js';

async function initialize(stack: Stack, token: string) {
  return fetch(stack.mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
  });
}

describe('Hydra outage and recovery (real Ory Hydra on a SQLite file)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: 'opaque', database: 'sqlite', hydraStorage: 'file' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers 503 with Retry-After while Hydra is down, reports not ready, and recovers without a restart', async () => {
    const user = await stack.addUser('gina@example.com', 'gina password 1');
    const { oauth, close } = await connectAs(stack, user);
    await close();
    const token = oauth.tokens()!.access_token;
    expect((await initialize(stack, token)).status).toBe(200);
    // Ready before the outage. Hydra makes its signing keys on the first JWKS read, which
    // can outlast the readiness check's 2 s timeout on a loaded machine: wait for it.
    let ready = await fetch(`${stack.baseUrl}/readyz`);
    for (const started = Date.now(); ready.status !== 200 && Date.now() - started < 30_000; ) {
      await new Promise((r) => setTimeout(r, 250));
      ready = await fetch(`${stack.baseUrl}/readyz`);
    }
    expect(ready.status, JSON.stringify(await ready.json())).toBe(200);

    await stack.hydra.stop();
    const down = await initialize(stack, token);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('5');
    const notReady = await fetch(`${stack.baseUrl}/readyz`);
    expect(notReady.status).toBe(503);
    expect(((await notReady.json()) as { checks: Record<string, string> }).checks.hydra_admin).not.toBe('ok');

    await stack.restartHydra();
    expect((await initialize(stack, token)).status).toBe(200);
    expect((await fetch(`${stack.baseUrl}/readyz`)).status).toBe(200);
  });
});
