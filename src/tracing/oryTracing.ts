import type { TracingSettings } from './settings.js';

/**
 * Ory Hydra's and Kratos's own `tracing` settings (ory/x otelx, the
 * `ory://tracing-config` schema: provider `otel`, providers.otlp.server_url
 * as host:port, `insecure` for plain http, sampling.sampling_ratio), as the
 * environment variables their config loader maps onto those keys, derived
 * from ours so one OTEL_EXPORTER_OTLP_ENDPOINT traces all three.
 *
 * Their exporter is OTLP/HTTP protobuf to <server_url>/v1/traces and cannot
 * take another path, so a traces endpoint with a path of its own is sent
 * their spans at /v1/traces on the same host and port. Their sampler is
 * ParentBased(TraceIdRatio(sampling_ratio)) (otelx/otlp.go): requests we send
 * follow our decision (traceparent's sampled flag); their own root spans get
 * our ratio. Empty when tracing is off or exports to the console only.
 */
export function oryTracingEnv(settings: TracingSettings | undefined, serviceName: string): Record<string, string> {
  const otlp = settings?.exporters.otlp;
  if (!otlp) return {};
  const port = otlp.url.port || (otlp.url.protocol === 'https:' ? '443' : '80');
  return {
    TRACING_PROVIDER: 'otel',
    TRACING_SERVICE_NAME: serviceName,
    TRACING_PROVIDERS_OTLP_SERVER_URL: `${otlp.url.hostname}:${port}`,
    TRACING_PROVIDERS_OTLP_INSECURE: String(otlp.url.protocol === 'http:'),
    TRACING_PROVIDERS_OTLP_SAMPLING_SAMPLING_RATIO: String(settings.sampler.ratio),
  };
}
