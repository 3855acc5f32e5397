import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { McpServer } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { restoreInitialized, webTransportOf } from '../../src/mcp/sessionRestore.js';

/**
 * The rebuild of a session on a replica that did not see its `initialize`
 * (src/mcp/sessionRestore.ts), against the installed SDK. It reads one private
 * field of @modelcontextprotocol/node: these tests fail if an SDK update moves it.
 */
const STATE = {
  protocolVersion: '2025-06-18',
  clientCapabilities: { elicitation: { url: {} }, roots: { listChanged: true } },
  clientInfo: { name: 'recorded-client', version: '3.1.4' },
};

function serverWithTool(): McpServer {
  const server = new McpServer({ name: 'restore-test', version: '1' }, { capabilities: { tools: {} } });
  server.registerTool('echo', { inputSchema: z.object({ text: z.string() }) }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
  return server;
}

async function restored(id: string) {
  const server = serverWithTool();
  const transport = new NodeStreamableHTTPServerTransport({ sessionIdGenerator: () => id });
  await server.connect(transport);
  await restoreInitialized(transport, STATE);
  return { server, transport };
}

describe('restoring an initialized 2025 session on a fresh transport and server', () => {
  it('the SDK still keeps the Web-standard transport where webTransportOf looks', () => {
    const transport = new NodeStreamableHTTPServerTransport({ sessionIdGenerator: () => 'x' });
    expect(() => webTransportOf(transport)).not.toThrow();
    expect(() => webTransportOf({} as NodeStreamableHTTPServerTransport)).toThrow(/@modelcontextprotocol\/node changed/);
  });

  it('takes the recorded id, revision, client capabilities and client info, and then serves the session without a new initialize', async () => {
    const { server, transport } = await restored('session-1');
    expect(transport.sessionId).toBe('session-1');
    expect(server.server.getNegotiatedProtocolVersion()).toBe(STATE.protocolVersion);
    expect(server.server.getClientCapabilities()).toEqual(STATE.clientCapabilities);
    expect(server.server.getClientVersion()).toEqual(STATE.clientInfo);

    const http = createServer((req, res) => void transport.handleRequest(req, res));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
      const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': STATE.protocolVersion };
      const call = (sessionId: string) =>
        fetch(url, { method: 'POST', headers: { ...headers, 'mcp-session-id': sessionId }, body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } }) });
      const ok = await call('session-1');
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('"text":"hi"');
      expect((await call('other')).status, 'another id is still refused').toBe(404);
      // A second initialize on the restored session is refused, as on the original.
      const again = await fetch(url, { method: 'POST', headers: { ...headers, 'mcp-session-id': 'session-1' }, body: JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'initialize', params: { protocolVersion: STATE.protocolVersion, capabilities: {}, clientInfo: STATE.clientInfo } }) });
      expect(again.status).toBe(400);
    } finally {
      http.close();
      await server.close();
    }
  });

  it('a revision this SDK would not negotiate is refused, not silently changed', async () => {
    const server = serverWithTool();
    const transport = new NodeStreamableHTTPServerTransport({ sessionIdGenerator: () => 's' });
    await server.connect(transport);
    await expect(restoreInitialized(transport, { ...STATE, protocolVersion: '1999-01-01' })).rejects.toThrow(/expected 1999-01-01/);
    await server.close();
  });

  it('a rebuild costs a few milliseconds (micro-benchmark: a fresh server and transport, restored)', async () => {
    const runs = 300;
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      const { server } = await restored(`bench-${i}`);
      times.push(performance.now() - started);
      await server.close();
    }
    times.sort((a, b) => a - b);
    const at = (q: number) => times[Math.min(runs - 1, Math.floor(q * runs))]!;
    const mean = times.reduce((s, t) => s + t, 0) / runs;
    console.log(`session rebuild (server + transport + restore, no database): mean ${mean.toFixed(3)} ms, p50 ${at(0.5).toFixed(3)} ms, p99 ${at(0.99).toFixed(3)} ms over ${runs}`);
    expect(at(0.5)).toBeLessThan(20);
  });
});
