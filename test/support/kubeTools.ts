import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * The Kubernetes tools the chart's tests run (deploy/tools/: built from their
 * Go modules once, cached), and the JSON schemas kubeconform validates
 * against, generated offline from the Kubernetes module's OpenAPI document.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const CACHE = process.env.HYDRA_MCP_CACHE ?? join(homedir(), '.cache', 'hydra-mcp');

/** Built by deploy/tools/build.sh (the control plane's binaries are started by test/support/controlPlane.ts). */
export type Tool = 'helm' | 'kubeconform' | 'kube-score' | 'promtool' | 'prometheus' | 'jaeger';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time, milliseconds. */
  ms: number;
}

/** Run `file` with `args` (stdin from `input`); resolves with its exit code, never rejects on a non-zero one. */
export function run(file: string, args: readonly string[], options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  const started = performance.now();
  return new Promise((done, fail) => {
    const child = execFile(file, [...args], { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const ms = Math.round(performance.now() - started);
      if (err && typeof err.code !== 'number') return fail(err);
      done({ code: err ? (err.code as number) : 0, stdout, stderr, ms });
    });
    child.stdin?.end(options.input ?? '');
  });
}

const binaries = new Map<Tool, Promise<string>>();

/** The cached binary of `name` (deploy/tools/build.sh prints its path last; a cache hit is instant). */
export function toolBinary(name: Tool): Promise<string> {
  let found = binaries.get(name);
  if (!found) {
    found = run('bash', [join(ROOT, 'deploy/tools/build.sh'), name]).then((r) => {
      const path = r.stdout.trim().split('\n').pop() ?? '';
      if (r.code !== 0 || !existsSync(path)) throw new Error(`deploy/tools/build.sh ${name} failed (${r.code}):\n${r.stderr.slice(-2000)}`);
      return path;
    });
    binaries.set(name, found);
  }
  return found;
}

// Helm reads and writes its config, cache and data under these: one private set per test run.
let helmHome: string | undefined;
function helmEnv(): NodeJS.ProcessEnv {
  helmHome ??= mkdtempSync(join(tmpdir(), 'helm-home-'));
  return { ...process.env, HELM_CACHE_HOME: join(helmHome, 'cache'), HELM_CONFIG_HOME: join(helmHome, 'config'), HELM_DATA_HOME: join(helmHome, 'data') };
}

/** `helm <args>`, with Helm's homes in a private temporary directory. */
export async function helm(args: readonly string[]): Promise<RunResult> {
  return run(await toolBinary('helm'), args, { env: helmEnv() });
}

/** `kubeconform -strict` over `manifests` (stdin) against the schemas in `schemaDir` only: nothing is fetched. */
export async function kubeconform(manifests: string, schemaDir: string, extraArgs: readonly string[] = []): Promise<RunResult> {
  const location = join(schemaDir, '{{ .ResourceKind }}{{ .KindSuffix }}.json');
  return run(await toolBinary('kubeconform'), ['-strict', '-summary', '-output', 'json', '-schema-location', location, ...extraArgs, '-'], { input: manifests });
}

/** `kube-score score` over `manifests` (stdin). */
export async function kubeScore(manifests: string, args: readonly string[] = []): Promise<RunResult> {
  return run(await toolBinary('kube-score'), ['score', ...args, '-'], { input: manifests });
}

/** The documents of a multi-document YAML stream, empty ones dropped. */
export function parseManifests(text: string): Array<Record<string, any>> {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length) throw new Error(`YAML: ${d.errors[0]!.message}`);
      return d.toJS() as Record<string, any> | null;
    })
    .filter((d): d is Record<string, any> => d !== null && typeof d === 'object');
}

// --- JSON schemas for kubeconform, from swagger.json ----------------------------------

export const KUBERNETES_VERSION = 'v1.36.3';

