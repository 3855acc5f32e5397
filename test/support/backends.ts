import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import type { DatabaseTarget } from '../../src/store/database.js';
import { createTestDatabase } from './postgres.js';

/** A throw-away database of one backend, and how to remove it. */
export interface Backend {
  target: DatabaseTarget;
  cleanup(): Promise<void>;
}

/**
 * The backends a storage contract runs against: a fresh embedded SQLite file,
 * and a fresh database on the run's real PostgreSQL (test/support/globalSetup.ts).
 */
export function storeBackends(label: string, poolMax = 5): Record<'sqlite' | 'postgres', () => Promise<Backend>> {
  return {
    sqlite: async () => {
      const dir = mkdtempSync(join(tmpdir(), `hydra-mcp-${label}-`));
      return { target: { kind: 'sqlite', path: join(dir, 'store.sqlite') }, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
    postgres: async () => {
      const pg = await createTestDatabase(inject('postgresUrl'));
      return { target: { kind: 'postgres', url: pg.url, poolMax }, cleanup: pg.drop };
    },
  };
}
