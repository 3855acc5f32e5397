/**
 * `hydra-mcp migrate`: bring the configured database (DATABASE_URL, else
 * DATABASE_PATH) up to date with the migrations every server runs at start
 * (src/store/migrations.ts), and print what was applied. For a one-shot step
 * before new servers start, as Hydra's own `migrate sql` is run in compose;
 * running it again applies nothing. Exit codes: 0 done, 1 failure, 2 usage error.
 */
import { loadConfig } from '../config/config.js';
import { migrateDatabase } from '../store/database.js';
import { type CliCommand, printingFailures } from './command.js';

const usage = (prog: string) => `usage: ${prog}
  bring the database of DATABASE_URL (else the SQLite file DATABASE_PATH) up
  to date with the migrations the server runs at start, and print the names
  of those applied; running it again applies nothing`;

async function main(argv: string[], prog: string): Promise<number> {
  if (argv.length) {
    console.error(`error: migrate takes no arguments\n${usage(prog)}`);
    return 2;
  }
  const config = loadConfig(process.env);
  const applied = await migrateDatabase(config.database);
  for (const name of applied) console.log(`applied ${name}`);
  console.log(
    applied.length
      ? `Applied ${applied.length} migration${applied.length === 1 ? '' : 's'} to the ${config.database.kind} database`
      : `Nothing to apply: the ${config.database.kind} database is up to date`,
  );
  return 0;
}

export const migrateCommand: CliCommand = {
  name: 'migrate',
  summary: 'bring the database schema up to date (what each server does at start)',
  usage,
  run: printingFailures(main),
};
