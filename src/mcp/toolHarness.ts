/**
 * Test a tool the way clients reach it: a real McpServer built from the tool
 * (input validation, scope checks, error handling, output schema), a real SDK
 * Client over an in-memory transport, and an in-memory SQLite store. Only the
 * bearer token is skipped: the caller says who is calling.
 */
// The official v2 client, a dev dependency: only tests load this module.
import { Client } from '@modelcontextprotocol/client';
import { type CallToolResult, InMemoryTransport } from '@modelcontextprotocol/server';
import { toAuthInfo } from '../auth/principal.js';
import { createLogger } from '../log/logger.js';
import { type Db, openDatabase } from '../store/database.js';
import type { ToolDefinition } from '../tools/contract.js';
import { CursorKey } from '../tools/cursor.js';
import { createMcpServer } from './mcpServer.js';

export interface Caller {
  sub: string;
  scopes?: string[];
  clientId?: string;
}

export interface ToolResult extends CallToolResult {
  /** The result's text joined; for successful calls this is the JSON the handler returned. */
  text: string;
}

export interface ToolHarness {
  /** Call `name` as `caller`; `onprogress` receives progress notifications. */
  call(name: string, args: Record<string, unknown>, caller: Caller, opts?: { onprogress?: (p: { progress: number; total?: number }) => void; signal?: AbortSignal }): Promise<ToolResult>;
  db: Db;
  close(): Promise<void>;
}

export async function toolHarness(tools: ToolDefinition[]): Promise<ToolHarness> {
  const db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
  const clients: { close(): Promise<void> }[] = [];
  // One key per harness, so a cursor from one call opens in the next.
  const cursorKey = CursorKey.random();
  return {
    db,
    async call(name, args, caller, opts = {}) {
      const server = createMcpServer({ tools, db, cursorKey, log: createLogger('silent'), name: 'tool-test', version: '0' });
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
      const authInfo = toAuthInfo(
        { sub: caller.sub, clientId: caller.clientId ?? 'test-client', scopes: caller.scopes ?? [], expiresAt: Math.floor(Date.now() / 1000) + 3600 },
        'test',
      );
      // What the bearer middleware does on the HTTP transports: attach the verified token.
      const send = clientSide.send.bind(clientSide);
      clientSide.send = (message, options) => send(message, { ...options, authInfo });
      await server.connect(serverSide);
      const client = new Client({ name: 'tool-test', version: '0' });
      await client.connect(clientSide);
      clients.push(client);
      const result = (await client.callTool({ name, arguments: args }, {
        ...(opts.onprogress ? { onprogress: opts.onprogress } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      })) as CallToolResult;
      await client.close();
      return { ...result, text: result.content.map((c) => (c.type === 'text' ? c.text : '')).join('') };
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await db.destroy();
    },
  };
}
