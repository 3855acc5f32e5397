import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config.js';
import { oryTracingEnv } from '../../src/tracing/oryTracing.js';
import { tracingSettings } from '../../src/tracing/settings.js';

describe('tracing settings: the standard OTEL_* variables only', () => {
  it.each([
    ['nothing set', {}],
    ['a service name alone (no destination)', { OTEL_SERVICE_NAME: 'x' }],
    ['a sampler alone', { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' }],
    ['OTEL_SDK_DISABLED=true beside an endpoint', { OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }],
    ['OTEL_TRACES_EXPORTER=none beside an endpoint', { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }],
    ['empty values (as .env.example leaves them)', { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_TRACES_EXPORTER: '' }],
  ])('off with %s', (_case, env) => {
    expect(tracingSettings(env)).toBeUndefined();
  });

  it('the general endpoint gets /v1/traces appended (OTel spec), defaults parentbased_always_on and hydra-mcp', () => {
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toEqual({
      exporters: { otlp: { url: new URL('http://collector:4318/v1/traces'), protocol: 'http/protobuf' }, console: false },
      sampler: { name: 'parentbased_always_on', ratio: 1 },
      serviceName: 'hydra-mcp',
    });
  });

  it('the traces endpoint is used as is, and wins over the general one', () => {
    const s = tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://b/otlp/traces', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' });
    expect(s?.exporters.otlp).toEqual({ url: new URL('https://b/otlp/traces'), protocol: 'http/json' });
  });

  it('OTEL_TRACES_EXPORTER=console alone turns it on without OTLP; otlp alone means localhost:4318', () => {
    expect(tracingSettings({ OTEL_TRACES_EXPORTER: 'console' })?.exporters).toEqual({ console: true });
    expect(tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp' })?.exporters.otlp?.url.href).toBe('http://localhost:4318/v1/traces');
  });

  it('a ratio sampler takes its argument; the service name is OTEL_SERVICE_NAME', () => {
    const s = tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1', OTEL_SERVICE_NAME: 'mcp-eu' });
    expect(s?.sampler).toEqual({ name: 'parentbased_traceidratio', ratio: 0.1 });
    expect(s?.serviceName).toBe('mcp-eu');
  });

  it.each([
    ['OTEL_EXPORTER_OTLP_ENDPOINT', { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }],
    ['OTEL_TRACES_EXPORTER', { OTEL_TRACES_EXPORTER: 'zipkin' }],
    ['OTEL_TRACES_SAMPLER', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'jaeger_remote' }],
    ['OTEL_TRACES_SAMPLER_ARG', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '10%' }],
    ['OTEL_EXPORTER_OTLP_PROTOCOL', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }],
  ])('refuses a wrong %s, naming it', (name, env) => {
    expect(() => tracingSettings(env)).toThrow(ConfigError);
    expect(() => tracingSettings(env)).toThrow(`  ${name}: `);
  });
});

describe("Hydra's and Kratos's tracing settings, derived from ours", () => {
  it('host:port, insecure for http, our ratio (ory/x otelx config keys as environment variables)', () => {
    const s = tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' });
    expect(oryTracingEnv(s, 'hydra')).toEqual({
      TRACING_PROVIDER: 'otel',
      TRACING_SERVICE_NAME: 'hydra',
      TRACING_PROVIDERS_OTLP_SERVER_URL: '127.0.0.1:4318',
      TRACING_PROVIDERS_OTLP_INSECURE: 'true',
      TRACING_PROVIDERS_OTLP_SAMPLING_SAMPLING_RATIO: '0.25',
    });
  });

  it('https without a port means 443 and not insecure; always_off means ratio 0', () => {
    const s = tracingSettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://otel.example.com/v1/traces', OTEL_TRACES_SAMPLER: 'always_off' });
    expect(oryTracingEnv(s, 'kratos')).toMatchObject({ TRACING_PROVIDERS_OTLP_SERVER_URL: 'otel.example.com:443', TRACING_PROVIDERS_OTLP_INSECURE: 'false', TRACING_PROVIDERS_OTLP_SAMPLING_SAMPLING_RATIO: '0' });
  });

  it('nothing when tracing is off or goes to the console only', () => {
    expect(oryTracingEnv(undefined, 'hydra')).toEqual({});
    expect(oryTracingEnv(tracingSettings({ OTEL_TRACES_EXPORTER: 'console' }), 'hydra')).toEqual({});
  });
});
