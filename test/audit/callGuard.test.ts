import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Audit } from '../../src/audit/audit.js';
import { AuditWriter } from '../../src/audit/auditWriter.js';
import { auditCallGuard } from '../../src/audit/callGuard.js';
import { type PrincipalKind, toAuthInfo } from '../../src/auth/principal.js';
import { REGISTRABLE_SCOPES } from '../../src/auth/scopes.js';
import { createLogger } from '../../src/log/logger.js';
import { callContextOf, noteBegun } from '../../src/mcp/callContext.js';
import { requireToolScopes } from '../../src/mcp/stepUp.js';
import { z } from 'zod';
import { auditStore } from '../../src/store/auditStore.js';
import { type Db, openDatabase } from '../../src/store/database.js';
import type { ToolDefinition } from '../../src/tools/contract.js';
import { loadTools } from '../../src/tools/registry.js';

/**
 * The HTTP layer's part of the audit trail: the real step-up guard
 * (src/mcp/stepUp.ts) wrapped by auditCallGuard, the project's tools, a real
 * writer on SQLite. The bearer check is replaced by a local stub that sets
 * the verified principal (the token verifier has tests of its own); the SDK
 * behind the guard by a handler that does what the SDK's tool layer does for
 * the guard (begins each call whose input its schema accepts) and reports the
 * call context that reached it. test/e2e/audit.test.ts runs the real SDK.
 */
