import { type Attributes, context, ProxyTracerProvider, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';

const TRACER_NAME = 'hydra-mcp';

/**
 * The OpenTelemetry API's own proxy: taken at import, it forwards to the
 * provider startTracing() registers later, or to none. This (and the global
 * registry it reads) is the only state; it is OpenTelemetry's, by design, so
 * a library anywhere in the process can make spans without being handed a
 * tracer.
 */
export const tracer = trace.getTracer(TRACER_NAME);

/**
 * Whether spans are recorded in this process (startTracing registered a
 * provider). Callers check it once where they are built, or at the top of a
 * call, so that tracing off costs a branch, not a span object.
 */
export function tracingEnabled(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegateTracer(TRACER_NAME) !== undefined;
}

/**
 * Whether a child span made now would be recorded: tracing is on and the
 * active span (the request's) is sampled. Children of an unsampled span are
 * not sampled either (parent-based samplers follow it; the ratio samplers
 * decide by trace id, which children share), so they are not made at all:
 * with a 10 % sampler, nine requests in ten skip the work.
 */
export function recording(): boolean {
  return tracingEnabled() && trace.getActiveSpan()?.isRecording() === true;
}

export interface SpanOptions {
  kind?: SpanKind;
  /** Low-cardinality, secret-free values only (a tool name, an operation): never a token, sub or argument. */
  attributes?: Attributes;
  /** Start a new trace rather than continue the active one (work done off the request path). */
  root?: boolean;
}

/**
 * Run `fn` inside a span that is ended when it settles; a failure marks the
 * span as an error with the error's class name only (messages may quote
 * input). A child span is made only under a recorded one (see `recording`),
 * so work outside any request (a CLI, a sweep) makes no stray traces; `root`
 * spans only when tracing is on. Otherwise `fn` runs as is.
 */
export function withSpan<T>(name: string, options: SpanOptions, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  // Not an async function: no span adds no promise of its own.
  return (options.root ? tracingEnabled() : recording()) ? spanned(name, options, fn) : fn(undefined);
}

async function spanned<T>(name: string, options: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  const span = tracer.startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, ...(options.attributes ? { attributes: options.attributes } : {}), ...(options.root ? { root: true } : {}) });
  try {
    return await context.with(trace.setSpan(context.active(), span), () => fn(span));
  } catch (e) {
    failed(span, e);
    throw e;
  } finally {
    span.end();
  }
}

/** Mark `span` as failed, naming the error's class (never its message). */
export function failed(span: Span, error: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.setAttribute('error.type', error instanceof Error ? error.name : typeof error);
}

export { SpanKind };
