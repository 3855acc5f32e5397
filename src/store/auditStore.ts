import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Insertable, Selectable } from 'kysely';
import { type Db, sqliteHandleOf } from './database.js';
import type { AuditEventsTable } from './schema.js';

/** What happened. Tool calls and the account events a person or operator may need to explain. */
export const AUDIT_KINDS = ['tool_call', 'sign_in_ok', 'sign_in_failed', 'consent_granted', 'consent_revoked', 'client_registered', 'credential_used'] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

/**
 * How it ended. Tool calls: ok … unknown_tool (`denied`: a machine client
 * calling a people-only tool). Account events: ok, or `refused` (wrong
 * password, throttled sign-in), `reconnect` / `unavailable` / `refreshed` for
 * credential uses (the connected-accounts outcomes).
 */
export const AUDIT_OUTCOMES = [
  'ok',
  'error',
  'insufficient_scope',
  'revoked',
  'rate_limited',
  'invalid_input',
  'unknown_tool',
  'denied',
  'refused',
  'refreshed',
  'reconnect',
  'unavailable',
] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** Longest `detail` kept: a short reason, never content. */
export const MAX_DETAIL_LENGTH = 200;

/**
 * One audit record. Never tool arguments or results, tokens, secrets,
 * passwords, or the email of a failed sign-in (see docs/operating.md, "Audit and Activity").
 */
export interface AuditEvent {
  /** Unique id (random UUID); breaks ties between records of the same millisecond. */
  id: string;
  /** ISO-8601 UTC with milliseconds. */
  at: string;
  kind: AuditKind;
  /** The HTTP request's X-Request-Id, when the event came from one. */
  requestId?: string;
  /** Whose record it is; absent only for a failed sign-in of an unknown account. */
  sub?: string;
  clientId?: string;
  /** Hydra's client_name, looked up (cached) when the record is written. */
  clientName?: string;
  tool?: string;
  /** The scopes the token carried, space-separated. */
  scopes?: string;
  outcome: AuditOutcome;
  durationMs?: number;
  /** streamable-http | streamable-http-2026 | sse. */
  transport?: string;
  /** A short reason (e.g. "unknown account"), at most MAX_DETAIL_LENGTH characters. */
  detail?: string;
}

/** Where a page of one person's records ends. */
export interface AuditPosition {
  at: string;
  id: string;
}

export interface AuditPage {
  events: AuditEvent[];
  /** Position to continue from; absent on the last page. */
  next?: AuditPosition;
}

/** Operator filters (every one optional; all given ones must match). */
export interface AuditFilter {
  sub?: string;
  clientId?: string;
  tool?: string;
  /** Records at or after this time. */
  since?: Date;
  limit: number;
}

/** Largest page or search result read at once. */
export const MAX_AUDIT_PAGE = 1000;

export interface AuditStore {
  /** Insert a batch in one statement (the writer's unit of work). */
  insertMany(events: readonly AuditEvent[]): Promise<void>;
  /** One person's records, newest first, after `after` (exclusive): a keyset read on (sub, at, id). */
  pageForSubject(sub: string, opts: { limit: number; after?: AuditPosition }): Promise<AuditPage>;
  /** Newest first, filtered (the operator CLI). */
  search(filter: AuditFilter): Promise<AuditEvent[]>;
  /** Delete records older than `before`, at most `batch` per call; returns how many. */
  deleteOlderThan(before: Date, batch?: number): Promise<number>;
}

/** The table's columns, in the order rowValues gives an event's values. */
const COLUMNS = ['id', 'at', 'kind', 'request_id', 'sub', 'client_id', 'client_name', 'tool', 'scopes', 'outcome', 'duration_ms', 'transport', 'detail'] as const satisfies readonly (keyof AuditEventsTable)[];

/**
 * An event's values in COLUMNS' order, every column named (null when absent): bound as they
 * are by SQLite's prepared insert, one array per row (a row object turned into an array cost
 * ten times as much on the writer's path).
 */
