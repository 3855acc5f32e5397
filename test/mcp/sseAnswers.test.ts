import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { McpServer } from '@modelcontextprotocol/server';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InFlight } from '../../src/app/inFlight.js';
import { toAuthInfo } from '../../src/auth/principal.js';
import { createLogger } from '../../src/log/logger.js';
import { SessionRegistry } from '../../src/mcp/sessions.js';
import { type SseSession, sseRouter } from '../../src/mcp/sse.js';

/**
 * The legacy SSE transport's part of a graceful stop: POST /messages is
 * answered 202 before the call runs, so a posted request counts in flight
 * until its answer is on the stream. The official SDK client and server over
 * real HTTP; the bearer check is a local stub that sets one principal (it is
 * not what is tested), and the tool is not counted on its own here.
 */
describe('legacy SSE: requests in flight until answered', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function serve() {
    const inFlight = new InFlight();
    const sessions = new SessionRegistry<SseSession>();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const createServer = () => {
      const server = new McpServer({ name: 't', version: '1' });
      server.registerTool('wait', { description: 'waits for the test', inputSchema: z.object({}) }, async () => {
        started();
        await released;
        return { content: [{ type: 'text', text: 'done' }] };
      });
      return server;
    };
    const app = express();
    app.use(
      sseRouter({
        createServer,
        authenticate: (req, _res, next) => {
          (req as { auth?: unknown }).auth = toAuthInfo({ sub: 'sse-sub', clientId: 'c', scopes: [], expiresAt: Date.now() / 1000 + 600 }, 'token');
          next();
        },
        authorizeCalls: (_req, _res, next) => next(),
        sessions,
        log: createLogger('silent'),
        work: inFlight,
      }),
    );
    const http = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => http.once('listening', resolve));
    const url = new URL(`http://127.0.0.1:${(http.address() as AddressInfo).port}/sse`);
    const client = new Client({ name: 'sse-test', version: '1' });
    await client.connect(new SSEClientTransport(url));
    closers.push(async () => {
      await client.close();
      await sessions.closeAll();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    });
    return { inFlight, client, release, running };
  }

  it('issue 26 #11: a call posted over SSE counts in flight after its 202, until its answer is sent', async () => {
    const { inFlight, client, release, running } = await serve();
    expect(inFlight.size).toBe(0);
    const answer = client.callTool({ name: 'wait', arguments: {} });
    await running;
    // The POST was answered 202 (the SDK client awaits it before the call can start); the call still counts.
    expect(inFlight.size).toBe(1);
    release();
    expect(await answer).toMatchObject({ content: [{ type: 'text', text: 'done' }] });
    expect(inFlight.size).toBe(0);
  });

  it('a call the client cancels, or a message the transport refuses, is not waited for', async () => {
    const { inFlight, client, release, running } = await serve();
    const cancel = new AbortController();
    const answer = client.callTool({ name: 'wait', arguments: {} }, undefined, { signal: cancel.signal }).catch((e: unknown) => e);
    await running;
    expect(inFlight.size).toBe(1);
    cancel.abort();
    await answer;
    // notifications/cancelled: no answer will come.
    await expect.poll(() => inFlight.size).toBe(0);
    const session = (client.transport as unknown as { _endpoint: URL })._endpoint;
    const refused = await fetch(session, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 7 }) });
    expect(refused.status).toBe(400);
    expect(inFlight.size).toBe(0);
    release();
  });
});
