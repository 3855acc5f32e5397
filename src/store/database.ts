import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { type Dialect as KyselyDialect, Kysely, type LogEvent, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { migrateToLatest } from './migrations.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

/** Where the data lives: an embedded SQLite file (default) or a PostgreSQL server. */
export type DatabaseTarget =
  | { kind: 'sqlite'; /** File path, or ":memory:". */ path: string }
  | { kind: 'postgres'; /** postgres://user:pass@host:port/db */ url: string; /** Most pooled connections. */ poolMax?: number };

export type Dialect = DatabaseTarget['kind'];

export interface DatabaseOptions {
  /**
   * Told of every query that failed and every connection that could not be
   * made (database_errors_total). Never given the query, its parameters or
   * the error: a failed query's text or values may hold a person's data.
   */
  onError?: () => void;
}

/**
 * Open the database and bring its schema up to date. Both dialects sit behind
 * one typed query builder (Kysely): no query in this project is written twice.
 */
export async function openDatabase(target: DatabaseTarget, options: DatabaseOptions = {}): Promise<Db> {
  const db = connect(target, options);
  try {
    await migrateToLatest(db, target.kind);
  } catch (e) {
    await db.destroy();
    throw e;
  }
  return db;
}

/**
 * Bring the schema up to date, as every server does at start, and close the
 * database again: for a one-shot migration step before the servers start
 * (`hydra-mcp migrate`). Returns the names of the migrations applied.
 */
export async function migrateDatabase(target: DatabaseTarget): Promise<string[]> {
  const db = connect(target);
  try {
    return await migrateToLatest(db, target.kind);
  } finally {
    await db.destroy();
  }
}

const connect = (target: DatabaseTarget, options: DatabaseOptions = {}): Db =>
  target.kind === 'postgres' ? openPostgres(target.url, target.poolMax ?? 10, options) : openSqlite(target.path, options);

/**
 * Kysely's options for `onError`. Its `log` hook is the one place every failed
 * query passes; given a function it hears every query too, and ignores them
 * here (an array of levels would print queries to the console instead).
 */
function observed(dialect: KyselyDialect, { onError }: DatabaseOptions): { dialect: KyselyDialect; log?: (event: LogEvent) => void } {
  if (!onError) return { dialect };
  return {
    dialect: countingConnectFailures(dialect, onError),
    log: (event) => {
      if (event.level === 'error') onError();
    },
  };
}

/**
 * A connection that cannot be made (PostgreSQL down, the pool's connect
 * timeout) fails before any query, where the log hook never sees it: the
 * driver's acquireConnection reports it too.
 */
function countingConnectFailures(dialect: KyselyDialect, onError: () => void): KyselyDialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createDriver: () => {
      const driver = dialect.createDriver();
      const acquire = driver.acquireConnection.bind(driver);
      driver.acquireConnection = () =>
        acquire().catch((e: unknown) => {
          onError();
          throw e;
        });
      return driver;
    },
  };
}

function openSqlite(path: string, options: DatabaseOptions): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new SQLite(path);
  // WAL lets the user CLI write while the server runs; busy_timeout rides out its short locks.
  sqlite.pragma('journal_mode = WAL');
  // With WAL, NORMAL syncs at checkpoints instead of every commit: still never corrupt, a power cut may lose the last commits; about 3× cheaper per write (the fair-use buckets write on most requests).
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>(observed(new SqliteDialect({ database: sqlite }), options));
  sqliteHandles.set(db, sqlite);
  return db;
}

const sqliteHandles = new WeakMap<Db, SQLite.Database>();

/**
 * The better-sqlite3 connection behind a SQLite Db, for statements prepared
 * once and run often (the audit insert and the fair-use bucket upserts):
 * Kysely prepares a statement anew on each execute, which doubled their cost.
 */
export const sqliteHandleOf = (db: Db): SQLite.Database | undefined => sqliteHandles.get(db);

function openPostgres(url: string, max: number, options: DatabaseOptions): Db {
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 5000 });
  // An idle connection dropped by the server (restart, failover) must not crash
  // the process: the pool discards it and the next query connects afresh.
  pool.on('error', () => {});
  return new Kysely<Database>(observed(new PostgresDialect({ pool }), options));
}
