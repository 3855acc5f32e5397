import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { startControlPlane, toolBinary, type ControlPlane } from '../../support/controlPlane.js';
import { ORY_CHARTS } from '../../support/oryCharts.js';

/**
 * Issue 28 #4, second bullet: the charts on a real Kubernetes API server, here.
 * A real etcd, kube-apiserver, kube-controller-manager and kube-scheduler
 * (v1.36.3, built from their Go modules) on 127.0.0.1, with kwok as the
 * kubelets (test/support/controlPlane.ts). Everything the API server, the
 * controllers and the scheduler do is real: admission, validation, RBAC,
 * Deployments → ReplicaSets → Pods, scheduling onto Nodes, Jobs, PDBs,
 * NetworkPolicies, helm's hooks and waits. What is simulated: kwok writes the
 * Pods' status (Running and Ready at once; a Job's Pods Succeeded), so no
 * image is pulled and no container runs, no probe is called, no NetworkPolicy
 * is enforced (no CNI), no Service routes traffic.
 *
 * The operator's sequence: Ory's Hydra and Kratos charts (unmodified, from
 * ../shared/vendor) with deploy/helm/values/*.yaml, then ours.
 */

const run = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const OUR_CHART = join(repoRoot, 'deploy/helm/hydra-mcp');