describe('audit call guard (real step-up guard and tools; bearer check stubbed)', () => {
  let dir: string;
  let db: Db;
  let writer: AuditWriter;
  let url: string;
  let server: import('node:http').Server;
  let reached: { requestId?: string; transport?: string }[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-mcp-guard-'));
    db = await openDatabase({ kind: 'sqlite', path: join(dir, 'a.sqlite') });
    writer = new AuditWriter({ store: auditStore(db), log: createLogger('silent'), flushIntervalMs: 60_000 });
    const audit = Audit.over(writer);
    const tools: ToolDefinition[] = [...(await loadTools(fileURLToPath(new URL('../../tools/', import.meta.url)), REGISTRABLE_SCOPES))];
    const byName = new Map(tools.map((t) => [t.name, t]));
    const guardFor = (transport: 'streamable-http' | 'sse') =>
      auditCallGuard(
        requireToolScopes({ toolScopes: new Map(tools.map((t) => [t.name, t.scopes])), toolCallers: new Map(tools.map((t) => [t.name, t.callers])), resourceMetadataUrl: 'http://127.0.0.1/prm' }),
        { audit, tools: byName, transport },
      );
    const app = express();
    app.use((_req, res, next) => (res.set('X-Request-Id', 'req-guard'), next()));
    const authenticate: express.RequestHandler = (req, _res, next) => {
      const kind = (req.get('x-kind') ?? 'person') as PrincipalKind;
      req.auth = toAuthInfo({ sub: req.get('x-sub')!, clientId: 'client-g', scopes: (req.get('x-scopes') ?? '').split(' ').filter(Boolean), expiresAt: 2e9, kind }, 'tok');
      next();
    };
    // Where the SDK runs the calls: the call context must be readable from the request's AuthInfo.
    const sdk: express.RequestHandler = (req, res) => {
      const ctx = callContextOf(req.auth);
      reached.push({ ...(ctx?.requestId ? { requestId: ctx.requestId } : {}), ...(ctx ? { transport: ctx.transport } : {}) });
      // x-abort: the client goes away before the SDK reached the calls (the socket is destroyed).
      if (req.get('x-abort')) return void res.socket?.destroy();
      for (const m of [req.body].flat() as { params: { name: string; arguments?: unknown } }[]) {
        const tool = byName.get(m.params.name);
        if (tool && z.object(tool.input).safeParse(m.params.arguments ?? {}).success) noteBegun(req.auth, tool.name);
      }
      res.json({ ok: true });
    };
    app.post('/mcp', express.json(), authenticate, guardFor('streamable-http'), sdk);
    // /messages (SSE): the POST is answered 202 before any call runs, so input is checked by the guard itself.
    app.post('/messages', express.json(), authenticate, guardFor('sse'), (_req, res) => void res.status(202).end());
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  });
  afterAll(async () => {
    server?.close();
    await writer?.stop();
    await db?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    reached = [];
  });

  const post = async (sub: string, body: unknown, headers: Record<string, string> = {}, path = '/mcp') => {
    const res = await fetch(url.replace('/mcp', path), { method: 'POST', headers: { 'content-type': 'application/json', 'x-sub': sub, ...headers }, body: JSON.stringify(body) }).catch(() => undefined);
    await res?.arrayBuffer();
    // The record of a call the SDK refused is written when the response closes, just after the client has it.
    await new Promise((r) => setTimeout(r, 50));
    await writer.flush();
    return { status: res?.status ?? 0, records: (await auditStore(db).pageForSubject(sub, { limit: 100 })).events };
  };
  const toolsCall = (name: string, args: unknown = {}, id = 1) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

  it('a call without a scope its tool needs is refused (403) and recorded insufficient_scope', async () => {
    const r = await post('g-scope', toolsCall('notes_add', { title: 't', body: 'b' }), { 'x-scopes': 'notes:read' });
    expect(r.status).toBe(403);
    expect(reached).toEqual([]);
    expect(r.records).toEqual([expect.objectContaining({ tool: 'notes_add', outcome: 'insufficient_scope', scopes: 'notes:read', clientId: 'client-g', requestId: 'req-guard', transport: 'streamable-http' })]);
  });

  it('a machine client calling a people-only tool is refused (403) and recorded denied', async () => {
    const r = await post('g-machine', toolsCall('notes_list'), { 'x-kind': 'machine', 'x-scopes': 'notes:read' });
    expect(r.status).toBe(403);
    expect(r.records.map((e) => e.outcome)).toEqual(['denied']);
  });

  it('unknown tools and input the schema refuses are recorded here (the SDK answers them); valid calls pass with their context', async () => {
    const batch = [toolsCall('no_such_tool', {}, 1), toolsCall('notes_add', { title: 42 }, 2), toolsCall('notes_add', { title: 'ok', body: '' }, 3)];
    const r = await post('g-mixed', batch, { 'x-scopes': 'notes:read notes:write', 'mcp-protocol-version': '2026-07-28' });
    expect(r.status).toBe(200);
    expect(r.records.map((e) => `${e.tool}:${e.outcome}`).sort()).toEqual(['no_such_tool:unknown_tool', 'notes_add:invalid_input']);
    expect(r.records.every((e) => e.transport === 'streamable-http-2026')).toBe(true);
    // The valid call is left to the tool layer, which reads this context.
    expect(reached).toEqual([{ requestId: 'req-guard', transport: 'streamable-http-2026' }]);
  });

  it('a call the tool layer begins leaves no record here (the tool layer records it); two calls of one tool, one refused, leave one invalid_input', async () => {
    const r = await post('g-begun', [toolsCall('notes_add', { title: 'a', body: '' }, 1), toolsCall('notes_add', { body: 7 }, 2)], { 'x-scopes': 'notes:read notes:write' });
    expect(r.status).toBe(200);
    expect(r.records.map((e) => `${e.tool}:${e.outcome}`)).toEqual(['notes_add:invalid_input']);
  });

  it('over SSE (/messages answers 202 before any call runs) input the schema refuses is recorded at once; valid input is not', async () => {
    const r = await post('g-sse', [toolsCall('notes_add', { title: 42 }, 1), toolsCall('notes_add', { title: 'ok', body: '' }, 2)], { 'x-scopes': 'notes:read notes:write' }, '/messages');
    expect(r.status).toBe(202);
    expect(r.records.map((e) => `${e.tool}:${e.outcome}:${e.transport}`)).toEqual(['notes_add:invalid_input:sse']);
  });

  it('a response cut off before it ended: calls the SDK did not begin are judged by their schema (valid input is not called invalid)', async () => {
    const r = await post('g-abort', [toolsCall('whoami', {}, 1), toolsCall('notes_add', { title: 42 }, 2)], { 'x-abort': '1', 'x-scopes': 'notes:read notes:write' });
    expect(r.status).toBe(0);
    expect(r.records.map((e) => `${e.tool}:${e.outcome}`)).toEqual(['notes_add:invalid_input']);
  });

  it('requests without tools/call are not recorded; a tool name is cut to 100 characters', async () => {
    expect((await post('g-none', { jsonrpc: '2.0', id: 1, method: 'tools/list' })).records).toEqual([]);
    const long = 'x'.repeat(5000);
    const r = await post('g-long', toolsCall(long));
    expect(r.records.map((e) => e.tool)).toEqual(['x'.repeat(100)]);
  });
});
