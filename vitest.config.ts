import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Three projects, chosen by folder, so a new test file lands in the right one
 * by where it is put:
 * - test/e2e/**  e2e: real Ory Hydra, Kratos, Chromium, Caddy or another
 *                outside program, on the run's real PostgreSQL; one file at a time.
 * - test/db/**   db: the storage contracts, each on a SQLite file and on the
 *                run's real PostgreSQL; files in parallel.
 * - the rest     unit: in process (stubs, in-memory or temp-file SQLite,
 *                express on an OS-chosen loopback port); no global setup,
 *                files in parallel.
 * `npm test` runs all three; `npm run test:unit` is the loop to run while working.
 */
const E2E = 'test/e2e';
const DB = 'test/db';
// Starts one throw-away PostgreSQL per project that uses it (inject('postgresUrl')).
const POSTGRES = ['test/support/globalSetup.ts'];

export default defineConfig({
  test: {
    reporters: ['default'],
    // vitest's default on two cores is one worker; unit and db files wait on
    // timers, sockets and scrypt as much as they compute.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, `${E2E}/**`, `${DB}/**`],
          // Worker threads start and load modules with less CPU than forked processes.
          pool: 'threads',
          testTimeout: 20_000,
          hookTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'db',
          include: [`${DB}/**/*.test.ts`],
          globalSetup: POSTGRES,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: [`${E2E}/**/*.test.ts`],
          globalSetup: POSTGRES,
          // Each file starts a real Hydra (built once, then cached), often Kratos or Chromium too.
          testTimeout: 60_000,
          hookTimeout: 600_000,
          // Two cores: run files one at a time so each Hydra gets the machine.
          fileParallelism: false,
        },
      },
    ],
  },
});
