import type { TestProject } from 'vitest/node';
import { startTestPostgres } from './postgres.js';

/**
 * One real PostgreSQL server for a project that names this file (db and e2e in
 * vitest.config.ts; never unit), for the whole run; each suite makes its own
 * database on it.
 */
export default async function setup(project: TestProject) {
  const pgServer = await startTestPostgres();
  project.provide('postgresUrl', pgServer.url);
  return () => pgServer.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}
