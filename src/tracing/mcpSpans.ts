import { type Context, context, createContextKey, type Link, propagation, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { TRACEPARENT_META_KEY, TRACESTATE_META_KEY } from '@modelcontextprotocol/server';
import type { RequestHandler } from 'express';
import { requestContext } from './httpSpans.js';
import { recording, tracer, tracingEnabled, withSpan } from './spans.js';

/** Where the MCP request's span sits in the context, so the tool's span can name it after the tool. */
const MCP_REQUEST_SPAN = createContextKey('hydra-mcp mcp request span');

// The methods a client sends (MCP 2025-03-26 … 2026-07-28); anything else is
// named "other": the method is the client's to choose, a span name must stay bounded.
const METHODS = new Set([
  'initialize', 'ping', 'server/discover', 'tools/list', 'tools/call', 'resources/list', 'resources/read', 'resources/templates/list',
  'resources/subscribe', 'resources/unsubscribe', 'prompts/list', 'prompts/get', 'completion/complete', 'logging/setLevel',
  'subscriptions/listen', 'tasks/get', 'tasks/list', 'tasks/cancel', 'tasks/result',
  'notifications/initialized', 'notifications/cancelled', 'notifications/progress', 'notifications/roots/list_changed',
]);

interface Message {
  method?: unknown;
  params?: { _meta?: Record<string, unknown> };
}

/**
 * One span per MCP message POSTed (after the body parser), named by its
 * JSON-RPC method, following the OpenTelemetry conventions for MCP
 * (mcp.method.name; gen_ai.tool.name once the tool is known). Its parent is
 * the trace context the client put in the message's `_meta` (the SDK's
 * TRACEPARENT_META_KEY / TRACESTATE_META_KEY, "traceparent" and "tracestate"
 * per SEP-414), else the HTTP request's span; when `_meta` names another
 * parent, the HTTP span is linked. Responses a client sends back
 * (elicitation answers) and 2025-03-26 batches get no span of their own.
 * The span ends with the HTTP answer; a legacy SSE call runs on after its
 * 202, and its tool span outlives this one.
 */
export function traceMcpRequests(): RequestHandler {
  return (req, res, next) => {
    if (!tracingEnabled()) return next();
    // The request's context from the request itself (./httpSpans.ts): a body parser that called back from a
    // socket event, outside it, cannot cut the trace here.
    const active = requestContext(req) ?? context.active();
    const body = req.body as Message | undefined;
    if (!body || Array.isArray(body) || typeof body.method !== 'string') return context.with(active, next);
    const method = METHODS.has(body.method) ? body.method : 'other';
    const parent = fromMeta(active, body.params?._meta);
    const http = trace.getSpan(active);
    // Not sampled (and no other parent named in _meta): nothing under this request is recorded.
    if (parent === active && http && !http.isRecording()) return context.with(active, next);
    const links: Link[] = parent !== active && http ? [{ context: http.spanContext() }] : [];
    const span = tracer.startSpan(method, { kind: SpanKind.SERVER, attributes: { 'mcp.method.name': method }, links }, parent);
    const ctx = trace.setSpan(parent, span).setValue(MCP_REQUEST_SPAN, span);
    let ended = false;
    const end = () => {
      if (!ended) span.end();
      ended = true;
    };
    res.once('finish', end);
    res.once('close', end);
    context.with(ctx, next);
  };
}

/** `_meta.traceparent` (and tracestate) as the parent, when the client sent a valid one. */
function fromMeta(active: Context, meta: Record<string, unknown> | undefined): Context {
  const traceparent = meta?.[TRACEPARENT_META_KEY];
  if (typeof traceparent !== 'string') return active;
  const tracestate = meta?.[TRACESTATE_META_KEY];
  // An invalid traceparent leaves the context as it was (W3CTraceContextPropagator).
  return propagation.extract(active, { traceparent, ...(typeof tracestate === 'string' ? { tracestate } : {}) });
}

/**
 * The tool's run as a span (`execute_tool <tool>`), and the MCP request's
 * span renamed `tools/call <tool>`: the name is one of our tools, known only
 * once the SDK has routed the call. A result with isError marks the span.
 */
export function traceToolCall<T>(tool: string, run: () => Promise<T>): Promise<T> {
  if (!recording()) return run();
  const request = context.active().getValue(MCP_REQUEST_SPAN) as Span | undefined;
  request?.updateName(`tools/call ${tool}`);
  request?.setAttribute('gen_ai.tool.name', tool);
  return withSpan(`execute_tool ${tool}`, { attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': tool } }, async (span) => {
    const result = await run();
    if ((result as { isError?: unknown } | undefined)?.isError === true) {
      span?.setStatus({ code: SpanStatusCode.ERROR });
      span?.setAttribute('error.type', 'tool_error');
    }
    return result;
  });
}
