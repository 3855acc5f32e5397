import { z } from 'zod';
import { ConfigError } from '../config/config.js';

/**
 * Tracing as the standard OpenTelemetry variables describe it
 * (opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables):
 * we read no variable of our own. Parsed apart from the server's settings
 * because the entry point starts tracing before it loads anything else.
 */
export interface TracingSettings {
  /** Where spans go: OTLP over HTTP to `url` (…/v1/traces), and/or the console (debugging). */
  exporters: { otlp?: { url: URL; protocol: 'http/protobuf' | 'http/json' }; console: boolean };
  /** OTEL_TRACES_SAMPLER and its ratio (1 unless a *traceidratio sampler names another). */
  sampler: { name: SamplerName; ratio: number };
  /** OTEL_SERVICE_NAME, default "hydra-mcp". */
  serviceName: string;
}

const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof SAMPLERS)[number];
const EXPORTERS = ['otlp', 'console', 'none'] as const;

const optional = z.string().trim().optional().transform((s) => (s ? s : undefined));
const httpUrl = (name: string) =>
  optional.refine((s) => s === undefined || (URL.canParse(s) && /^https?:$/.test(new URL(s).protocol)), { message: `${name}: must be an http(s) URL` });

const EnvSchema = z.object({
  OTEL_SDK_DISABLED: optional.refine((s) => s === undefined || /^(true|false)$/i.test(s), { message: 'must be true or false' }),
  OTEL_TRACES_EXPORTER: optional.refine((s) => s === undefined || list(s).every((e) => (EXPORTERS as readonly string[]).includes(e)), {
    message: `must be a comma-separated list of ${EXPORTERS.join(', ')} (other exporters are not installed)`,
  }),
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl('OTEL_EXPORTER_OTLP_ENDPOINT'),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: httpUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'),
  OTEL_EXPORTER_OTLP_PROTOCOL: z.enum(['http/protobuf', 'http/json']).optional(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: z.enum(['http/protobuf', 'http/json']).optional(),
  OTEL_TRACES_SAMPLER: z.enum(SAMPLERS).optional(),
  OTEL_TRACES_SAMPLER_ARG: optional.refine((s) => s === undefined || (Number.isFinite(Number(s)) && Number(s) >= 0 && Number(s) <= 1), {
    message: 'must be a number from 0 to 1 (the share of traces kept)',
  }),
  OTEL_SERVICE_NAME: optional,
});

/** Every variable this module reads (.env.example lists them, commented). */
export const TRACING_ENV_KEYS: readonly string[] = Object.keys(EnvSchema.shape);

function list(s: string): string[] {
  return s.split(',').map((x) => x.trim()).filter(Boolean);
}

/**
 * The tracing settings, or undefined when tracing is off: no destination set
 * (neither an OTLP endpoint nor OTEL_TRACES_EXPORTER), OTEL_SDK_DISABLED=true,
 * or OTEL_TRACES_EXPORTER=none. A sampler or service name alone turns nothing
 * on: with no endpoint named, the spec's default (localhost:4318) is a guess.
 * Throws ConfigError naming each wrong variable.
 */
export function tracingSettings(env: Record<string, string | undefined>): TracingSettings | undefined {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${String(i.path[0])}: ${i.message.replace(/^[A-Z_]+: /, '')}`);
    throw new ConfigError(`Invalid tracing configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (e.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return undefined;
  const named = e.OTEL_TRACES_EXPORTER ? list(e.OTEL_TRACES_EXPORTER) : undefined;
  if (!named && !e.OTEL_EXPORTER_OTLP_ENDPOINT && !e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return undefined;
  const exporters = new Set(named ?? ['otlp']);
  if (exporters.has('none') || exporters.size === 0) return undefined;
  const otlp = exporters.has('otlp')
    ? { url: tracesUrl(e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, e.OTEL_EXPORTER_OTLP_ENDPOINT), protocol: e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? e.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf' }
    : undefined;
  const name = e.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on';
  return {
    exporters: { ...(otlp ? { otlp } : {}), console: exporters.has('console') },
    sampler: { name, ratio: samplerRatio(name, e.OTEL_TRACES_SAMPLER_ARG) },
    serviceName: e.OTEL_SERVICE_NAME ?? 'hydra-mcp',
  };
}

/**
 * The spec: a signal-specific endpoint is used as is; the general one gets
 * `v1/traces` appended to its path; neither means http://localhost:4318.
 */
function tracesUrl(traces: string | undefined, general: string | undefined): URL {
  if (traces) return new URL(traces);
  const base = new URL(general ?? 'http://localhost:4318');
  base.pathname = `${base.pathname.replace(/\/+$/, '')}/v1/traces`;
  return base;
}

/** The share of new traces kept: the ratio samplers' argument (default 1), 0 or 1 for the others. */
function samplerRatio(name: SamplerName, arg: string | undefined): number {
  if (name.endsWith('always_off')) return 0;
  if (name.endsWith('always_on')) return 1;
  return arg === undefined ? 1 : Number(arg);
}
