import { context, diag, DiagLogLevel, propagation, trace } from '@opentelemetry/api';
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Logger } from '../log/logger.js';
import { ScrubbingSpanProcessor } from './scrub.js';
import { type TracingSettings, tracingSettings } from './settings.js';

export interface Tracing {
  /** The settings in force; undefined when tracing is off. */
  settings?: TracingSettings;
  /** Export the spans queued so far (tests, before they ask the collector). */
  flush(): Promise<void>;
  /** Export the spans still queued, stop the instrumentation and unregister the provider. */
  shutdown(): Promise<void>;
}

export interface StartTracingOptions {
  /** Told of the SDK's own warnings and errors (an unreachable collector). */
  log?: Pick<Logger, 'warn'>;
  /**
   * More exporters, behind the same scrubbing and sent each span as it ends
   * (tests: an in-memory exporter beside the collector). Given alone, they
   * turn tracing on without any OTEL_* variable.
   */
  exporters?: SpanExporter[];
}

/**
 * Start OpenTelemetry tracing from the standard OTEL_* variables (./settings.ts),
 * before the server is built. Off (no destination, or OTEL_SDK_DISABLED):
 * returns at once and the SDK is never loaded. The modules are imported here,
 * on demand, so a server without tracing does not even parse them.
 *
 * What is traced: our server spans (./httpSpans.ts, ./mcpSpans.ts), the
 * token check, tools and store calls, and every fetch (undici's diagnostics
 * channels, which need nothing loaded first), which carries `traceparent` to
 * Hydra, Kratos and providers. Fetches outside any span (readiness checks,
 * background sweeps) make no spans. Only the W3C trace context is propagated:
 * a caller's baggage is not passed on to Hydra.
 */
export async function startTracing(env: Record<string, string | undefined>, options: StartTracingOptions = {}): Promise<Tracing> {
  const settings = tracingSettings(env);
  const extra = options.exporters ?? [];
  if (!settings && extra.length === 0) return { flush: async () => {}, shutdown: async () => {} };
  const [{ NodeSDK, core, resources, tracing }, { UndiciInstrumentation }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/instrumentation-undici'),
  ]);
  if (options.log) {
    const log = options.log;
    const warn = (message: string) => log.warn('tracing', { detail: message });
    diag.setLogger({ error: warn, warn, info: () => {}, debug: () => {}, verbose: () => {} }, DiagLogLevel.WARN);
  }
  const processors: SpanProcessor[] = [];
  const otlp = settings?.exporters.otlp;
  if (otlp) {
    const { OTLPTraceExporter } = otlp.protocol === 'http/json' ? await import('@opentelemetry/exporter-trace-otlp-http') : await import('@opentelemetry/exporter-trace-otlp-proto');
    // Headers, timeout and compression come from the exporter's own OTEL_EXPORTER_OTLP_* variables.
    processors.push(new tracing.BatchSpanProcessor(new OTLPTraceExporter({ url: otlp.url.href })));
  }
  if (settings?.exporters.console) processors.push(new tracing.SimpleSpanProcessor(new tracing.ConsoleSpanExporter()));
  for (const exporter of extra) processors.push(new tracing.SimpleSpanProcessor(exporter));
  const scrubbed = processors.map((p) => new ScrubbingSpanProcessor(p));
  const undici = new UndiciInstrumentation({ requireParentforSpans: true });
  const sdk = new NodeSDK({
    serviceName: settings?.serviceName ?? 'hydra-mcp',
    sampler: samplerOf(settings, tracing),
    // Every exporter sees spans only through the scrubbing (./scrub.ts).
    spanProcessors: scrubbed,
    instrumentations: [undici],
    textMapPropagator: new core.W3CTraceContextPropagator(),
    // OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME only: no host, process or command line.
    resourceDetectors: [resources.envDetector],
    // Traces only: no OTLP metrics or logs (Prometheus and our log lines cover those).
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  return {
    ...(settings ? { settings } : {}),
    flush: async () => void (await Promise.all(scrubbed.map((p) => p.forceFlush()))),
    async shutdown() {
      undici.disable();
      // The collector may be gone: the last spans are lost then, the stop goes on.
      await sdk.shutdown().catch((e: unknown) => options.log?.warn('tracing: the last spans were not exported', { error: e }));
      // Unregistered, so a later start (the tests start several) registers afresh.
      trace.disable();
      context.disable();
      propagation.disable();
      diag.disable();
    },
  };
}

type SdkTracing = typeof import('@opentelemetry/sdk-node').tracing;

/** OTEL_TRACES_SAMPLER as a sampler (the SDK would read process.env; ours come from `env`). */
function samplerOf(settings: TracingSettings | undefined, t: SdkTracing) {
  const { name, ratio } = settings?.sampler ?? { name: 'parentbased_always_on', ratio: 1 };
  const root = name.endsWith('always_on') ? new t.AlwaysOnSampler() : name.endsWith('always_off') ? new t.AlwaysOffSampler() : new t.TraceIdRatioBasedSampler(ratio);
  return name.startsWith('parentbased_') ? new t.ParentBasedSampler({ root }) : root;
}
