import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

// Plain JavaScript run with `eval`: a worker on a .ts file loads neither under
// vitest nor tsx without loader hooks, and dist/ would need it copied.
const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
db.pragma('synchronous = NORMAL');
const statement = db.prepare(workerData.sql);
const runAll = db.transaction((rows) => { for (const row of rows) statement.run(row); });
parentPort.on('message', (m) => {
  if (m.close) {
    db.close();
    parentPort.close();
    return;
  }
  try {
    runAll(JSON.parse(m.rows));
    parentPort.postMessage({ id: m.id });
  } catch (e) {
    // The error's code or name only: a driver message can quote the values.
    parentPort.postMessage({ id: m.id, error: String((e && (e.code || e.name)) || 'Error') });
  }
});
`;

const driverPath = createRequire(import.meta.url).resolve('better-sqlite3');

export interface SqliteBatchWorkerOptions {
  /** The SQLite file (already created and migrated by the server's own connection). */
  path: string;
  /** One statement with positional `?` parameters, run once per row. */
  sql: string;
  /** How long a batch waits for the file's write lock, ms. Default 5000 (the server's own connection's). */
  busyTimeoutMs?: number;
}

/**
 * Runs one prepared statement for each row of a batch, in one transaction, on
 * a worker thread with its own connection to the SQLite file: better-sqlite3
 * is synchronous, and on the server's thread each audit row cost about 15 µs
 * of every tool call. WAL lets the two connections share the file; the server's
 * own writes wait at most for one batch (busy_timeout), as long as the insert
 * used to block its thread.
 *
 * A batch that fails rejects with an Error named by SQLite's code. A worker
 * that dies (or never starts) fails its pending batches; the next batch starts
 * a new one. The worker holds the process open only while a batch is pending.
 */
type Pending = Map<number, { resolve: () => void; reject: (e: Error) => void }>;

export class SqliteBatchWorker {
  // The live worker and the batches it has not answered yet.
  private current: { worker: Worker; pending: Pending } | undefined;
  private nextId = 0;
  private closed = false;

  constructor(private readonly options: SqliteBatchWorkerOptions) {
    if (!options.path || options.path === ':memory:') throw new TypeError('SqliteBatchWorker: path must name a file (an in-memory database is not shared with a worker)');
    // Started now, not at the first batch: a thread inherits its creator's CPU affinity, and a
    // process pinned after start-up (the benchmark pins the main thread) keeps the worker free.
    this.current = this.spawn();
    this.current.worker.unref();
  }

  /** Run the statement for every row (JSON values: text, numbers, null) in one transaction; resolves once committed. */
  run(rows: readonly (readonly (string | number | null)[])[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('SqliteBatchWorker: closed'));
    if (rows.length === 0) return Promise.resolve();
    const { worker, pending } = (this.current ??= this.spawn());
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.ref();
      // As one JSON string: cheaper for the sending thread than a structured clone of many small arrays.
      worker.postMessage({ id, rows: JSON.stringify(rows) });
    });
  }

  /** Let pending batches finish, then close the worker's connection and end it. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.current?.worker;
    // No live worker: none started, or the last one already exited.
    if (!worker) return;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.ref();
    // Messages are handled in order: every batch sent before this one is answered first.
    worker.postMessage({ close: true });
    await exited;
  }

  private spawn(): { worker: Worker; pending: Pending } {
    const { path, sql, busyTimeoutMs = 5000 } = this.options;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver: driverPath, path, sql, busyTimeoutMs } });
    const pending: Pending = new Map();
    const self = { worker, pending };
    worker.on('message', ({ id, error }: { id: number; error?: string }) => {
      const p = pending.get(id);
      pending.delete(id);
      if (pending.size === 0) worker.unref();
      if (!p) return;
      if (error === undefined) return p.resolve();
      const e = new Error('SQLite batch failed');
      e.name = error;
      p.reject(e);
    });
    const fail = (why: string) => {
      if (this.current === self) this.current = undefined;
      for (const p of pending.values()) p.reject(Object.assign(new Error(`SQLite batch worker ${why}`), { name: 'WorkerExited' }));
      pending.clear();
    };
    worker.on('error', (e: unknown) => fail(`failed: ${e instanceof Error ? e.name : 'unknown'}`));
    worker.on('exit', () => fail('exited'));
    return self;
  }
}
