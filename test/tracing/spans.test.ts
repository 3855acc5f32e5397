import { mkdtemp, rm } from 'node:fs/promises';
import { request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import express from 'express';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '../../scripts/hydra.js';
import { type RunningServer, startServer } from '../../src/main.js';
import { startTracing, type Tracing } from '../../src/tracing/startTracing.js';

/**
 * The spans one request makes, in process: our server with tracing on
 * (exported to memory, through the same scrubbing as a collector gets), and a
 * stand-in for Hydra's admin API that answers introspection and remembers the
 * traceparent it was sent. The real Hydra and Jaeger: test/e2e/tracing.test.ts.
 */
const TOKEN = 'ory_at_opaque-token-under-test.abcdef';
const SUB = 'sub-4f0a7c1e-tracing';
const ARGUMENT = 'an argument value nobody may trace';

describe('tracing: the spans of one MCP request', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let hydra: Server;
  let server: RunningServer;
  let dir: string;
  const seenByHydra: (string | undefined)[] = [];
  const logs: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-tracing-'));
    // No OTEL_* variable: the exporter given turns tracing on by itself.
    tracing = await startTracing({}, { exporters: [exporter] });
    const port = await freeLoopbackPort();
    const admin = express();
    admin.post('/admin/oauth2/introspect', express.urlencoded({ extended: false }), (req, res) => {
      seenByHydra.push(req.get('traceparent'));
      const active = (req.body as { token?: string }).token === TOKEN;
      res.json(active ? { active, sub: SUB, client_id: 'client-1', scope: 'notes:read notes:write', aud: [`http://127.0.0.1:${port}/mcp`], exp: Math.floor(Date.now() / 1000) + 600, token_use: 'access_token' } : { active });
    });
    hydra = await new Promise<Server>((resolve) => {
      const s = admin.listen(0, '127.0.0.1', () => resolve(s));
    });
    const hydraUrl = `http://127.0.0.1:${(hydra.address() as { port: number }).port}`;
    server = await startServer({
      HOST: '127.0.0.1',
      PORT: String(port),
      HYDRA_PUBLIC_URL: hydraUrl,
      HYDRA_ADMIN_URL: hydraUrl,
      DATABASE_PATH: join(dir, 'db.sqlite'),
      SESSION_SECRET: 's'.repeat(40),
      LOG_LEVEL: 'info',
      METRICS_PORT: 'off',
      MCP_STATELESS: 'true',
      // Every request introspects: the cold cache is what is under test.
      INTROSPECTION_CACHE_SECONDS: '0',
    }, { logSink: (line) => logs.push(line) });
  });
  afterAll(async () => {
    await server?.stop();
    await new Promise((r) => hydra?.close(r));
    await tracing?.shutdown();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    exporter.reset();
    seenByHydra.length = 0;
  });

  const callTool = (opts: { headers?: Record<string, string>; meta?: Record<string, string>; token?: string } = {}) =>
    fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${opts.token ?? TOKEN}`, ...opts.headers },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'notes_add', arguments: { title: ARGUMENT, body: ARGUMENT }, ...(opts.meta ? { _meta: opts.meta } : {}) } }),
    });

  /** The spans exported so far, once the server span (the last to end) is in. */
  async function exported(): Promise<ReadableSpan[]> {
    for (let i = 0; i < 100 && !exporter.getFinishedSpans().some((s) => s.name === 'POST /mcp'); i++) await new Promise((r) => setTimeout(r, 10));
    return exporter.getFinishedSpans();
  }
  const named = (spans: ReadableSpan[], name: string) => {
    const span = spans.find((s) => s.name === name);
    expect(span, `a span "${name}" among ${spans.map((s) => s.name).join(', ')}`).toBeDefined();
    return span!;
  };

  it('one trace: the request, the token check with its introspection (traceparent sent to Hydra), the MCP call, the tool, the store', async () => {
    const res = await callTool();
    expect(res.status).toBe(200);
    await res.text();
    const spans = await exported();
    const http = named(spans, 'POST /mcp');
    const check = named(spans, 'verify access token');
    const introspection = spans.find((s) => s.attributes['url.full'] === `${new URL(server.url).origin.replace(/:\d+$/, '')}:${(hydra.address() as { port: number }).port}/admin/oauth2/introspect`);
    const mcp = named(spans, 'tools/call notes_add');
    const tool = named(spans, 'execute_tool notes_add');
    const store = named(spans, 'add notes');
    expect(introspection, spans.map((s) => JSON.stringify(s.attributes)).join('\n')).toBeDefined();
    expect(new Set(spans.map((s) => s.spanContext().traceId)).size).toBe(1);
    const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
    expect(parentOf(check)).toBe(http.spanContext().spanId);
    expect(parentOf(introspection!)).toBe(check.spanContext().spanId);
    expect(parentOf(mcp)).toBe(http.spanContext().spanId);
    expect(parentOf(tool)).toBe(mcp.spanContext().spanId);
    expect(parentOf(store)).toBe(tool.spanContext().spanId);
    expect(http.attributes).toMatchObject({ 'http.route': '/mcp', 'http.response.status_code': 200 });
    expect(mcp.attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'notes_add' });
    expect(store.attributes).toMatchObject({ 'db.system.name': 'sqlite', 'db.operation.name': 'add', 'db.collection.name': 'notes' });
    // Hydra was told the trace and the introspection span as its parent (W3C traceparent).
    expect(seenByHydra).toEqual([`00-${http.spanContext().traceId}-${introspection!.spanContext().spanId}-01`]);
    // The request's log line names the trace.
    const line = logs.map((l) => JSON.parse(l) as { msg?: string; path?: string; trace_id?: string }).filter((l) => l.msg === 'request' && l.path === '/mcp').at(-1);
    expect(line?.trace_id).toBe(http.spanContext().traceId);
  });

  it('the audit records are written in a trace of their own (a root span per batch, off the request path)', async () => {
    await (await callTool()).text();
    let audit: ReadableSpan | undefined;
    for (let i = 0; i < 60 && !audit; i++) {
      audit = exporter.getFinishedSpans().find((s) => s.name === 'insert audit_events');
      if (!audit) await new Promise((r) => setTimeout(r, 100));
    }
    expect(audit?.parentSpanContext).toBeUndefined();
    expect(audit?.attributes).toMatchObject({ 'db.system.name': 'sqlite', 'db.collection.name': 'audit_events', 'db.operation.batch.size': expect.any(Number) });
  });

  it('a body that arrives after the headers (parsed from socket events) still runs under the request span', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'notes_add', arguments: { title: ARGUMENT, body: ARGUMENT } } });
    const { hostname, port } = new URL(server.url);
    await new Promise<void>((resolve, reject) => {
      const req = request({ hostname, port, path: '/mcp', method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKEN}`, 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      // Headers first; the body only once the server has checked the token and is waiting on the stream.
      req.flushHeaders();
      setTimeout(() => req.end(body), 150);
    });
    const spans = await exported();
    const http = named(spans, 'POST /mcp');
    expect(named(spans, 'tools/call notes_add').parentSpanContext?.spanId).toBe(http.spanContext().spanId);
    expect(named(spans, 'add notes').spanContext().traceId).toBe(http.spanContext().traceId);
  });

  it("a caller's unsampled traceparent: nothing recorded, and Hydra is told the trace is not sampled", async () => {
    const traceId = 'aaf92f3577b34da6a3ce929d0e0e4736';
    await (await callTool({ headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-00` } })).text();
    await new Promise((r) => setTimeout(r, 100));
    expect(exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId)).toEqual([]);
    expect(seenByHydra).toEqual([expect.stringMatching(new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`))]);
  });

  it("continues the caller's traceparent header", async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    await (await callTool({ headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } })).text();
    const http = named(await exported(), 'POST /mcp');
    expect(http.spanContext().traceId).toBe(traceId);
    expect(http.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
  });

  it("the MCP span continues the trace the message's _meta names (SEP-414 keys), linked to the HTTP span", async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    await (await callTool({ meta: { traceparent: `00-${traceId}-b7ad6b7169203331-01`, tracestate: 'vendor=1' } })).text();
    const spans = await exported();
    const http = named(spans, 'POST /mcp');
    const mcp = named(spans, 'tools/call notes_add');
    expect(mcp.spanContext().traceId).toBe(traceId);
    expect(mcp.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(mcp.links.map((l) => l.context.spanId)).toEqual([http.spanContext().spanId]);
    expect(named(spans, 'execute_tool notes_add').spanContext().traceId).toBe(traceId);
  });

  it('no token, sub or argument value in any exported span, a refused token included', async () => {
    await (await callTool()).text();
    await (await callTool({ token: 'ory_at_not-active-token' })).text();
    const text = JSON.stringify((await exported()).map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, links: s.links })));
    for (const secret of [TOKEN, 'ory_at_not-active-token', SUB, ARGUMENT, 'opaque-token-under-test']) expect(text).not.toContain(secret);
    expect(text).toContain('verify access token');
    // The refused request is named by its path too (answered by the bearer check, before any route).
    expect(exporter.getFinishedSpans().filter((s) => s.attributes['http.response.status_code'] === 401).map((s) => s.name)).toEqual(['POST /mcp']);
  });
});
