import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { type Db, sqliteHandleOf } from './database.js';

// Plain JavaScript run with `eval`: a worker on a .ts file loads neither under
// vitest nor tsx without loader hooks, and dist/ would need it copied.
const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
// Never wait: a checkpoint that finds the file busy is tried again at the next tick.
db.pragma('busy_timeout = 0');
const checkpoint = () => db.pragma('wal_checkpoint(PASSIVE)')[0].checkpointed;
const timer = setInterval(() => {
  try {
    checkpoint();
  } catch {}
}, workerData.everyMs);
parentPort.on('message', (m) => {
  if (m === 'now') {
    try {
      parentPort.postMessage({ checkpointed: checkpoint() });
    } catch (e) {
      parentPort.postMessage({ error: String((e && (e.code || e.name)) || 'Error') });
    }
    return;
  }
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

const driverPath = createRequire(import.meta.url).resolve('better-sqlite3');

/** SQLite's own threshold for an automatic checkpoint, in WAL pages (put back if the checkpointer stops). */
const AUTOCHECKPOINT_PAGES = 1000;

export interface SqliteCheckpointer {
  /** One checkpoint now (tests); resolves with the WAL frames it copied, or rejects with SQLite's code. */
  checkpointNow(): Promise<number>;
  /** Ends the thread and gives checkpoints back to the server's connection. */
  stop(): Promise<void>;
}

/**
 * Moves the WAL checkpoints of a SQLite file off the server's thread. By
 * default SQLite checkpoints in whichever commit takes the WAL past 1000
 * pages: one request's write then copies megabytes into the database file and
 * waits for an fsync (synchronous=NORMAL syncs at checkpoints), and every
 * other request waits with it. Here the server's connection never checkpoints
 * (wal_autocheckpoint=0) and a worker thread with its own connection runs a
 * PASSIVE checkpoint every `everyMs`, which waits for no reader or writer and
 * blocks none. A worker that dies hands checkpoints back to the server's
 * connection, so the WAL never grows without bound.
 *
 * Undefined for PostgreSQL and in-memory SQLite (no WAL to checkpoint).
 */
export function startSqliteCheckpointer(db: Db, { everyMs = 500 }: { everyMs?: number } = {}): SqliteCheckpointer | undefined {
  const sqlite = sqliteHandleOf(db);
  if (!sqlite || sqlite.memory || !sqlite.name) return undefined;
  if (!Number.isSafeInteger(everyMs) || everyMs < 1) throw new TypeError('startSqliteCheckpointer: everyMs must be a positive integer');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver: driverPath, path: sqlite.name, everyMs } });
  // The checkpointer alone never keeps a process alive.
  worker.unref();
  sqlite.pragma('wal_autocheckpoint = 0');
  const waiting: { resolve: (n: number) => void; reject: (e: Error) => void }[] = [];
  let running = true;
  const handBack = () => {
    if (!running) return;
    running = false;
    if (sqlite.open) sqlite.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
    for (const w of waiting.splice(0)) w.reject(Object.assign(new Error('SQLite checkpointer stopped'), { name: 'CheckpointerStopped' }));
  };
  worker.on('message', (m: { checkpointed?: number; error?: string }) => {
    const w = waiting.shift();
    if (!w) return;
    if (m.error === undefined) w.resolve(m.checkpointed ?? 0);
    else w.reject(Object.assign(new Error('SQLite checkpoint failed'), { code: m.error }));
  });
  worker.on('error', handBack);
  worker.on('exit', handBack);
  return {
    checkpointNow() {
      if (!running) return Promise.reject(Object.assign(new Error('SQLite checkpointer stopped'), { name: 'CheckpointerStopped' }));
      return new Promise<number>((resolve, reject) => {
        waiting.push({ resolve, reject });
        worker.postMessage('now');
      });
    },
    async stop() {
      if (!running) return;
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.postMessage('stop');
      await exited;
    },
  };
}
