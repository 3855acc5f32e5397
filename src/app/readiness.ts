import type { RequestHandler } from 'express';
import { sql } from 'kysely';
import type { HydraPublic } from '../hydra/index.js';
import type { Db, Dialect } from '../store/database.js';
import { pendingMigrations } from '../store/migrations.js';

export interface ReadinessOptions {
  db: Db;
  dialect: Dialect;
  /** Hydra's side of the checks: its admin health and its JWKS (needed to verify JWT access tokens). */
  hydra: Pick<HydraPublic, 'adminReady' | 'jwksReachable'>;
  /** True once a stop is announced (SIGTERM): not ready, whatever the checks say, so a balancer takes this replica out. */
  stopping?: () => boolean;
  timeoutMs?: number;
}

type Check = () => Promise<void>;

/**
 * GET /readyz: can this instance serve? Database reachable with every
 * migration applied, Hydra's admin API and JWKS reachable. Each check has a
 * short timeout; the answer names each check's state and nothing secret.
 */
export function readinessHandler(options: ReadinessOptions): RequestHandler {
  const timeoutMs = options.timeoutMs ?? 2000;
  const checks: Record<string, Check> = {
    database: async () => {
      await sql`select 1`.execute(options.db);
    },
    migrations: async () => {
      const pending = await pendingMigrations(options.db, options.dialect);
      if (pending.length) throw new Error(`pending: ${pending.join(', ')}`);
    },
    hydra_admin: () => options.hydra.adminReady(),
    hydra_jwks: () => options.hydra.jwksReachable(),
  };
  // One immediate retry inside the same budget: a pooled keep-alive socket the
  // peer has just closed fails a request once without anything being down.
  const withTimeout = (check: Check) =>
    Promise.race([check().catch(() => check()), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), timeoutMs).unref())]);

  return async (_req, res) => {
    if (options.stopping?.()) {
      res.status(503).set('Cache-Control', 'no-store').json({ status: 'stopping' });
      return;
    }
    const names = Object.keys(checks);
    const results = await Promise.allSettled(names.map((n) => withTimeout(checks[n]!)));
    const report = Object.fromEntries(names.map((n, i) => [n, results[i]!.status === 'fulfilled' ? 'ok' : 'unavailable']));
    const ready = results.every((r) => r.status === 'fulfilled');
    res.status(ready ? 200 : 503).set('Cache-Control', 'no-store').json({ status: ready ? 'ready' : 'not_ready', checks: report });
  };
}
