import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { run, toolBinary } from '../../support/kubeTools.js';

/**
 * deploy/prometheus/alerts.yml (issue 30 #2) checked by the real promtool,
 * built from github.com/prometheus/prometheus v0.316.0 and cached: the rules
 * load, their unit tests (alerts.test.yml) pass, every alert has a case that
 * fires it and one that must not, and each names a runbook section that exists.
 */

const ROOT = resolve(import.meta.dirname, '../../..');
const RULES = join(ROOT, 'deploy/prometheus/alerts.yml');
const TESTS = join(ROOT, 'deploy/prometheus/alerts.test.yml');

interface Rule {
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface AlertCase {
  eval_time: string;
  alertname: string;
  exp_alerts?: Array<{ exp_labels: Record<string, string> }>;
}
interface UnitTest {
  name: string;
  input_series: Array<{ series: string }>;
  alert_rule_test: AlertCase[];
}

const alerts = (): Rule[] => (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules).filter((r) => r.alert);

/** GitHub's anchor for a Markdown heading: lower case, spaces to dashes, punctuation dropped. */
const anchor = (heading: string) => heading.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-');

describe('alert rules deploy/prometheus/alerts.yml', () => {
  let promtool: string;

  beforeAll(async () => {
    promtool = await toolBinary('promtool');
  });

  it('promtool check rules: every rule loads and is well formed', async () => {
    const r = await run(promtool, ['check', 'rules', RULES]);
    expect(r.stderr + r.stdout).toContain(`SUCCESS: ${alerts().length} rules found`);
    expect(r.code).toBe(0);
  });

  it('promtool test rules: every case in alerts.test.yml passes', async () => {
    const r = await run(promtool, ['test', 'rules', TESTS]);
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('every alert has a case that fires it and a series (or an evaluation) where it must not fire', () => {
    const tests = (parse(readFileSync(TESTS, 'utf8')) as { tests: UnitTest[] }).tests;
    for (const { alert } of alerts()) {
      const cases = tests.filter((t) => t.alert_rule_test.some((c) => c.alertname === alert));
      expect(cases.length, `${alert} has no unit test`).toBeGreaterThan(0);
      const fired = cases.flatMap((t) => t.alert_rule_test.filter((c) => c.alertname === alert).flatMap((c) => c.exp_alerts ?? []));
      expect(fired.length, `${alert} never fires in alerts.test.yml`).toBeGreaterThan(0);
      // A near miss: an evaluation expecting no alert, or an input series that no fired alert's labels describe.
      const silent = cases.some((t) => t.alert_rule_test.some((c) => c.alertname === alert && !(c.exp_alerts ?? []).length));
      const describes = (expLabels: Record<string, string>, series: Record<string, string>) => Object.entries(expLabels).every(([k, v]) => k === 'severity' || series[k] === v);
      const quietSeries = cases.some((t) =>
        t.input_series.some(({ series }) => {
          const labels = Object.fromEntries([...series.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
          return !fired.some((a) => describes(a.exp_labels, labels));
        }),
      );
      expect(silent || quietSeries, `${alert} has no case where it must stay silent`).toBe(true);
    }
  });

  it('every alert has a severity, a summary, what it means for people, and a runbook section that exists', () => {
    const runbook = readFileSync(join(ROOT, 'docs/operating.md'), 'utf8');
    const anchors = new Set([...runbook.matchAll(/^#{2,6} (.+)$/gm)].map((m) => anchor(m[1]!)));
    for (const rule of alerts()) {
      expect(['critical', 'warning'], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
      const [file, section] = (rule.annotations?.runbook ?? '').split('#');
      expect(file, rule.alert).toBe('docs/operating.md');
      expect(anchors.has(section!), `${rule.alert}: docs/operating.md has no heading for #${section}`).toBe(true);
    }
  });

  it('the unit tests can fail: Hydra down alerting only after 10 minutes breaks them, naming the alert', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-mutant-'));
    const doc = parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> };
    const rule = doc.groups.flatMap((g) => g.rules).find((r) => r.alert === 'HydraMcpHydraDown')!;
    rule.for = '10m';
    writeFileSync(join(dir, 'alerts.yml'), stringify(doc));
    writeFileSync(join(dir, 'alerts.test.yml'), readFileSync(TESTS, 'utf8'));
    const r = await run(promtool, ['test', 'rules', join(dir, 'alerts.test.yml')]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/alertname: HydraMcpHydraDown/);
  });
});
