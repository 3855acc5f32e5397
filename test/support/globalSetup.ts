import type { TestProject } from 'vitest/node';
import { startTestPostgres } from './postgres.js';

/** One real PostgreSQL server for the whole run; each suite makes its own database on it. */
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
