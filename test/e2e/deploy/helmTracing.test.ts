import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { TRACING_ENV_KEYS, tracingSettings } from '../../../src/tracing/settings.js';
import { helm, KUBERNETES_VERSION, parseManifests, toolBinary } from '../../support/kubeTools.js';

/**
 * The chart's `tracing:` values (issue 30 #4) rendered by the real Helm: the
 * standard OTEL_* variables the server reads, egress to the collector, and
 * nothing at all while no endpoint is set. Ory's values carry the same keys
 * our embedded Hydra and Kratos get from npm start (src/tracing/oryTracing.ts).
 */
const ROOT = resolve(import.meta.dirname, '../../..');
const CHART = 'deploy/helm/hydra-mcp';
const REQUIRED = `${CHART}/ci/required-values.yaml`;

async function render(...args: string[]) {
  const r = await helm(['template', 'mcp', CHART, '--namespace', 'mcp', '--kube-version', KUBERNETES_VERSION.slice(1), '-f', REQUIRED, ...args]);
  return { ...r, objects: r.code === 0 ? parseManifests(r.stdout) : [] };
}
const configMap = (objects: Array<Record<string, any>>) => objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'mcp-hydra-mcp')!.data as Record<string, string>;
const egress = (objects: Array<Record<string, any>>) => objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'mcp-hydra-mcp')!.spec.egress as Array<{ ports: { port: number }[]; to?: unknown[] }>;

describe('Helm chart: tracing values', () => {
  beforeAll(async () => {
    await toolBinary('helm');
  });

  it('off by default: no OTEL_* variable, no egress rule for a collector', async () => {
    const { objects, stderr } = await render();
    expect(stderr).toBe('');
    expect(Object.keys(configMap(objects)).filter((k) => k.startsWith('OTEL_'))).toEqual([]);
    expect(tracingSettings(configMap(objects))).toBeUndefined();
  });

  it('an endpoint renders the standard variables, which the server reads as meant; egress opens on its port to `to`', async () => {
    const to = [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } } }];
    const { objects, stderr } = await render('--set', 'tracing.endpoint=http://otel-collector.observability:4318', '--set', 'tracing.serviceName=mcp-eu', '--set-json', `tracing.to=${JSON.stringify(to)}`);
    expect(stderr).toBe('');
    const data = configMap(objects);
    const otel = Object.keys(data).filter((k) => k.startsWith('OTEL_'));
    expect(otel.filter((k) => !TRACING_ENV_KEYS.includes(k))).toEqual([]);
    expect(tracingSettings(data)).toEqual({
      exporters: { otlp: { url: new URL('http://otel-collector.observability:4318/v1/traces'), protocol: 'http/protobuf' }, console: false },
      sampler: { name: 'parentbased_traceidratio', ratio: 0.1 },
      serviceName: 'mcp-eu',
    });
    expect(egress(objects)).toContainEqual({ ports: [{ port: 4318, protocol: 'TCP' }], to });
    // An https endpoint without a port: 443.
    const https = await render('--set', 'tracing.endpoint=https://otel.example.com');
    expect(egress(https.objects).filter((r) => r.ports.some((p) => p.port === 443))).toHaveLength(2);
  });

  it.each([
    ['tracing.endpoint=otel:4318', '/tracing/endpoint'],
    ['tracing.sampler=ratio', '/tracing/sampler'],
    ['tracing.samplerArg=10%', '/tracing/samplerArg'],
  ])('refuses %s, naming the value', async (set, where) => {
    const r = await render('--set', set);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(where);
  });

  it("Ory's values carry hydra/hydra.yml's and kratos/kratos.yml's tracing keys; provider and server_url are the operator's to set", () => {
    for (const [file, root, service] of [
      ['deploy/helm/values/hydra.yaml', 'hydra', 'hydra'],
      ['deploy/helm/values/kratos.yaml', 'kratos', 'kratos'],
    ] as const) {
      const values = parse(readFileSync(resolve(ROOT, file), 'utf8')) as Record<string, { config: { tracing: Record<string, any> } }>;
      const tracing = values[root]!.config.tracing;
      // Off until the operator sets provider (no `provider`: ory/x otelx makes a no-op tracer).
      expect(tracing, file).toEqual({ service_name: service, providers: { otlp: { sampling: { sampling_ratio: 1 } } } });
      const embedded = parse(readFileSync(resolve(ROOT, `${root}/${root}.yml`), 'utf8')) as { tracing: unknown };
      expect(embedded.tracing, `${root}/${root}.yml`).toEqual(tracing);
    }
  });
});
