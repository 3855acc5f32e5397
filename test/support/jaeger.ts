import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from '../../scripts/hydra.js';
import { spawnService } from '../../scripts/goService.js';
import { toolBinary } from './kubeTools.js';

/** A span as Jaeger's query API (/api/traces) returns it. */
export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: { refType: string; traceID: string; spanID: string }[];
  tags: { key: string; value: unknown }[];
  processID: string;
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

export interface RunningJaeger {
  /** OTLP/HTTP base (POST <otlpUrl>/v1/traces), as OTEL_EXPORTER_OTLP_ENDPOINT. */
  otlpUrl: string;
  /** The query API and UI. */
  queryUrl: string;
  /** Traces holding a span of `service` (GET /api/traces?service=…), newest first. */
  traces(service: string, opts?: { operation?: string; limit?: number }): Promise<JaegerTrace[]>;
  /** One trace by id (GET /api/traces/{id}), or undefined. */
  trace(traceId: string): Promise<JaegerTrace | undefined>;
  log: string[];
  stop(): Promise<void>;
}

/**
 * Jaeger v1.75.0's all-in-one (`cmd/jaeger`, the v2 collector-based binary,
 * built by deploy/tools/build.sh and cached), with everything it listens on
 * bound to 127.0.0.1 on free ports: the OTLP/HTTP receiver and the query
 * API, nothing else (no gRPC receiver, sampling, health or metrics
 * listeners), traces in memory.
 */
export async function startJaeger(): Promise<RunningJaeger> {
  const binary = await toolBinary('jaeger');
  const [otlp, query, queryGrpc] = [await freeLoopbackPort(), await freeLoopbackPort(), await freeLoopbackPort()];
  const dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-jaeger-'));
  const config = join(dir, 'jaeger.yaml');
  await writeFile(
    config,
    `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    # No self-metrics listener (its default binds port 8888).
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    # Jaeger would trace its own queries into the results under test.
    enable_tracing: false
    http:
      endpoint: 127.0.0.1:${query}
    grpc:
      endpoint: 127.0.0.1:${queryGrpc}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${otlp}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`,
  );
  const log: string[] = [];
  const jaeger = spawnService(binary, ['--config', config], { name: 'Jaeger', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir }, log: (l) => log.push(l) });
  const queryUrl = `http://127.0.0.1:${query}`;
  const stop = async () => {
    await jaeger.stop(5000);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const exited = jaeger.exited();
      if (exited) throw new Error(`Jaeger exited (${exited})`);
      const ready = (await fetch(`${queryUrl}/api/services`).then((r) => r.ok).catch(() => false)) && (await listening(otlp));
      if (ready) break;
      if (Date.now() > deadline) throw new Error('Jaeger did not become ready in 60 s');
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n--- Jaeger's last lines ---\n${jaeger.recent()}`);
  }
  const get = async <T>(path: string): Promise<T | undefined> => {
    const res = await fetch(`${queryUrl}${path}`);
    if (res.status === 404) return undefined;
    if (!res.ok) throw new Error(`Jaeger ${path}: HTTP ${res.status} ${await res.text()}`);
    return ((await res.json()) as { data: T }).data;
  };
  return {
    otlpUrl: `http://127.0.0.1:${otlp}`,
    queryUrl,
    log,
    async traces(service, opts = {}) {
      const q = new URLSearchParams({ service, limit: String(opts.limit ?? 100), lookback: '1h', ...(opts.operation ? { operation: opts.operation } : {}) });
      return (await get<JaegerTrace[]>(`/api/traces?${q}`)) ?? [];
    },
    async trace(traceId) {
      return (await get<JaegerTrace[]>(`/api/traces/${traceId}`))?.[0];
    },
    stop,
  };
}

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
