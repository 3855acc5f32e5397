import { type Context, context, isSpanContextValid, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Request, RequestHandler } from 'express';
import { tracer } from './spans.js';

/** The request's context (its span in it), kept on the request: for its log line, and for ./mcpSpans.ts after the body parser. */
const REQUEST_CONTEXT = Symbol('hydra-mcp request context');
type Traced = Request & { [REQUEST_CONTEXT]?: Context };

/** The context of the request's span, when tracing is on and the request was traced. */
export function requestContext(req: Request): Context | undefined {
  return (req as Traced)[REQUEST_CONTEXT];
}

/** The trace id of the request's span, when tracing is on and the request was traced. */
export function traceIdOf(req: Request): string | undefined {
  const ctx = requestContext(req);
  const spanContext = ctx && trace.getSpanContext(ctx);
  return spanContext && isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}


// Probes every few seconds are not requests anyone follows (Ory's own tracing skips its health endpoints too).
const UNTRACED = /^\/(healthz|readyz)\/?$/;

/**
 * A server span for every request, continuing the caller's W3C `traceparent`
 * (its `tracestate` too). Made here rather than by the http instrumentation,
 * which must patch node:http before express is imported (an ESM loader hook
 * in front of our entry point); this needs nothing loaded first, and names
 * spans by our routes. The request's streams are not bound to the span
 * (OpenTelemetry's bind patches every listener method, a measurable cost per
 * request): the body parsers call back in the request's context already
 * (raw-body binds its callback to the async context it was called in), and
 * ./mcpSpans.ts restores the context from the request after parsing anyway.
 *
 * Attributes: method, scheme, the Express route pattern (`/account/connections/:provider/callback`,
 * never the path with its ids), status. No URL, query, header or address:
 * queries carry challenges, codes and states.
 */
export function traceRequests(): RequestHandler {
  return (req, res, next) => {
    if (UNTRACED.test(req.path)) return next();
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = tracer.startSpan(
      req.method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.scheme': req.protocol, 'network.protocol.version': req.httpVersion } },
      parent,
    );
    const active = trace.setSpan(parent, span);
    (req as Traced)[REQUEST_CONTEXT] = active;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      const route = routeOf(req);
      if (route) {
        span.setAttribute('http.route', route);
        span.updateName(`${req.method} ${route}`);
      }
      // A response never finished (the client went away) has no status to report.
      if (res.writableFinished) span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    context.with(active, next);
  };
}

// Answered by middleware before any route matched (the bearer check's 401): named by their fixed path.
const MIDDLEWARE_ANSWERED = new Set(['/mcp', '/sse', '/messages']);

/** The pattern of the route that answered, when Express matched one (a string path: bounded by our code). */
function routeOf(req: Request): string | undefined {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  if (typeof path === 'string') return `${req.baseUrl}${path}`;
  // originalUrl: inside a router mounted at a path, req.path has the mount point stripped.
  const [original] = req.originalUrl.split('?');
  return MIDDLEWARE_ANSWERED.has(original!) ? original : undefined;
}