/** `$(go env GOMODCACHE)/k8s.io/kubernetes@<version>/api/openapi-spec/swagger.json`, downloaded by `go mod download` when absent. */
async function swaggerPath(version: string): Promise<string> {
  const goEnv = await run('go', ['env', 'GOMODCACHE']);
  if (goEnv.code !== 0) throw new Error(`go env GOMODCACHE failed: ${goEnv.stderr}`);
  const path = join(goEnv.stdout.trim(), `k8s.io/kubernetes@${version}`, 'api/openapi-spec/swagger.json');
  if (!existsSync(path)) {
    // The wrapper module (deploy/tools/kubernetes) pins this very version.
    const dl = await run('go', ['mod', 'download', `k8s.io/kubernetes@${version}`], { cwd: join(ROOT, 'deploy/tools/kubernetes') });
    if (dl.code !== 0 || !existsSync(path)) throw new Error(`cannot find ${path} (go mod download: ${dl.stderr.slice(-1000)})`);
  }
  return path;
}

type Schema = Record<string, any>;
type Swagger = { definitions: Record<string, Schema> };

const QUANTITY = 'io.k8s.apimachinery.pkg.api.resource.Quantity';

/**
 * One definition made strict and self-describing: descriptions and `x-`
 * extensions dropped, `additionalProperties: false` on every object with
 * properties (what `kubeconform -strict` relies on), int-or-string and
 * Quantity as the string-or-number they are in YAML. Records every `$ref`.
 */
function strictify(node: any, refs: Set<string>): any {
  if (Array.isArray(node)) return node.map((n) => strictify(n, refs));
  if (node === null || typeof node !== 'object') return node;
  if (node.format === 'int-or-string') return { oneOf: [{ type: 'string' }, { type: 'integer' }] };
  const out: Schema = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'description' || k.startsWith('x-')) continue;
    if (k === '$ref') refs.add(String(v).replace('#/definitions/', ''));
    // A property named like a keyword is still a property: recurse into every value alike.
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Schema).map(([p, s]) => [p, strictify(s, refs)])) : strictify(v, refs);
  }
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

/** `name` with every definition it reaches, as one standalone schema (`$ref`s resolve inside the file). */
function standalone(swagger: Swagger, name: string, root: Schema): Schema {
  const definitions: Record<string, Schema> = {};
  const pending = new Set<string>();
  const top = strictify(root, pending);
  while (pending.size) {
    const [next] = pending;
    pending.delete(next!);
    if (definitions[next!]) continue;
    const def = swagger.definitions[next!];
    if (!def) throw new Error(`${name}: unresolvable $ref ${next}`);
    const refs = new Set<string>();
    definitions[next!] = next === QUANTITY ? { oneOf: [{ type: 'string' }, { type: 'number' }] } : strictify(def, refs);
    for (const r of refs) if (!definitions[r]) pending.add(r);
  }
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...top, definitions };
}

/** kubeconform's file name for a group/version/kind: `{{ .ResourceKind }}{{ .KindSuffix }}.json`, e.g. deployment-apps-v1.json. */
export function schemaFileName(group: string, version: string, kind: string): string {
  const suffix = group ? `-${group.split('.')[0]!.toLowerCase()}-${version.toLowerCase()}` : `-${version.toLowerCase()}`;
  return `${kind.toLowerCase()}${suffix}.json`;
}

/** Write one standalone-strict schema per group/version/kind of `swagger` into `dir`; returns how many. */
export function generateSchemas(swagger: Swagger, dir: string): number {
  let count = 0;
  for (const [name, def] of Object.entries(swagger.definitions)) {
    const gvks = def['x-kubernetes-group-version-kind'] as Array<{ group: string; version: string; kind: string }> | undefined;
    if (!gvks) continue;
    const schema = JSON.stringify(standalone(swagger, name, def));
    for (const { group, version, kind } of gvks) {
      writeFileSync(join(dir, schemaFileName(group, version, kind)), schema);
      count++;
    }
  }
  // ServiceMonitor and PrometheusRule are the Prometheus Operator's CRDs, not in Kubernetes's document.
  writeFileSync(join(dir, schemaFileName('monitoring.coreos.com', 'v1', 'ServiceMonitor')), JSON.stringify(serviceMonitorSchema(swagger)));
  writeFileSync(join(dir, schemaFileName('monitoring.coreos.com', 'v1', 'PrometheusRule')), JSON.stringify(prometheusRuleSchema(swagger)));
  return count + 2;
}

