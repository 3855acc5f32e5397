import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReadiness, type ReadinessOptions, readinessHandler } from '../../src/app/readiness.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { type Db, openDatabase } from '../../src/store/database.js';
import { serve } from '../auth/handlers/serve.js';
import { sample } from '../support/metricSamples.js';

/**
 * /readyz and the dependency_up and ready gauges ask the same checks (a real
 * migrated SQLite; Hydra and Kratos stubs that pass, fail or hang as told).
 */
describe('readiness: /readyz and the dependency_up / ready gauges', () => {
  let db: Db;
  beforeAll(async () => {
    db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
  });
  afterAll(() => db.destroy());

  const up = async () => {};
  const down = async () => {
    throw new Error('connection refused');
  };
  const hang = () => new Promise<void>(() => {});

  /** The real handler on a real app, and a Metrics whose gauges ask the same readiness. */
  async function probe(over: Partial<ReadinessOptions> = {}) {
    const readiness = createReadiness({ db, dialect: 'sqlite', hydra: { adminReady: up, jwksReachable: up }, timeoutMs: 200, ...over });
    const metrics = new Metrics();
    metrics.readinessGauges(async () => {
      const { checks, ready } = await readiness.check();
      return { dependencies: checks, ready };
    });
    const app = express();
    app.get('/readyz', readinessHandler(readiness));
    const { base, close } = await serve(app);
    try {
      const res = await fetch(`${base}/readyz`);
      const body = (await res.json()) as { status: string; checks?: Record<string, string> };
      const gauge = async (dependency: string) => sample(metrics, 'dependency_up', { dependency });
      return {
        status: res.status,
        body,
        ready: await sample(metrics, 'ready'),
        up: Object.fromEntries(await Promise.all(['database', 'migrations', 'hydra_admin', 'hydra_jwks', 'kratos'].map(async (d) => [d, await gauge(d)]))),
      };
    } finally {
      await close();
    }
  }

  it('all up: 200, every check ok; ready 1 and dependency_up 1 for each (no kratos series without Kratos)', async () => {
    const r = await probe();
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', hydra_admin: 'ok', hydra_jwks: 'ok' } });
    expect(r.ready).toBe(1);
    expect(r.up).toEqual({ database: 1, migrations: 1, hydra_admin: 1, hydra_jwks: 1, kratos: undefined });
  });

  it("Hydra's JWKS down: 503 naming it; ready 0, dependency_up{hydra_jwks} 0", async () => {
    const r = await probe({ hydra: { adminReady: up, jwksReachable: down } });
    expect(r.status).toBe(503);
    expect(r.body.checks).toMatchObject({ hydra_jwks: 'unavailable', hydra_admin: 'ok' });
    expect(r.ready).toBe(0);
    expect(r.up).toMatchObject({ hydra_jwks: 0, hydra_admin: 1, database: 1 });
  });

  it('a check that hangs is unavailable once the timeout passes, not a hung probe', async () => {
    const started = Date.now();
    const r = await probe({ hydra: { adminReady: hang, jwksReachable: up } });
    expect(r.status).toBe(503);
    expect(r.up).toMatchObject({ hydra_admin: 0 });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('Kratos configured and down: reported (dependency_up{kratos} 0) but still ready, since issued tokens keep working', async () => {
    const r = await probe({ kratos: { ready: down } });
    expect(r.status).toBe(200);
    expect(r.body.checks).toMatchObject({ kratos: 'unavailable', database: 'ok' });
    expect(r.ready).toBe(1);
    expect(r.up).toMatchObject({ kratos: 0, database: 1 });
    expect((await probe({ kratos: { ready: up } })).up).toMatchObject({ kratos: 1 });
  });

  it('stopping: /readyz 503 "stopping" at once and ready 0, while dependency_up still reports each check', async () => {
    const r = await probe({ stopping: () => true });
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ status: 'stopping' });
    expect(r.ready).toBe(0);
    expect(r.up).toMatchObject({ database: 1, hydra_admin: 1 });
  });
});
