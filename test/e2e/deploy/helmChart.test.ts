import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { helm, kubeconform, kubernetesSchemas, KUBERNETES_VERSION, kubeScore, parseManifests, toolBinary } from '../../support/kubeTools.js';

/**
 * deploy/helm/hydra-mcp (issue 28 #1) checked offline with the real tools,
 * built from their Go modules and cached (deploy/tools/): Helm v4 lints and
 * renders it, kubeconform validates every rendered object strictly against
 * schemas generated from Kubernetes v1.36.3's own OpenAPI document, kube-score
 * scores it, and wrong values are refused naming the value. Installing it on a
 * real API server is another test's job.
 */

const ROOT = resolve(import.meta.dirname, '../../..');
const CHART = 'deploy/helm/hydra-mcp';
const VALUES = { required: `${CHART}/ci/required-values.yaml`, production: `${CHART}/ci/production-values.yaml` } as const;
const KUBE_VERSION = KUBERNETES_VERSION.slice(1);

/**
 * kube-score findings left on purpose, each with why (everything else it
 * reports must pass).
 */
const KUBE_SCORE_IGNORED = [
  // uid/gid 1000 is the image's `node` user (Dockerfile USER node), which owns /data; the check
  // wants > 10000 against host-uid collisions. podSecurityContext.runAsUser/runAsGroup raise it.
  'container-security-context-user-group-id',
  // Releases are immutable tags or a digest (image.digest): IfNotPresent spares a registry round
  // trip per restart and keeps pods restartable in a registry outage; image.pullPolicy sets Always.
  'container-image-pull-policy',
];
// Also ignored, by annotation on the object: networkpolicy-targets-pod on the oryNetworkPolicy
// objects, whose pods are Ory's release's, never in this chart's output.

function template(valuesFile: string | undefined, ...args: string[]) {
  return helm(['template', 'mcp', CHART, '--namespace', 'mcp', '--kube-version', KUBE_VERSION, ...(valuesFile ? ['-f', valuesFile] : []), ...args]);
}

async function render(valuesFile: string, ...args: string[]) {
  const r = await template(valuesFile, ...args);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return { text: r.stdout, objects: parseManifests(r.stdout) };
}

const find = (objects: Array<Record<string, any>>, kind: string, name?: string) => objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));

