/**
 * Ory's own Helm charts (hydra, kratos; ory/k8s v0.62.1, vendored unmodified
 * in ../shared/vendor) rendered with our values (deploy/helm/values/), and the
 * rendered workloads run as a pod would run them: the real binary, the
 * container's arguments and environment, its ConfigMaps written where the
 * pod mounts them, and Secret keys from a stand-in for the operator's Secret.
 * For test/e2e/deploy/oryValues.test.ts.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { runToCompletion, spawnService, waitUntilReady } from '../../scripts/goService.js';

const run = promisify(execFile);

/** A path in the repository, from its root. */
export const repoPath = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));

const ORY_K8S = 'vendor/ory-k8s-v0.62.1/helm/charts';

/**
 * Ory's charts, unmodified (ory/k8s tag v0.62.1): hydra, kratos, ory-commons,
 * hydra-maester. The machine keeps them beside the working copy, in
 * ../shared/vendor; a clone elsewhere on it finds them at /work/shared, or
 * where ORY_K8S_CHARTS says. Missing everywhere: the tests fail naming the
 * paths tried (no chart repository is reachable to stand in).
 */
export const ORY_CHARTS = (() => {
  const tried = [process.env.ORY_K8S_CHARTS, repoPath(`../shared/${ORY_K8S}`), `/work/shared/${ORY_K8S}`].filter((p): p is string => !!p);
  return tried.find((p) => existsSync(join(p, 'hydra', 'Chart.yaml'))) ?? `(Ory's charts not found; tried ${tried.join(', ')})`;
})();

/** The cached helm v4 binary (deploy/tools/build.sh helm; the last line it prints). */
export async function helmBinary(): Promise<string> {
  const { stdout } = await run('bash', [repoPath('deploy/tools/build.sh'), 'helm'], { maxBuffer: 16 << 20 });
  const path = stdout.trim().split('\n').pop();
  if (!path) throw new Error('deploy/tools/build.sh helm printed no path');
  return path;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  volumeMounts?: { name: string; mountPath: string }[];
  ports?: { name: string; containerPort: number }[];
}
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[] | null;
  volumes?: { name: string; configMap?: { name: string } }[];
  automountServiceAccountToken?: boolean;
}
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> | null };
  data?: Record<string, string>;
  spec?: { template?: { spec: PodSpec }; rules?: { host: string }[]; ports?: { port: number }[] };
}

/** `helm template <release> <ORY_CHARTS>/<chart> -f <values>…`: every rendered object. */
export async function renderChart(
  helm: string,
  chart: 'hydra' | 'kratos',
  release: string,
  valuesFiles: string[],
  set: string[] = [],
): Promise<K8sObject[]> {
  const args = ['template', release, join(ORY_CHARTS, chart), ...valuesFiles.flatMap((f) => ['-f', f]), ...set.flatMap((s) => ['--set', s])];
  const { stdout } = await run(helm, args, { maxBuffer: 16 << 20, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' } });
  const docs = parseAllDocuments(stdout).map((d) => {
    if (d.errors.length) throw new Error(`helm template ${chart}: ${d.errors[0]!.message}`);
    return d.toJS() as K8sObject | null;
  });
  return docs.filter((d): d is K8sObject => d !== null);
}

/** The one object of this kind (and name, if given); throws when there is none or several. */
export function only(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found[0]!;
}

/** A workload's pod spec and its first container. */
export function podOf(workload: K8sObject): { pod: PodSpec; container: Container } {
  const pod = workload.spec?.template?.spec;
  if (!pod?.containers[0]) throw new Error(`${workload.kind}/${workload.metadata.name} has no container`);
  return { pod, container: pod.containers[0] };
}

/**
 * Write each ConfigMap volume the container mounts into `dir/<volume>/`, as
 * Kubernetes would at its mountPath; returns a function that maps a path in
 * the container to the local one.
 */
export function mountConfigMaps(objects: K8sObject[], pod: PodSpec, container: Container, dir: string): (path: string) => string {
  const mounts: [string, string][] = [];
  for (const m of container.volumeMounts ?? []) {
    const volume = pod.volumes?.find((v) => v.name === m.name);
    if (!volume?.configMap) continue;
    const cm = only(objects, 'ConfigMap', volume.configMap.name);
    const local = join(dir, m.name);
    mkdirSync(local, { recursive: true });
    for (const [file, content] of Object.entries(cm.data ?? {})) writeFileSync(join(local, file), content);
    mounts.push([m.mountPath.replace(/\/+$/, ''), local]);
  }
  return (path) => {
    for (const [mountPath, local] of mounts) if (path === mountPath || path.startsWith(`${mountPath}/`)) return local + path.slice(mountPath.length);
    return path;
  };
}

/**
 * The container's environment as the kubelet builds it: literal values, and
 * secretKeyRef values from `secrets` (Secret name → key → value). A
 * non-optional key missing from its Secret throws (the pod would not start).
 */
export function containerEnv(container: Container, secrets: Record<string, Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    const ref = e.valueFrom?.secretKeyRef;
    if (!ref) continue;
    const value = secrets[ref.name]?.[ref.key];
    if (value !== undefined) env[e.name] = value;
    else if (!ref.optional) throw new Error(`${container.name}: env ${e.name} needs key ${ref.key} of Secret ${ref.name}`);
  }
  return env;
}

/** Only what a process needs from our environment (a developer's DSN, SERVE_*… must not leak in). */
export const baseEnv = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' });

/** Run a container's command (its first word is the Ory binary) with `binary` to completion, e.g. a migration Job. */
export async function runContainer(binary: string, container: Container, args: string[], env: Record<string, string>, log: (line: string) => void): Promise<void> {
  await runToCompletion(binary, args, { name: container.name, env: { ...baseEnv(), ...env }, log });
}

export interface RunningContainer {
  /** The process's last lines, for error messages. */
  recent(): string;
  stop(): Promise<void>;
}

/**
 * Start a container's server process with `binary` and wait until every URL
 * in `readyUrls` answers 200 (throws, with its last lines, if it exits first
 * or the deadline passes).
 */
export async function startContainer(
  binary: string,
  container: Container,
  args: string[],
  env: Record<string, string>,
  readyUrls: string[],
  opts: { log: (line: string) => void; readyTimeoutMs?: number },
): Promise<RunningContainer> {
  const proc = spawnService(binary, args, { name: container.name, env: { ...baseEnv(), ...env }, log: opts.log });
  const stop = () => proc.stop(5000);
  try {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 90_000);
    for (const url of readyUrls) await waitUntilReady(url, deadline, { name: container.name, exited: proc.exited });
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n--- last lines ---\n${proc.recent()}`);
  }
  return { recent: proc.recent, stop };
}

/** Every leaf of a parsed YAML/JSON document as `a.b.c` → value (arrays are leaves). */
export function flatten(doc: unknown, prefix = ''): Record<string, unknown> {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return { [prefix]: doc };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) Object.assign(out, flatten(v, prefix ? `${prefix}.${k}` : k));
  return out;
}
