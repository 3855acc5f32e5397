import type { Metrics } from '../../src/metrics/metrics.js';

/**
 * The value of one sample of `metrics`' registry, as a scrape would read it
 * (collect functions run): `name` is the series name (`x_count` and `x_sum`
 * for a histogram), `labels` the sample's whole label set. Undefined when
 * no such sample exists.
 */
export async function sample(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const same = (a: Record<string, string | number>) => Object.keys(a).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => String(a[k]) === v);
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    for (const v of metric.values as Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>) {
      if ((v.metricName ?? metric.name) === name && same(v.labels)) return v.value;
    }
  }
  return undefined;
}