const rowValues = (e: AuditEvent): (string | number | null)[] => [
  e.id,
  e.at,
  e.kind,
  e.requestId ?? null,
  e.sub ?? null,
  e.clientId ?? null,
  e.clientName ?? null,
  e.tool ?? null,
  e.scopes ?? null,
  e.outcome,
  e.durationMs === undefined ? null : Math.round(e.durationMs),
  e.transport ?? null,
  e.detail === undefined ? null : e.detail.slice(0, MAX_DETAIL_LENGTH),
];

/** The same values as a row object (PostgreSQL's insert, through Kysely). */
const toRow = (e: AuditEvent): Insertable<AuditEventsTable> => {
  const values = rowValues(e);
  return Object.fromEntries(COLUMNS.map((column, i) => [column, values[i]])) as unknown as Insertable<AuditEventsTable>;
};

const toEvent = (r: Selectable<AuditEventsTable>): AuditEvent => {
  const e: AuditEvent = { id: r.id, at: r.at, kind: r.kind as AuditKind, outcome: r.outcome as AuditOutcome };
  if (r.request_id !== null) e.requestId = r.request_id;
  if (r.sub !== null) e.sub = r.sub;
  if (r.client_id !== null) e.clientId = r.client_id;
  if (r.client_name !== null) e.clientName = r.client_name;
  if (r.tool !== null) e.tool = r.tool;
  if (r.scopes !== null) e.scopes = r.scopes;
  if (r.duration_ms !== null) e.durationMs = Number(r.duration_ms);
  if (r.transport !== null) e.transport = r.transport;
  if (r.detail !== null) e.detail = r.detail;
  return e;
};

const checkLimit = (limit: number) => {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_AUDIT_PAGE) throw new RangeError(`audit page limit must be an integer from 1 to ${MAX_AUDIT_PAGE}`);
};

const INSERT_SQL = `INSERT INTO audit_events (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`;

/**
 * SQLite: one prepared single-row insert, run for each event in one
 * transaction (better-sqlite3 is synchronous). Kysely's multi-row insert
 * compiled and prepared a 2,600-parameter statement per batch: 2× the cost
 * of this.
 */
function preparedInsert(sqlite: NonNullable<ReturnType<typeof sqliteHandleOf>>): (events: readonly AuditEvent[]) => void {
  const statement = sqlite.prepare(INSERT_SQL);
  return sqlite.transaction((events: readonly AuditEvent[]) => {
    for (const e of events) statement.run(rowValues(e));
  });
}

/** Where the audit writer puts its batches (src/audit/auditWriter.ts). */
export interface AuditInserter {
  /** Insert the batch; a record whose id is already stored is skipped, so a batch may be sent again after a failure part-way. */
  insertMany(events: readonly AuditEvent[]): Promise<void>;
  /** Whether a failed insert may succeed if tried again later (a lock, a lost connection), rather than never. */
  retryable(error: unknown): boolean;
}

/**
 * How long one transaction of the writer's inserts holds the server's thread
 * on SQLite, ms: about what one request costs it, so a request that arrives
 * during a batch waits no longer (about 100 rows at 10 µs each; smaller
 * transactions cost more per row, each commit rewriting the same index pages).
 */
const SQLITE_TRANSACTION_MS = 1;

/**
 * The audit writer's inserts, idempotent by record id.
 *
 * SQLite: on the server's own connection, the file's one writer in this
 * process. Audit rows written from a second connection (a worker thread)
 * would hold the file's write lock while the server's own writes, the
 * fair-use take on every request among them, waited for it synchronously in
 * SQLite's busy handler, the event loop stopped. Here a batch is a few short
 * transactions with a turn of the event loop between them, each taken through
 * Kysely's connection lock (never inside another caller's open transaction)
 * and with busy_timeout 0: a lock held by another process (the user CLI)
 * fails it at once with SQLITE_BUSY, and the writer tries it again later
 * instead of the thread sleeping until the lock is free.
 * PostgreSQL: one statement on the pool (network I/O, off the thread).
 */
