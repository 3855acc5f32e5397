import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { freeLoopbackPort } from '../../scripts/hydra.js';
import { toolBinary } from '../support/kubeTools.js';
import { type Stack, startStack } from './stack.js';

/**
 * Issue 30 #3: a real Prometheus (github.com/prometheus/prometheus v0.316.0,
 * built once and cached) scrapes a running stack with deploy/prometheus/alerts.yml
 * loaded, unchanged. Stopping Hydra takes HydraMcpHydraDown to pending, then
 * to firing no sooner than its `for:`; starting Hydra resolves it; a flood of
 * bad tokens fires HydraMcpTokenValidationErrors. Prometheus also parses every
 * rule and every dashboard query, and each metric they name must be one the
 * server exports.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const RULES = join(ROOT, 'deploy/prometheus/alerts.yml');
const DASHBOARD = join(ROOT, 'deploy/grafana/hydra-mcp.json');
// Series Prometheus makes itself, not the server.
const PROMETHEUS_OWN = new Set(['up', 'ALERTS', 'ALERTS_FOR_STATE']);
// Exported only in a setting this stack does not use, each proven where it is: the
// certificate's expiry needs an https public URL (test/metrics/certificateExpiry.test.ts).
const CONDITIONAL = new Set(['public_url_certificate_expiry_timestamp_seconds']);

interface PromAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
}

interface Rule {
  alert?: string;
  expr: string;
  for?: string;
}
const rules = (): Rule[] => (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
const seconds = (d: string) => Number(/^(\d+)m$/.exec(d)?.[1]) * 60;

/** Every panel's queries and the annotation queries of the Grafana dashboard, with its variables given values. */
function dashboardQueries(): string[] {
  const board = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }>; annotations: { list: Array<{ expr?: string }> } };
  const exprs = [...board.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...board.annotations.list.flatMap((a) => (a.expr ? [a.expr] : []))];
  return exprs.map((e) => e.replaceAll('$job', '.*'));
}

/** Metric names in a parsed PromQL tree (Prometheus's /api/v1/parse_query). */
function selectorNames(node: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const n of node) selectorNames(n, into);
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if ((o.type === 'vectorSelector' || o.type === 'matrixSelector') && typeof o.name === 'string' && o.name) into.add(o.name);
    for (const v of Object.values(o)) selectorNames(v, into);
  }
  return into;
}