const durations: [string, number][] = [];
async function phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    const ms = Date.now() - t0;
    durations.push([name, ms]);
    console.log(`[phase] ${name}: ${(ms / 1000).toFixed(1)} s`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let cp: ControlPlane;
let helmBin: string;
let work: string;
let keepDir = false;

async function helm(args: string[], timeoutMs = 7 * 60_000): Promise<string> {
  try {
    const { stdout } = await run(helmBin, [...args, '--kubeconfig', cp.kubeconfigPath], {
      env: {
        ...process.env,
        HELM_CONFIG_HOME: join(work, 'helm/config'),
        HELM_CACHE_HOME: join(work, 'helm/cache'),
        HELM_DATA_HOME: join(work, 'helm/data'),
      },
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    keepDir = true;
    const ns = args[args.indexOf('-n') + 1];
    const why = ns && args.includes('-n') ? await diagnose(ns).catch((d) => `(no diagnosis: ${String(d)})`) : '';
    throw new Error(`helm ${args.slice(0, 3).join(' ')} failed: ${err.stderr || err.message}\n${why}`);
  }
}

/** What the cluster says about a namespace: its Pods not Ready and its Events. */
async function diagnose(ns: string): Promise<string> {
  const pods = await get<{ items: { metadata: { name: string }; spec: { nodeName?: string }; status: { phase: string; conditions?: { type: string; status: string; message?: string }[] } }[] }>(`/api/v1/namespaces/${ns}/pods`);
  const ev = await get<{ items: { involvedObject: { kind: string; name: string }; type: string; reason: string; message: string }[] }>(`/api/v1/namespaces/${ns}/events`);
  return [
    `Pods in ${ns}:`,
    ...pods.items.map((p) => `  ${p.metadata.name} ${p.status.phase} on ${p.spec.nodeName ?? '(unscheduled)'} ${(p.status.conditions ?? []).filter((c) => c.status !== 'True').map((c) => `${c.type}: ${c.message ?? ''}`).join('; ')}`),
    `Events in ${ns}:`,
    ...ev.items.slice(-25).map((e) => `  ${e.type} ${e.involvedObject.kind}/${e.involvedObject.name} ${e.reason}: ${e.message}`),
  ].join('\n');
}

/** GET, expecting 200. */
async function get<T = any>(path: string): Promise<T> {
  const res = await cp.api<T>('GET', path);
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(500);
  }
}

interface Deployment {
  metadata: { name: string; generation: number; labels?: Record<string, string> };
  spec: { replicas: number; selector: { matchLabels: Record<string, string> } };
  status: { observedGeneration?: number; readyReplicas?: number; updatedReplicas?: number; replicas?: number; availableReplicas?: number };
}
interface ReplicaSet {
  metadata: { name: string; labels: Record<string, string>; ownerReferences?: { kind: string; name: string }[] };
  spec: { replicas: number };
  status: { readyReplicas?: number; replicas: number };
}

const selector = (labels: Record<string, string>) => encodeURIComponent(Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(','));

async function deployments(ns: string): Promise<Deployment[]> {
  return (await get<{ items: Deployment[] }>(`/apis/apps/v1/namespaces/${ns}/deployments`)).items;
}

/** Every Deployment in the namespace at its replicas, all updated and ready, as the controller sees it. */
async function waitDeploymentsReady(ns: string, timeoutMs = 120_000): Promise<Deployment[]> {
  return waitFor(`Deployments in ${ns} ready`, timeoutMs, async () => {
    const ds = await deployments(ns);
    const done = ds.length > 0 && ds.every((d) =>
      (d.status.observedGeneration ?? 0) >= d.metadata.generation &&
      d.status.readyReplicas === d.spec.replicas &&
      d.status.updatedReplicas === d.spec.replicas &&
      d.status.replicas === d.spec.replicas);
    return done ? ds : undefined;
  });
}

/** The pod-template-hash of the Deployment's ReplicaSets that have pods. */
async function activeReplicaSets(ns: string, d: Deployment): Promise<ReplicaSet[]> {
  const rs = await get<{ items: ReplicaSet[] }>(`/apis/apps/v1/namespaces/${ns}/replicasets?labelSelector=${selector(d.spec.selector.matchLabels)}`);
  return rs.items.filter((r) => r.metadata.ownerReferences?.some((o) => o.kind === 'Deployment' && o.name === d.metadata.name) && r.spec.replicas > 0);
}

/** Names of the Jobs the job controller reported Completed (its Events outlive a Job helm deleted after its hook succeeded). */
async function completedJobs(ns: string): Promise<string[]> {
  const ev = await get<{ items: { involvedObject: { kind: string; name: string }; reason: string }[] }>(`/api/v1/namespaces/${ns}/events`);
  return [...new Set(ev.items.filter((e) => e.involvedObject.kind === 'Job' && e.reason === 'Completed').map((e) => e.involvedObject.name))];
}

async function createNamespace(ns: string) {
  const res = await cp.api('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  // Pods need the namespace's default ServiceAccount, which the controller manager adds.
  await waitFor(`ServiceAccount ${ns}/default`, 30_000, async () => (await cp.api('GET', `/api/v1/namespaces/${ns}/serviceaccounts/default`)).status === 200);
}

async function createSecret(ns: string, name: string, data: Record<string, string>) {
  const res = await cp.api('POST', `/api/v1/namespaces/${ns}/secrets`, {
    apiVersion: 'v1', kind: 'Secret', metadata: { name }, type: 'Opaque', stringData: data,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

/** The Deployment's Pods deleted (kwok's pod-delete stage finishes what the garbage collector starts). */
async function waitPodsGone(ns: string, labels: Record<string, string>) {
  await waitFor(`Pods in ${ns} gone`, 60_000, async () =>
    (await get<{ items: unknown[] }>(`/api/v1/namespaces/${ns}/pods?labelSelector=${selector(labels)}`)).items.length === 0);
}

/**
 * The harness's own chart: what ours needs proven, with nothing of ours in it
 * (a ConfigMap, a Deployment of 2 rolled by the ConfigMap's checksum, a PDB, a
 * NetworkPolicy, a pre-install/pre-upgrade hook Job).
 */
async function writeTinyChart(dir: string) {
  await mkdir(join(dir, 'templates'), { recursive: true });
  await writeFile(join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: tiny\nversion: 0.1.0\nappVersion: "1.0"\ntype: application\n');
  await writeFile(join(dir, 'values.yaml'), 'replicas: 2\ngreeting: hello\n');
  const labels = 'app.kubernetes.io/name: tiny\n    app.kubernetes.io/instance: {{ .Release.Name }}';
  const files: Record<string, string> = {
    'configmap.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  GREETING: {{ .Values.greeting | quote }}
`,
    'deployment.yaml': `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    ${labels}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      ${labels.replace('\n    ', '\n      ')}
  template:
    metadata:
      labels:
        ${labels.replace('\n    ', '\n        ')}
      annotations:
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
      containers:
        - name: app
          image: registry.invalid/tiny:1.0
          envFrom:
            - configMapRef:
                name: {{ .Release.Name }}-config
          ports:
            - containerPort: 8080
          readinessProbe:
            httpGet: { path: /healthz, port: 8080 }
          resources:
            requests: { cpu: 10m, memory: 16Mi }
            limits: { memory: 64Mi }
`,
    'pdb.yaml': `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .Release.Name }}
spec:
  minAvailable: 1
  selector:
    matchLabels:
      ${labels.replace('\n    ', '\n      ')}
`,
    'networkpolicy.yaml': `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .Release.Name }}
spec:
  podSelector:
    matchLabels:
      ${labels.replace('\n    ', '\n      ')}
  policyTypes: [Ingress, Egress]
  ingress:
    - ports: [{ port: 8080, protocol: TCP }]
  egress:
    - to: [{ namespaceSelector: {} }]
      ports: [{ port: 53, protocol: UDP }]
`,
    'job.yaml': `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      containers:
        - name: migrate
          image: registry.invalid/tiny:1.0
          args: [migrate]
`,
  };
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, 'templates', name), text);
}

/**
 * Install, wait, check, upgrade with a changed value, check the roll, uninstall:
 * the same proof for the harness chart and ours.
 */
async function proveChart(opts: {
  label: string;
  chart: string;
  release: string;
  ns: string;
  args: string[];
  upgradeArgs: string[];
  /** The Deployment that must reach 2 ready replicas and roll on upgrade. */
  deployment: string;
  expectJob?: string;
}) {
  const { label, chart, release, ns } = opts;
  await phase(`${label}: helm install --wait`, () =>
    helm(['install', release, chart, '-n', ns, ...opts.args, '--wait', '--wait-for-jobs', '--timeout', '5m']));
  const d0 = await phase(`${label}: Deployments ready`, async () => {
    const ds = await waitDeploymentsReady(ns);
    return ds.find((d) => d.metadata.name === opts.deployment)!;
  });
  expect(d0, `Deployment ${opts.deployment} in ${ns}`).toBeDefined();
  expect(d0.spec.replicas).toBe(2);
  expect(d0.status.readyReplicas).toBe(2);

  // The Pods: on distinct fake Nodes or not, each scheduled (spec.nodeName) and Ready by kwok.
  const pods = await get<{ items: { spec: { nodeName?: string }; status: { phase: string } }[] }>(
    `/api/v1/namespaces/${ns}/pods?labelSelector=${selector(d0.spec.selector.matchLabels)}`,
  );
  expect(pods.items.filter((p) => p.status.phase === 'Running' && p.spec.nodeName?.startsWith('kwok-node-'))).toHaveLength(2);

  if (opts.expectJob) {
    expect(await completedJobs(ns)).toContain(opts.expectJob);
  }

  // PDBs and NetworkPolicies: accepted by the API server (validated, stored)
  // wherever the chart puts them, and the disruption controller computed the
  // PDB's status over the Deployment's Pods.
  const manifest = parseAllDocuments(await helm(['get', 'manifest', release, '-n', ns]))
    .map((doc) => doc.toJSON() as { kind?: string; metadata?: { name: string; namespace?: string } } | null)
    .filter((o): o is { kind: string; metadata: { name: string; namespace?: string } } => !!o?.kind);
  const path = (o: (typeof manifest)[number]) => {
    const n = o.metadata.namespace ?? ns;
    return o.kind === 'PodDisruptionBudget'
      ? `/apis/policy/v1/namespaces/${n}/poddisruptionbudgets/${o.metadata.name}`
      : `/apis/networking.k8s.io/v1/namespaces/${n}/networkpolicies/${o.metadata.name}`;
  };
  const guarded = manifest.filter((o) => o.kind === 'PodDisruptionBudget' || o.kind === 'NetworkPolicy');
  expect(guarded.map((o) => o.kind)).toEqual(expect.arrayContaining(['PodDisruptionBudget', 'NetworkPolicy']));
  for (const o of guarded) expect((await cp.api('GET', path(o))).status, `${o.kind} ${o.metadata.name}`).toBe(200);
  console.log(`[${label}] accepted: ${guarded.map((o) => `${o.kind} ${o.metadata.namespace ?? ns}/${o.metadata.name}`).join(', ')}`);
  const pdbStatus = await waitFor('the PDB status', 30_000, async () => {
    const list = await get<{ items: { status?: { expectedPods?: number; currentHealthy?: number; disruptionsAllowed?: number } }[] }>(
      `/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets`,
    );
    return list.items.find((x) => x.status?.expectedPods === 2)?.status;
  });
  expect(pdbStatus.currentHealthy).toBe(2);
  expect(pdbStatus.disruptionsAllowed).toBeGreaterThanOrEqual(1);

  // Upgrade with a changed ConfigMap value: the pod template changes (checksum
  // annotation), so a new ReplicaSet takes over and the old one scales to zero.
  const before = await activeReplicaSets(ns, d0);
  expect(before).toHaveLength(1);
  const hashBefore = before[0]!.metadata.labels['pod-template-hash'];
  await phase(`${label}: helm upgrade --wait`, () =>
    helm(['upgrade', release, chart, '-n', ns, ...opts.args, ...opts.upgradeArgs, '--wait', '--wait-for-jobs', '--timeout', '5m']));
  const d1 = await phase(`${label}: rolled and ready`, async () => {
    await waitDeploymentsReady(ns);
    return waitFor('the old ReplicaSet scaled to zero', 60_000, async () => {
      const d = (await deployments(ns)).find((x) => x.metadata.name === opts.deployment)!;
      const rs = await activeReplicaSets(ns, d);
      return rs.length === 1 && rs[0]!.status.readyReplicas === 2 ? { d, rs: rs[0]! } : undefined;
    });
  });
  expect(d1.d.metadata.generation).toBeGreaterThan(d0.metadata.generation);
  expect(d1.d.status.observedGeneration).toBe(d1.d.metadata.generation);
  expect(d1.d.status.readyReplicas).toBe(2);
  expect(d1.rs.metadata.labels['pod-template-hash']).not.toBe(hashBefore);

  await phase(`${label}: helm uninstall --wait`, () => helm(['uninstall', release, '-n', ns, '--wait', '--timeout', '2m']));
  expect((await cp.api('GET', `/apis/apps/v1/namespaces/${ns}/deployments/${opts.deployment}`)).status).toBe(404);
  for (const o of guarded) expect((await cp.api('GET', path(o))).status, `${o.kind} ${o.metadata.name} after uninstall`).toBe(404);
  await waitPodsGone(ns, d0.spec.selector.matchLabels);
  // A hook Job is not part of the release: helm leaves it (and its Succeeded Pod)
  // unless its hook-delete-policy says hook-succeeded.
}

function printUsage(when: string) {
  const u = cp.usage();
  const rows = Object.entries(u).map(([c, x]) => `  ${c.padEnd(24)} ${x ? `RSS ${String(x.rssMiB).padStart(4)} MiB (peak ${String(x.peakRssMiB).padStart(4)}), CPU ${x.cpuSeconds.toFixed(1).padStart(5)} s` : 'not running'}`);
  const total = Object.values(u).reduce((a, x) => a + (x?.rssMiB ?? 0), 0);
  console.log(`[control-plane] resources ${when} (total RSS ${total} MiB):\n${rows.join('\n')}`);
}

describe('the charts on a real Kubernetes API server (etcd, kube-apiserver, controllers, scheduler; kwok nodes)', () => {
  beforeAll(async () => {
    helmBin = await toolBinary('helm');
    work = await mkdtemp(join(tmpdir(), 'hydra-mcp-helm-'));
    cp = await phase('control plane start', () => startControlPlane());
    const { stdout } = await run(helmBin, ['version', '--short']);
    console.log(`[control-plane] helm: ${stdout.trim()}`);
    printUsage('idle after start');
  });

  afterAll(async () => {
    if (cp) {
      printUsage('at the end');
      if (keepDir) console.log(`[control-plane] logs kept in ${cp.dir}/logs`);
      await cp.stop({ keepDir });
    }
    if (work && !keepDir) await rm(work, { recursive: true, force: true });
    console.log(`[phase] summary:\n${durations.map(([n, ms]) => `  ${n.padEnd(48)} ${(ms / 1000).toFixed(1).padStart(6)} s`).join('\n')}`);
  });

  it('the harness: a tiny chart installs, its hook Job completes, 2 replicas ready, PDB and NetworkPolicy accepted, an upgrade rolls, uninstall cleans up', async () => {
    expect(cp.versions['kube-apiserver']).toContain('v1.36.3');
    const chart = join(work, 'tiny');
    await writeTinyChart(chart);
    await createNamespace('tiny');
    await proveChart({
      label: 'tiny chart', chart, release: 'tiny', ns: 'tiny', args: [], upgradeArgs: ['--set', 'greeting=bonjour'],
      deployment: 'tiny', expectJob: 'tiny-migrate',
    });
  }, 15 * 60_000);

  it("Ory's Hydra and Kratos charts (unmodified, deploy/helm/values/*.yaml): the migration hook Jobs complete, the Deployments are ready", async () => {
    const ns = 'ory';
    await createNamespace(ns);
    const valuesFor = (name: 'hydra' | 'kratos') => ['-f', join(repoRoot, `deploy/helm/values/${name}.yaml`)];
    // The operator's Secrets, created before installing (the values files name
    // them: secret.enabled=false, nameOverride). The DSN is never dialled: no
    // container runs.
    await createSecret(ns, 'hydra-mcp-hydra', {
      dsn: 'postgres://hydra:secret@postgres:5432/hydra?sslmode=require',
      secretsSystem: 'a'.repeat(32),
      secretsCookie: 'b'.repeat(32),
    });
    await createSecret(ns, 'hydra-mcp-kratos', {
      dsn: 'postgres://kratos:secret@postgres:5432/kratos?sslmode=require',
      secretsDefault: 'c'.repeat(32),
      secretsCookie: 'd'.repeat(32),
      secretsCipher: 'e'.repeat(32),
    });
    for (const name of ['hydra', 'kratos'] as const) {
      // Straight from the vendored, read-only copy: its ory-commons (and
      // hydra-maester) dependencies are already packed in its charts/ dir.
      await phase(`ory ${name}: helm install --wait`, () =>
        helm([
          'install', name, join(ORY_CHARTS, name), '-n', ns, ...valuesFor(name),
          '--set', `${name}.automigration.enabled=true`, '--set', `${name}.automigration.type=job`,
          '--wait', '--wait-for-jobs', '--timeout', '5m',
        ]));
    }
    const ready = await phase('ory: Deployments ready', () => waitDeploymentsReady(ns));
    const names = ready.map((d) => d.metadata.name).sort();
    expect(names).toEqual(expect.arrayContaining(['hydra', 'kratos']));
    for (const d of ready) expect(d.status.readyReplicas, d.metadata.name).toBe(d.spec.replicas);
    // Both migrations ran as hook Jobs to completion (Kratos's is deleted on success; its Events stay).
    const jobs = await completedJobs(ns);
    expect(jobs).toEqual(expect.arrayContaining(['hydra-automigrate', 'kratos-automigrate']));
    const hydraJob = await get<{ status: { succeeded?: number; conditions?: { type: string; status: string }[] } }>(
      `/apis/batch/v1/namespaces/${ns}/jobs/hydra-automigrate`,
    );
    expect(hydraJob.status.succeeded).toBe(1);
    expect(hydraJob.status.conditions?.find((c) => c.type === 'Complete')?.status).toBe('True');
    console.log(`[ory] Deployments: ${ready.map((d) => `${d.metadata.name} ${d.status.readyReplicas}/${d.spec.replicas}`).join(', ')}; completed Jobs: ${jobs.join(', ')}`);
  }, 15 * 60_000);

  it("our chart deploy/helm/hydra-mcp with ci/production-values.yaml, after Ory's: installs, 2 replicas ready, PDB and NetworkPolicies accepted, a settings change rolls the pods, uninstall cleans up", async () => {
    // The namespace and release production-values.yaml names (Ory's releases
    // "hydra" and "kratos" are in "ory", installed by the test before).
    const ns = 'mcp';
    await createNamespace(ns);
    // oryNetworkPolicy puts its policies in Ory's namespace (made by the test before, unless filtered out).
    if ((await cp.api('GET', '/api/v1/namespaces/ory')).status === 404) await createNamespace('ory');
    // The operator's Secret (secret.existingSecret), created before installing;
    // the database URL is never dialled: no container runs.
    await createSecret(ns, 'hydra-mcp-secrets', {
      session_secret: 'f'.repeat(64),
      database_url: 'postgres://hydra_mcp:secret@postgres:5432/hydra_mcp?sslmode=require',
    });
    await proveChart({
      label: 'hydra-mcp chart',
      chart: OUR_CHART,
      release: 'hydra-mcp',
      ns,
      args: [
        '-f', join(OUR_CHART, 'ci/production-values.yaml'),
        // Not in this cluster: the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs.
        '--set', 'serviceMonitor.enabled=false', '--set', 'prometheusRule.enabled=false',
        // A fixed 2 replicas (no metrics server for the HPA), one of which may be disrupted.
        '--set', 'autoscaling.enabled=false', '--set', 'replicaCount=2', '--set', 'podDisruptionBudget.minAvailable=1',
      ],
      // A ConfigMap setting: the checksum/config annotation changes the pod template.
      upgradeArgs: ['--set', 'config.logLevel=debug'],
      deployment: 'hydra-mcp',
    });
  }, 15 * 60_000);
});