describe('Helm chart deploy/helm/hydra-mcp', () => {
  let schemas: string;
  const timings: string[] = [];

  beforeAll(async () => {
    const started = performance.now();
    await Promise.all([toolBinary('helm'), toolBinary('kubeconform'), toolBinary('kube-score')]);
    schemas = await kubernetesSchemas();
    timings.push(`tools and schemas ready in ${Math.round(performance.now() - started)} ms`);
  });

  it('Chart.yaml: apiVersion v2, appVersion is package.json version, and the image tag defaults to it', async () => {
    const chart = parse(readFileSync(join(ROOT, CHART, 'Chart.yaml'), 'utf8'));
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(chart.apiVersion).toBe('v2');
    expect(chart.appVersion).toBe(pkg.version);
    const { objects } = await render(VALUES.required);
    expect(find(objects, 'Deployment')[0]!.spec.template.spec.containers[0].image).toBe(`ghcr.io/hydra-mcp/hydra-mcp:${pkg.version}`);
  });

  it.each(Object.entries(VALUES))('helm lint --strict passes with the %s values', async (_name, file) => {
    const r = await helm(['lint', '--strict', CHART, '-f', file, '--kube-version', KUBE_VERSION]);
    expect(r.stdout + r.stderr).toContain('0 chart(s) failed');
    expect(r.code).toBe(0);
  });

  it('helm lint --strict on the bare defaults names each required value', async () => {
    const r = await helm(['lint', '--strict', CHART]);
    expect(r.code).not.toBe(0);
    for (const path of ['/config/publicBaseUrl', '/config/hydra/publicUrl', '/secret/existingSecret']) expect(r.stdout + r.stderr).toContain(path);
  });

  it.each(Object.entries(VALUES))('with the %s values every rendered object is valid for Kubernetes v1.36.3 (kubeconform -strict)', async (_name, file) => {
    const { text, objects } = await render(file);
    const r = await kubeconform(text, schemas);
    const report = JSON.parse(r.stdout) as { resources: unknown[]; summary: Record<string, number> };
    expect(report.resources).toEqual([]);
    // Every object checked, the ServiceMonitor (a CRD) included, against its minimal schema: none skipped.
    expect(report.summary).toEqual({ valid: objects.length, invalid: 0, errors: 0, skipped: 0 });
    expect(r.code).toBe(0);
    timings.push(`kubeconform ${_name}: ${objects.length} objects in ${r.ms} ms`);
  });

  it('the generated schemas are strict: an unknown field or a wrong type is refused', async () => {
    const { objects } = await render(VALUES.required);
    const deployment = structuredClone(find(objects, 'Deployment')[0]!);
    deployment.spec.template.spec.containers[0].securityContext.readOnlyRootFS = true;
    deployment.spec.template.spec.containers[0].ports[0].containerPort = '3000';
    const r = await kubeconform(JSON.stringify(deployment), schemas);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain("additional properties 'readOnlyRootFS' not allowed");
    expect(r.stdout).toContain('/ports/0/containerPort');
  });

  it.each(Object.entries(VALUES))('kube-score passes the %s render (optional seccomp check on), ignoring only the justified checks', async (_name, file) => {
    const { text } = await render(file);
    const r = await kubeScore(text, ['--output-format', 'ci', '--enable-optional-test', 'container-seccomp-profile', ...KUBE_SCORE_IGNORED.flatMap((t) => ['--ignore-test', t])]);
    const findings = r.stdout.split('\n').filter((l) => /^\[(CRITICAL|WARNING)\]/.test(l));
    expect(findings).toEqual([]);
    expect(r.code).toBe(0);
    timings.push(`kube-score ${_name}: ${r.ms} ms`);
  });

  it('Deployment: secrets only as *_FILE paths from the mounted Secret, restricted security context, probes on /healthz and /readyz', async () => {
    const { objects } = await render(VALUES.required);
    const pod = find(objects, 'Deployment')[0]!.spec.template.spec;
    const [container] = pod.containers;
    expect(container.command).toBeUndefined();
    expect(container.args).toBeUndefined();
    expect(container.env).toEqual([
      { name: 'SESSION_SECRET_FILE', value: '/run/secrets/hydra-mcp/session_secret' },
      { name: 'DATABASE_URL_FILE', value: '/run/secrets/hydra-mcp/database_url' },
    ]);
    expect(pod.volumes).toContainEqual({ name: 'secrets', secret: { secretName: 'hydra-mcp', defaultMode: 0o440 } });
    const configMap = find(objects, 'ConfigMap')[0]!.data;
    for (const secret of ['SESSION_SECRET', 'DATABASE_URL', 'CONNECTION_KEYS']) expect(configMap[secret]).toBeUndefined();
    expect(configMap).toMatchObject({ NODE_ENV: 'production', PUBLIC_BASE_URL: 'https://mcp.example.com', HYDRA_PUBLIC_URL: 'https://auth.example.com', HYDRA_ADMIN_URL: 'http://hydra-admin.mcp.svc.cluster.local:4445', METRICS_HOST: '0.0.0.0' });
    expect(pod).toMatchObject({ automountServiceAccountToken: false, securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } } });
    expect(container.securityContext).toEqual({ runAsNonRoot: true, privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(container.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).toEqual(['/tmp', '/run/secrets/hydra-mcp']);
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(find(objects, 'Deployment')[0]!.spec.replicas).toBe(2);
    expect(find(objects, 'PodDisruptionBudget')[0]!.spec.minAvailable).toBe(1);
    expect(find(objects, 'HorizontalPodAutoscaler')).toEqual([]);
    expect(find(objects, 'ServiceAccount')[0]!.automountServiceAccountToken).toBe(false);
  });

  it('the routes the probes use exist in src/app', () => {
    const routes = readFileSync(join(ROOT, 'src/app/routes.ts'), 'utf8');
    expect(routes).toContain("app.get('/healthz'");
    expect(routes).toContain("app.get('/readyz'");
  });

  it('production: HPA without a fixed replica count, PDB, Kratos URLs, and the Ory-side policy opening admin ports to our pods only', async () => {
    const { objects } = await render(VALUES.production);
    expect(find(objects, 'Deployment')[0]!.spec.replicas).toBeUndefined();
    expect(find(objects, 'HorizontalPodAutoscaler')[0]!.spec).toMatchObject({ minReplicas: 3, maxReplicas: 10 });
    expect(find(objects, 'ConfigMap')[0]!.data).toMatchObject({
      IDENTITY: 'kratos',
      HYDRA_ADMIN_URL: 'http://hydra-admin.ory.svc.cluster.local:4445',
      KRATOS_ADMIN_URL: 'http://kratos-admin.ory.svc.cluster.local:80',
    });
    const hydraPolicy = find(objects, 'NetworkPolicy', 'mcp-hydra-mcp-hydra-admin')[0]!;
    expect(hydraPolicy.metadata.namespace).toBe('ory');
    // The labels Ory's hydra chart v0.62.1 puts on its pods (../shared/vendor/ory-k8s-v0.62.1).
    expect(hydraPolicy.spec.podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/name': 'hydra', 'app.kubernetes.io/instance': 'hydra' } });
    expect(hydraPolicy.spec.ingress[0]).toEqual({ ports: [{ port: 4444, protocol: 'TCP' }] });
    expect(hydraPolicy.spec.ingress[1].ports).toEqual([{ port: 4445, protocol: 'TCP' }]);
    expect(hydraPolicy.spec.ingress[1].from[0]).toEqual({
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'mcp' } },
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'hydra-mcp', 'app.kubernetes.io/instance': 'mcp' } },
    });
    expect(find(objects, 'NetworkPolicy', 'mcp-hydra-mcp-kratos-admin')[0]!.spec.ingress[1].ports).toEqual([{ port: 4434, protocol: 'TCP' }]);
    const ours = find(objects, 'NetworkPolicy', 'mcp-hydra-mcp')[0]!.spec;
    expect(ours.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(ours.egress.flatMap((r: { ports: Array<{ port: number }> }) => r.ports.map((p) => p.port))).toEqual([53, 53, 5432, 4445, 4444, 4434, 4433, 443, 443]);
  });

  it('prometheusRule.enabled serves deploy/prometheus/alerts.yml unchanged as a PrometheusRule (Prometheus templates left to Prometheus); off by default', async () => {
    const rules = parse(readFileSync(join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8'));
    const { objects } = await render(VALUES.production);
    const [rule] = find(objects, 'PrometheusRule');
    expect(rule!.metadata.labels.release).toBe('kube-prometheus-stack');
    expect(rule!.spec).toEqual(rules);
    expect(JSON.stringify(rule!.spec)).toContain('{{ $labels.instance }}');
    expect(find((await render(VALUES.required)).objects, 'PrometheusRule')).toEqual([]);
  });

  it('a settings or secret change rolls the pods (checksum annotations)', async () => {
    const annotations = async (...args: string[]) => find((await render(VALUES.required, ...args)).objects, 'Deployment')[0]!.spec.template.metadata.annotations;
    const base = await annotations();
    expect((await annotations('--set', 'config.logLevel=debug'))['checksum/config']).not.toBe(base['checksum/config']);
    const secretArgs = ['--set', 'secret.existingSecret=', '--set', 'secret.create=true', '--set', 'secret.values.databaseUrl=postgres://u:p@db/x'];
    const one = await annotations(...secretArgs, '--set', `secret.values.sessionSecret=${'a'.repeat(32)}`);
    const two = await annotations(...secretArgs, '--set', `secret.values.sessionSecret=${'b'.repeat(32)}`);
    expect(one['checksum/secret']).not.toBe(two['checksum/secret']);
    expect(one['checksum/config']).toBe(two['checksum/config']);
  });

  it('SQLite with one replica: /data on an emptyDir, no DATABASE_URL_FILE, no PodDisruptionBudget', async () => {
    const { objects } = await render(VALUES.required, '--set', 'database.type=sqlite', '--set', 'replicaCount=1');
    const pod = find(objects, 'Deployment')[0]!.spec.template.spec;
    expect(pod.containers[0].env.map((e: { name: string }) => e.name)).toEqual(['SESSION_SECRET_FILE']);
    expect(pod.volumes).toContainEqual({ name: 'data', emptyDir: { sizeLimit: '1Gi' } });
    expect(find(objects, 'ConfigMap')[0]!.data.DATABASE_PATH).toBe('/data/hydra-mcp.sqlite');
    expect(find(objects, 'PodDisruptionBudget')).toEqual([]);
  });

  it('development: true accepts a loopback http:// URL (NODE_ENV=development)', async () => {
    const { objects } = await render(VALUES.required, '--set', 'development=true', '--set', 'config.publicBaseUrl=http://127.0.0.1:3000', '--set', 'config.hydra.publicUrl=http://127.0.0.1:4444');
    expect(find(objects, 'ConfigMap')[0]!.data).toMatchObject({ NODE_ENV: 'development', PUBLIC_BASE_URL: 'http://127.0.0.1:3000' });
  });

  // Each wrong value is refused with a message naming it: by values.schema.json, or by templates/_validate.tpl.
  it.each([
    ['an http:// publicBaseUrl in production', ['--set', 'config.publicBaseUrl=http://mcp.example.com'], [/'\/config\/publicBaseUrl': 'http:\/\/mcp\.example\.com' does not match pattern '\^https:/]],
    ['an http:// Hydra public URL in production', ['--set', 'config.hydra.publicUrl=http://hydra-public:4444'], [/\/config\/hydra\/publicUrl/]],
    ['no secret name (and no chart-made Secret)', ['--set', 'secret.existingSecret='], [/'\/secret\/existingSecret': minLength: got 0, want 1/]],
    ['a chart-made Secret with a short session secret and no database URL', ['--set', 'secret.existingSecret=', '--set', 'secret.create=true', '--set', 'secret.values.sessionSecret=short'], [/\/secret\/values\/sessionSecret': minLength: got 5, want 32/, /\/secret\/values\/databaseUrl/]],
    ['replicas 0 (with the default PDB)', ['--set', 'replicaCount=0'], [/'\/replicaCount': minimum: got 0, want 1/]],
    ['replicas 0 past the schema (--skip-schema-validation)', ['--set', 'replicaCount=0', '--skip-schema-validation'], [/replicaCount: must be at least 1/]],
    ['a PDB minAvailable not below the replicas', ['--set', 'podDisruptionBudget.minAvailable=2'], [/podDisruptionBudget\.minAvailable \(2\) must be below the replicas \(replicaCount = 2\)/]],
    ['a PDB minAvailable not below the autoscaler minimum', ['--set', 'autoscaling.enabled=true', '--set', 'autoscaling.minReplicas=2', '--set', 'podDisruptionBudget.minAvailable=2'], [/autoscaling\.minReplicas = 2/]],
    ['sqlite with replicas 2', ['--set', 'database.type=sqlite'], [/database\.type sqlite allows one replica only \(replicaCount 2\)/]],
    ['sqlite with autoscaling', ['--set', 'database.type=sqlite', '--set', 'replicaCount=1', '--set', 'autoscaling.enabled=true'], [/database\.type sqlite allows one replica only \(replicaCount 1, autoscaling\.enabled\)/]],
    ['a string for replicas', ['--set-string', 'replicaCount=two'], [/'\/replicaCount': got string, want integer/]],
    ['legacy SSE over two replicas without affinity', ['--set', 'config.legacySse=on'], [/config\.legacySse on with more than one replica needs session affinity/]],
    ['a negative stream resume time', ['--set', 'config.streamResumeSeconds=-1'], [/\/config\/streamResumeSeconds': minimum: got -1, want 0/]],
    ['identity kratos without its public URL', ['--set', 'config.identity=kratos'], [/config\.kratos\.publicUrl: required with config\.identity kratos/]],
    ['a secret smuggled in as a plain variable', ['--set', 'config.extraEnv.SESSION_SECRET=x'], [/'\/config\/extraEnv\/SESSION_SECRET': false schema/]],
    ['a misspelt value', ['--set', 'replicas=3'], [/additional properties 'replicas' not allowed/]],
    ['the image tag latest', ['--set', 'image.tag=latest'], [/\/image\/tag/]],
  ] as Array<[string, string[], RegExp[]]>)('refuses %s, naming the value', async (_case, args, messages) => {
    const r = await template(VALUES.required, ...args);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    for (const m of messages) expect(r.stderr).toMatch(m);
  });

  it('reports its timings', () => {
    console.log(`helmChart.test.ts: ${timings.join('; ')}`);
  });
});