describe('alerts on a real Prometheus scraping a running stack (real Hydra)', () => {
  let stack: Stack;
  let prometheus: ChildProcess;
  let promUrl: string;
  let dir: string;
  const promLog: string[] = [];

  async function api<T>(path: string): Promise<T> {
    const res = await fetch(`${promUrl}${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${path}: ${body.error}`);
    return body.data;
  }
  const alertsNamed = async (name: string) => (await api<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts.filter((a) => a.labels.alertname === name);

  /** Poll until `test` holds (checked every 500 ms), or fail after `ms` naming what was awaited. */
  async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const got = await probe();
      if (got !== undefined) return got;
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${promLog.slice(-20).join('\n')}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  beforeAll(async () => {
    const [binary, s] = await Promise.all([toolBinary('prometheus'), startStack({ accessTokenStrategy: 'opaque', database: 'sqlite', hydraStorage: 'file' })]);
    stack = s;
    const target = new URL(stack.server.metricsUrl!);
    dir = mkdtempSync(join(tmpdir(), 'prometheus-e2e-'));
    // Scrapes and evaluations every 2 s, so a one-minute `for:` is seen within seconds of its end.
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 2s, scrape_timeout: 2s, evaluation_interval: 2s }',
        `rule_files: [${JSON.stringify(RULES)}]`,
        'scrape_configs:',
        '  - job_name: hydra-mcp',
        `    static_configs: [{ targets: ["${target.host}"] }]`,
        '',
      ].join('\n'),
    );
    const port = await freeLoopbackPort();
    promUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn(binary, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const out of [prometheus.stdout!, prometheus.stderr!]) out.on('data', (b: Buffer) => promLog.push(...b.toString().trimEnd().split('\n')));
    await until('Prometheus ready', 60_000, async () => ((await fetch(`${promUrl}/-/ready`).catch(() => undefined))?.ok ? true : undefined));
    // Hydra makes its signing keys on the first JWKS read: wait until the server is ready, then until Prometheus has seen it so.
    await until('the server ready', 30_000, async () => ((await fetch(`${stack.baseUrl}/readyz`)).ok ? true : undefined));
    await until('a scrape seeing ready = 1', 30_000, async () => ((await api<{ result: unknown[] }>('/api/v1/query?query=ready%20%3D%3D%201')).result.length ? true : undefined));
  }, 900_000);

  afterAll(async () => {
    prometheus?.kill('SIGTERM');
    await stack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('loads every rule of deploy/prometheus/alerts.yml as it is, none of them firing while all is well', async () => {
    const groups = (await api<{ groups: Array<{ rules: Array<{ name: string; type: string; health: string }> }> }>('/api/v1/rules')).groups;
    const loaded = groups.flatMap((g) => g.rules).filter((r) => r.type === 'alerting');
    expect(loaded.map((r) => r.name).sort()).toEqual(rules().flatMap((r) => (r.alert ? [r.alert] : [])).sort());
    expect(loaded.filter((r) => r.health !== 'ok' && r.health !== 'unknown')).toEqual([]);
    const firing = (await api<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts.filter((a) => a.state === 'firing');
    expect(firing).toEqual([]);
  });

  it('every metric a rule or a dashboard query names is one the server exports (parsed by Prometheus itself)', async () => {
    const exposition = await (await fetch(stack.server.metricsUrl!)).text();
    const families = new Map([...exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    const exported = (name: string) => {
      if (families.has(name) || PROMETHEUS_OWN.has(name) || CONDITIONAL.has(name)) return true;
      const base = name.replace(/_(bucket|sum|count)$/, '');
      return base !== name && families.get(base) === 'histogram';
    };
    const queries = [...rules().map((r) => r.expr), ...dashboardQueries()];
    const unknown: string[] = [];
    for (const query of queries) {
      // A query Prometheus cannot parse fails here with its error.
      const tree = await api<unknown>(`/api/v1/parse_query?query=${encodeURIComponent(query)}`);
      for (const name of selectorNames(tree)) if (!exported(name)) unknown.push(`${name} (in ${query.slice(0, 60)}…)`);
    }
    expect(unknown).toEqual([]);
    expect(queries.length).toBeGreaterThan(30);
    const source = readFileSync(join(ROOT, 'src/metrics/metrics.ts'), 'utf8');
    for (const name of CONDITIONAL) expect(source).toContain(`name: '${name}'`);
  });

  it('Hydra stopped: HydraMcpHydraDown goes pending, fires no sooner than its for:, and resolves when Hydra is back', async () => {
    const forSeconds = seconds(rules().find((r) => r.alert === 'HydraMcpHydraDown')!.for!);
    expect(forSeconds).toBe(60);
    await stack.stopHydra();
    const stoppedAt = Date.now();
    const pending = await until('HydraMcpHydraDown pending', 30_000, async () => (await alertsNamed('HydraMcpHydraDown')).find((a) => a.state === 'pending'));
    expect(pending.labels).toMatchObject({ severity: 'critical', job: 'hydra-mcp' });
    const firing = await until('HydraMcpHydraDown firing', (forSeconds + 30) * 1000, async () => (await alertsNamed('HydraMcpHydraDown')).find((a) => a.state === 'firing'));
    const firedAfter = (Date.now() - stoppedAt) / 1000;
    expect(firedAfter).toBeGreaterThanOrEqual(forSeconds);
    // Pending began when Hydra stopped (one scrape and one evaluation later), not when the `for:` ran out.
    expect((Date.parse(pending.activeAt) - stoppedAt) / 1000).toBeLessThan(15);
    expect(firing.labels.dependency).toMatch(/^hydra_(admin|jwks)$/);

    await stack.startHydraAgain();
    await until('HydraMcpHydraDown resolved', 60_000, async () => ((await alertsNamed('HydraMcpHydraDown')).length === 0 ? true : undefined));
  }, 240_000);

  it('a flood of bad tokens fires HydraMcpTokenValidationErrors', async () => {
    await until('the server ready again', 30_000, async () => ((await fetch(`${stack.baseUrl}/readyz`)).ok ? true : undefined));
    const forSeconds = seconds(rules().find((r) => r.alert === 'HydraMcpTokenValidationErrors')!.for!);
    let stop = false;
    let sent = 0;
    const statuses = new Map<number, number>();
    // Four clients, each sending a never-seen token as fast as the server answers (each costs an introspection).
    const flood = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (!stop) {
          const res = await fetch(stack.mcpUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ory_at_${randomBytes(24).toString('base64url')}` },
            body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
          });
          await res.arrayBuffer();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          sent++;
          await new Promise((r) => setTimeout(r, 50));
        }
      }),
    );
    try {
      const firing = await until('HydraMcpTokenValidationErrors firing', (forSeconds + 120) * 1000, async () =>
        (await alertsNamed('HydraMcpTokenValidationErrors')).find((a) => a.state === 'firing'),
      );
      expect(firing.labels).toMatchObject({ severity: 'warning', job: 'hydra-mcp' });
    } finally {
      stop = true;
      await flood;
    }
    // Every bad token was refused as invalid (401), none turned into an error.
    expect([...statuses.keys()]).toEqual([401]);
    expect(sent).toBeGreaterThan(100);
  }, 300_000);
});
