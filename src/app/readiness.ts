import type { RequestHandler } from 'express';
import { sql } from 'kysely';
import type { HydraPublic } from '../hydra/index.js';
import type { KratosPublic } from '../kratos/index.js';
import type { Db, Dialect } from '../store/database.js';
import { pendingMigrations } from '../store/migrations.js';

export interface ReadinessOptions {
  db: Db;
  dialect: Dialect;
  /** Hydra's side of the checks: its admin health and its JWKS (needed to verify JWT access tokens). */
  hydra: Pick<HydraPublic, 'adminReady' | 'jwksReachable'>;
  /** IDENTITY=kratos: Kratos's public health, reported but not required (see REQUIRED). */
  kratos?: Pick<KratosPublic, 'ready'>;
  /** True once a stop is announced (SIGTERM): not ready, whatever the checks say, so a balancer takes this replica out. */
  stopping?: () => boolean;
  timeoutMs?: number;
}

export type CheckName = 'database' | 'migrations' | 'hydra_admin' | 'hydra_jwks' | 'kratos';

export interface ReadinessReport {
  /** Each check that ran, and whether it passed. */
  checks: Partial<Record<CheckName, boolean>>;
  /** What /readyz answers: every required check passed and no stop is announced. */
  ready: boolean;
}

/** One set of checks, asked by /readyz and by the dependency_up and ready gauges at scrape time. */
export interface Readiness {
  /** True once a stop is announced: /readyz answers at once, without checking. */
  stopping(): boolean;
  /** Run every check at once, each within the timeout; never rejects. */
  check(): Promise<ReadinessReport>;
}

type Check = () => Promise<void>;

/**
 * The checks that decide readiness. Kratos is not among them: without it
 * people cannot sign in, but every token already issued still works, and
 * every replica would fail the check together, so a balancer would turn a
 * sign-in outage into a total one. It is reported (in /readyz's body and
 * dependency_up) for the alert instead.
 */
const REQUIRED: ReadonlySet<CheckName> = new Set(['database', 'migrations', 'hydra_admin', 'hydra_jwks']);

/**
 * Can this instance serve? Database reachable with every migration applied,
 * Hydra's admin API and JWKS reachable; Kratos reachable when configured.
 * Each check has a short timeout.
 */
export function createReadiness(options: ReadinessOptions): Readiness {
  const timeoutMs = options.timeoutMs ?? 2000;
  const checks: Partial<Record<CheckName, Check>> = {
    database: async () => {
      await sql`select 1`.execute(options.db);
    },
    migrations: async () => {
      const pending = await pendingMigrations(options.db, options.dialect);
      if (pending.length) throw new Error(`pending: ${pending.join(', ')}`);
    },
    hydra_admin: () => options.hydra.adminReady(),
    hydra_jwks: () => options.hydra.jwksReachable(),
    ...(options.kratos ? { kratos: () => options.kratos!.ready() } : {}),
  };
  // One immediate retry inside the same budget: a pooled keep-alive socket the
  // peer has just closed fails a request once without anything being down.
  const withTimeout = (check: Check) =>
    Promise.race([check().catch(() => check()), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), timeoutMs).unref())]);
  const stopping = () => options.stopping?.() ?? false;

  return {
    stopping,
    async check() {
      const names = Object.keys(checks) as CheckName[];
      const results = await Promise.allSettled(names.map((n) => withTimeout(checks[n]!)));
      const passed = Object.fromEntries(names.map((n, i) => [n, results[i]!.status === 'fulfilled'])) as ReadinessReport['checks'];
      const ready = !stopping() && names.every((n) => passed[n] || !REQUIRED.has(n));
      return { checks: passed, ready };
    },
  };
}

/**
 * GET /readyz: 200 when ready, else 503; the body names each check's state
 * and nothing secret.
 */
export function readinessHandler(readiness: Readiness): RequestHandler {
  return async (_req, res) => {
    if (readiness.stopping()) {
      res.status(503).set('Cache-Control', 'no-store').json({ status: 'stopping' });
      return;
    }
    const { checks, ready } = await readiness.check();
    const report = Object.fromEntries(Object.entries(checks).map(([n, ok]) => [n, ok ? 'ok' : 'unavailable']));
    res.status(ready ? 200 : 503).set('Cache-Control', 'no-store').json({ status: ready ? 'ready' : 'not_ready', checks: report });
  };
}