export function auditInserter(db: Db): AuditInserter {
  const sqlite = sqliteHandleOf(db);
  if (!sqlite) {
    return {
      async insertMany(events) {
        if (events.length === 0) return;
        await db.insertInto('audit_events').values(events.map(toRow)).onConflict((oc) => oc.column('id').doNothing()).execute();
      },
      retryable: isTransientPostgresError,
    };
  }
  const statement = sqlite.prepare(`${INSERT_SQL} ON CONFLICT (id) DO NOTHING`);
  // Rows from `from` on, until the time is up; where the next transaction starts.
  const insertSome = sqlite.transaction((events: readonly AuditEvent[], from: number): number => {
    const until = performance.now() + SQLITE_TRANSACTION_MS;
    let at = from;
    do statement.run(rowValues(events[at++]!));
    while (at < events.length && performance.now() < until);
    return at;
  });
  const insertWithoutWaiting = (events: readonly AuditEvent[], from: number): number => {
    // pragma() each time: SQLite applies (and reads) busy_timeout when the PRAGMA is prepared,
    // so a statement prepared once would neither set nor read it on a later run.
    const waits = sqlite.pragma('busy_timeout', { simple: true }) as number;
    sqlite.pragma('busy_timeout = 0');
    try {
      // IMMEDIATE: the write lock is taken (or refused) at BEGIN, never half-way through.
      return insertSome.immediate(events, from);
    } finally {
      sqlite.pragma(`busy_timeout = ${waits}`);
    }
  };
  return {
    async insertMany(events) {
      for (let at = 0; at < events.length; ) {
        if (at > 0) await nextTurn();
        const from = at;
        at = await db.connection().execute(async () => insertWithoutWaiting(events, from));
      }
    },
    retryable: (e) => /^SQLITE_(BUSY|LOCKED)/.test(codeOf(e)),
  };
}

const codeOf = (e: unknown): string => (typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : '');

/** PostgreSQL errors that say "not now" rather than "never": a lost or refused connection, a server restarting, a serialization conflict. */
function isTransientPostgresError(e: unknown): boolean {
  const code = codeOf(e);
  if (/^08|^57P0[123]$|^53300$|^40001$|^40P01$/.test(code)) return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)) return true;
  // node-postgres's own, without a code.
  const message = e instanceof Error ? e.message : '';
  return /Connection terminated|timeout exceeded when trying to connect/.test(message);
}

export function auditStore(db: Db): AuditStore {
  const sqlite = sqliteHandleOf(db);
  let insertSqlite: ReturnType<typeof preparedInsert> | undefined;
  return {
    async insertMany(events) {
      if (events.length === 0) return;
      if (sqlite) {
        insertSqlite ??= preparedInsert(sqlite);
        insertSqlite(events);
        return;
      }
      await db.insertInto('audit_events').values(events.map(toRow)).execute();
    },
    async pageForSubject(sub, { limit, after }) {
      if (!sub) throw new TypeError('auditStore.pageForSubject: sub must be a non-empty string');
      checkLimit(limit);
      let q = db.selectFrom('audit_events').selectAll().where('sub', '=', sub);
      if (after) {
        const { at, id } = after;
        q = q.where((eb) => eb.or([eb('at', '<', at), eb.and([eb('at', '=', at), eb('id', '<', id)])]));
      }
      const rows = await q.orderBy('at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
      const events = rows.slice(0, limit).map(toEvent);
      const last = events[events.length - 1];
      return rows.length > limit && last ? { events, next: { at: last.at, id: last.id } } : { events };
    },
    async search({ sub, clientId, tool, since, limit }) {
      checkLimit(limit);
      let q = db.selectFrom('audit_events').selectAll();
      if (sub !== undefined) q = q.where('sub', '=', sub);
      if (clientId !== undefined) q = q.where('client_id', '=', clientId);
      if (tool !== undefined) q = q.where('tool', '=', tool);
      if (since !== undefined) q = q.where('at', '>=', since.toISOString());
      const rows = await q.orderBy('at', 'desc').orderBy('id', 'desc').limit(limit).execute();
      return rows.map(toEvent);
    },
    async deleteOlderThan(before, batch = 5000) {
      // Bounded batches: a long-unswept table never turns into one huge transaction.
      const ids = db.selectFrom('audit_events').select('id').where('at', '<', before.toISOString()).orderBy('at').limit(batch);
      const r = await db.deleteFrom('audit_events').where('id', 'in', ids).executeTakeFirst();
      return Number(r.numDeletedRows);
    },
  };
}
