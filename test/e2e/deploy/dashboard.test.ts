import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run, toolBinary } from '../../support/kubeTools.js';

/**
 * deploy/grafana/hydra-mcp.json (issue 30 #6), data only: every query parses
 * (the real promtool's PromQL parser), every panel reads the dashboard's
 * Prometheus variable, and the panels answer the operators' questions the
 * issue lists. That every metric named is one the server exports is proven
 * against a running server in test/e2e/alerting.test.ts.
 */

const ROOT = resolve(import.meta.dirname, '../../..');

interface Panel {
  type: string;
  title: string;
  description?: string;
  datasource?: { uid: string };
  targets?: Array<{ expr: string; refId: string }>;
  gridPos: { x: number; y: number; w: number; h: number };
}
const board = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/hydra-mcp.json'), 'utf8')) as { uid: string; panels: Panel[]; templating: { list: Array<{ name: string }> } };
const queryPanels = board.panels.filter((p) => p.type !== 'row');

describe('Grafana dashboard deploy/grafana/hydra-mcp.json', () => {
  let promtool: string;
  beforeAll(async () => {
    promtool = await toolBinary('promtool');
  });

  it('every query parses as PromQL (promtool promql format)', async () => {
    const exprs = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr.replaceAll('$job', '.*') })));
    expect(exprs.length).toBeGreaterThan(20);
    const failures: string[] = [];
    for (const { panel, expr } of exprs) {
      const r = await run(promtool, ['--experimental', 'promql', 'format', expr]);
      if (r.code !== 0) failures.push(`${panel}: ${r.stderr.trim()}`);
    }
    expect(failures).toEqual([]);
  });

  it('promtool would refuse a broken query (the check above can fail)', async () => {
    const r = await run(promtool, ['--experimental', 'promql', 'format', 'sum by (route (rate(http_requests_total[5m]))']);
    expect(r.code).not.toBe(0);
  });

  it('every panel has a description, queries the chosen Prometheus and filters by the job variable', () => {
    expect(board.templating.list.map((v) => v.name)).toEqual(['datasource', 'job']);
    for (const p of queryPanels) {
      expect(p.description, p.title).toBeTruthy();
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      for (const t of p.targets ?? []) expect(t.expr, p.title).toContain('job=~"$job"');
    }
  });

  it('answers the questions of the issue: token validation latency, OAuth flow success, refreshes, failed sign-ins, credential fetch latency, errors', () => {
    const all = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join('\n');
    for (const metric of [
      'token_verification_duration_seconds_bucket',
      'oauth_token_requests_total',
      'signin_attempts_total',
      'connected_account_credential_duration_seconds_bucket',
      'provider_requests_total',
      'database_errors_total',
      'audit_dropped_total',
      'mcp_tool_call_duration_seconds_bucket',
      'dependency_up',
      'mcp_rate_limited_total',
    ])
      expect(all, metric).toContain(metric);
  });

  it('panels do not overlap on the grid', () => {
    const cells = new Set<string>();
    for (const p of board.panels)
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++)
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          const cell = `${x},${y}`;
          expect(cells.has(cell), `${p.title} overlaps at ${cell}`).toBe(false);
          cells.add(cell);
        }
  });
});