/**
 * monitoring.coreos.com/v1 PrometheusRule as the Prometheus Operator's CRD
 * defines it: spec.groups[] of name, interval and rules[] (record or alert,
 * expr, for, labels, annotations). Strict: an unknown field is refused.
 */
function prometheusRuleSchema(swagger: Swagger): Schema {
  const duration = { type: 'string', pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' };
  const strings = { type: 'object', additionalProperties: { type: 'string' } };
  const rule = {
    type: 'object',
    additionalProperties: false,
    required: ['expr'],
    properties: { record: { type: 'string' }, alert: { type: 'string' }, expr: { type: ['string', 'integer'] }, for: duration, keep_firing_for: duration, labels: strings, annotations: strings },
  };
  const root = {
    type: 'object',
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: {
      apiVersion: { const: 'monitoring.coreos.com/v1' },
      kind: { const: 'PrometheusRule' },
      metadata: { $ref: '#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' },
      spec: {
        type: 'object',
        additionalProperties: false,
        properties: {
          groups: {
            type: 'array',
            items: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', minLength: 1 }, interval: duration, limit: { type: 'integer' }, rules: { type: 'array', items: rule } } },
          },
        },
      },
    },
  };
  return standalone(swagger, 'PrometheusRule', root);
}

/**
 * A minimal strict schema for monitoring.coreos.com/v1 ServiceMonitor: the
 * fields of its spec this chart writes, as the Prometheus Operator's CRD
 * defines them (spec.selector, spec.namespaceSelector, spec.endpoints[] with
 * port, path, scheme, interval, scrapeTimeout, honorLabels); metadata and the
 * label selector are Kubernetes's own definitions. A field outside that subset
 * is refused: widen the schema when the chart starts writing one.
 */
function serviceMonitorSchema(swagger: Swagger): Schema {
  const duration = { type: 'string', pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' };
  const root = {
    type: 'object',
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: {
      apiVersion: { const: 'monitoring.coreos.com/v1' },
      kind: { const: 'ServiceMonitor' },
      metadata: { $ref: '#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' },
      spec: {
        type: 'object',
        required: ['selector'],
        properties: {
          selector: { $ref: '#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector' },
          namespaceSelector: { type: 'object', properties: { any: { type: 'boolean' }, matchNames: { type: 'array', items: { type: 'string' } } } },
          endpoints: {
            type: 'array',
            items: {
              type: 'object',
              properties: { port: { type: 'string' }, path: { type: 'string' }, scheme: { enum: ['http', 'https', 'HTTP', 'HTTPS'] }, interval: duration, scrapeTimeout: duration, honorLabels: { type: 'boolean' } },
            },
          },
        },
      },
    },
  };
  return standalone(swagger, 'ServiceMonitor', root);
}

/**
 * The directory of standalone-strict schemas for Kubernetes `version`,
 * generated once into `<cache>/k8s-schemas-<version>/` (written aside, then
 * renamed into place, so a half-written directory is never used).
 */
export async function kubernetesSchemas(version = KUBERNETES_VERSION): Promise<string> {
  // The suffix names the set of CRD schemas added to Kubernetes's own: a new one makes a new directory.
  const dir = join(CACHE, `k8s-schemas-${version}-crds2`);
  if (existsSync(join(dir, '.complete'))) return dir;
  const swagger = JSON.parse(readFileSync(await swaggerPath(version), 'utf8')) as Swagger;
  mkdirSync(CACHE, { recursive: true });
  const tmp = mkdtempSync(join(CACHE, `.k8s-schemas-${version}-`));
  const count = generateSchemas(swagger, tmp);
  writeFileSync(join(tmp, '.complete'), `${count} schemas from k8s.io/kubernetes@${version} api/openapi-spec/swagger.json\n`);
  rmSync(dir, { recursive: true, force: true });
  try {
    renameSync(tmp, dir);
  } catch (err) {
    // Another run got there first: use its copy.
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(join(dir, '.complete'))) throw err;
  }
  return dir;
}
