import type { Server } from 'node:http';
import express from 'express';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Principal, toAuthInfo } from '../../src/auth/principal.js';
import { createLogger } from '../../src/log/logger.js';
import { createMcpServer } from '../../src/mcp/mcpServer.js';
import { requireToolScopes } from '../../src/mcp/stepUp.js';
import { openDatabase } from '../../src/store/database.js';
import { CursorKey } from '../../src/tools/cursor.js';
import type { ToolDefinition } from '../../src/tools/contract.js';
import notesList from '../../tools/notes_list.js';
import whoami from '../../tools/whoami.js';
import { checkTool } from '../../src/tools/registry.js';

const PRM = 'http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp';
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;
const robot: Principal = { sub: 'machine-1', clientId: 'machine-1', scopes: ['notes:read'], expiresAt: inAnHour(), kind: 'machine' };
const alice: Principal = { sub: 'alice', clientId: 'dcr-1', scopes: ['notes:read'], expiresAt: inAnHour(), kind: 'person' };

const call = (name: string, id: number | string = 1) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

/**
 * The HTTP-layer check (src/mcp/stepUp.ts) on a real Express app: the caller
 * is set by a stub in place of the bearer middleware (unit test).
 */
describe('tool callers at the HTTP layer: machines refused on people-only tools with 403', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    const app = express();
    app.use(express.json());
    app.use((req, _res, next) => {
      const who = req.get('x-test-caller') === 'alice' ? alice : robot;
      req.auth = toAuthInfo(who, 't');
      next();
    });
    app.post(
      '/mcp',
      requireToolScopes({
        toolScopes: new Map([['whoami', []], ['notes_list', ['notes:read']], ['notes_add', ['notes:write']], ['robot_report', ['notes:write']]]),
        toolCallers: new Map([['whoami', 'people-and-machines'], ['notes_list', undefined], ['notes_add', 'people'], ['robot_report', 'people-and-machines']]),
        resourceMetadataUrl: PRM,
      }),
      (_req, res) => res.json({ passed: true }),
    );
    await new Promise<void>((r) => (server = app.listen(0, '127.0.0.1', () => r())));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const post = (body: unknown, caller: 'robot' | 'alice' = 'robot') =>
    fetch(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-test-caller': caller }, body: JSON.stringify(body) });

  it.each([
    ['a tool with no callers line (default: people)', 'notes_list'],
    ["a tool that says callers: 'people'", 'notes_add'],
  ])('a machine calling %s → 403 access_denied naming the tool, with the request id, and no scope challenge', async (_name, tool) => {
    const res = await post(call(tool, 7));
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toBeNull();
    const body = (await res.json()) as { id: unknown; error: { message: string; data: { error: string; tool: string } } };
    expect(body.id).toBe(7);
    expect(body.error.message).toBe(
      `access_denied: tool ${tool} may be called by people only; this token belongs to a machine client (client credentials, no person present), and machines may not call it`,
    );
    expect(body.error.data).toEqual({ error: 'access_denied', tool });
  });

  it('a machine calling a people-and-machines tool passes', async () => {
    expect((await post(call('whoami'))).status).toBe(200);
  });

  it('a machine lacking a scope on a people-and-machines tool gets the usual step-up 403 insufficient_scope', async () => {
    const res = await post(call('robot_report'));
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
  });

  it('a machine lacking the scope of a people-only tool is told access_denied, not to step up (no scope would help)', async () => {
    const res = await post(call('notes_add'));
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { data: { error: string } } }).error.data.error).toBe('access_denied');
  });

  it('a batch with one people-only call among allowed ones → 403 for the batch, naming that tool', async () => {
    const res = await post([call('whoami', 1), call('notes_list', 2)]);
    expect(res.status).toBe(403);
    const body = (await res.json()) as { id: unknown; error: { data: { tool: string } } };
    expect(body).toMatchObject({ id: 2, error: { data: { tool: 'notes_list' } } });
  });

  it.each([
    ['an unknown tool (the SDK answers it)', call('no_such_tool')],
    ['tools/list', { jsonrpc: '2.0', id: 1, method: 'tools/list' }],
    ['initialize', { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }],
    ['a tools/call without a name', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: {} }],
  ])('a machine sending %s passes this check', async (_name, body) => {
    expect((await post(body)).status).toBe(200);
  });

  it('a person calling a people-only tool passes', async () => {
    expect((await post(call('notes_list'), 'alice')).status).toBe(200);
  });
});

/** The tool layer (runTool), for transports that cannot answer per message: a real McpServer over an in-memory transport. */
describe('tool callers in runTool (defence in depth)', () => {
  const tools = [whoami, notesList] as ToolDefinition[];
  const callAs = async (principal: Principal, name: string): Promise<CallToolResult> => {
    const db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    const server = createMcpServer({ tools, db, cursorKey: CursorKey.random(), log: createLogger('silent'), name: 't', version: '0' });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    const authInfo = toAuthInfo(principal, 'test');
    const send = clientSide.send.bind(clientSide);
    clientSide.send = (message, options) => send(message, { ...options, authInfo });
    await server.connect(serverSide);
    const client = new Client({ name: 't', version: '0' });
    await client.connect(clientSide);
    try {
      return (await client.callTool({ name, arguments: {} })) as CallToolResult;
    } finally {
      await client.close();
      await db.destroy();
    }
  };
  const text = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');

  it('a machine calling a people-only tool gets a tool error naming it', async () => {
    const r = await callAs(robot, 'notes_list');
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/^access_denied: tool notes_list may be called by people only/);
  });

  it('a machine calling whoami is answered as itself: sub = its client id, kind machine', async () => {
    const r = await callAs(robot, 'whoami');
    expect(r.isError).toBeFalsy();
    expect(JSON.parse(text(r))).toMatchObject({ sub: 'machine-1', client_id: 'machine-1', kind: 'machine' });
  });

  it('a person is unaffected: notes_list answers, whoami says person', async () => {
    expect((await callAs(alice, 'notes_list')).isError).toBeFalsy();
    expect(JSON.parse(text(await callAs(alice, 'whoami')))).toMatchObject({ sub: 'alice', kind: 'person' });
  });
});

describe('callers in a tool file, checked at start-up', () => {
  const base = { name: 'robot_tool', description: 'd', input: {}, scopes: [], handler: () => null };
  it.each(['people', 'people-and-machines', undefined])('accepts callers %s', (callers) => {
    expect(() => checkTool({ ...base, callers }, 'robot_tool.ts', [])).not.toThrow();
  });
  it.each(['machines', 'people-and-machine', true])('refuses callers %s, naming the allowed values', (callers) => {
    expect(() => checkTool({ ...base, callers }, 'robot_tool.ts', [])).toThrow(
      /tools\/robot_tool\.ts: robot_tool: callers must be 'people' \(the default\) or 'people-and-machines'/,
    );
  });
});
