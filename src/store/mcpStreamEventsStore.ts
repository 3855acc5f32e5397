import { type Db, sqliteHandleOf } from './database.js';

/** One message of a session's SSE stream, as stored for resuming (table `mcp_stream_events`). */
export interface StreamEventRow {
  sessionId: string;
  streamId: string;
  /** Order within the stream: increasing in the one process that writes the stream. */
  seq: number;
  sub: string;
  /** The JSON-RPC message, serialized. */
  message: string;
  /** Epoch milliseconds. */
  createdAt: number;
}

/**
 * The shared log of what 2025 sessions' SSE streams carried. Every read is
 * keyed by session and stream (the primary key's prefix); deletes by
 * session, by person, or by age (indexed).
 */
export interface McpStreamEventsStore {
  append(rows: readonly StreamEventRow[]): Promise<void>;
  /** The messages of one stream of one session after `seq`, in order. */
  after(sessionId: string, streamId: string, seq: number): Promise<{ seq: number; message: string }[]>;
  /** Delete the events of these sessions (ended); how many rows went. */
  removeSessions(ids: readonly string[]): Promise<number>;
  /** Delete every event of `sub`'s sessions; how many rows went. */
  removeOwnedBy(sub: string): Promise<number>;
  /** Delete events written at or before `cutoff` (epoch ms); how many rows went. */
  removeOlderThan(cutoff: number): Promise<number>;
}

/** Rows per INSERT: 6 parameters each, well under SQLite's and PostgreSQL's limits. */
const ROWS_PER_INSERT = 500;

export function mcpStreamEventsStore(db: Db): McpStreamEventsStore {
  const append = sqliteAppend(db);
  return {
    async append(rows) {
      if (append) return append(rows);
      for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
        const chunk = rows.slice(i, i + ROWS_PER_INSERT).map((r) => ({
          session_id: r.sessionId,
          stream_id: r.streamId,
          seq: r.seq,
          sub: r.sub,
          message: r.message,
          created_at: r.createdAt,
        }));
        await db.insertInto('mcp_stream_events').values(chunk).execute();
      }
    },
    async after(sessionId, streamId, seq) {
      const rows = await db
        .selectFrom('mcp_stream_events')
        .select(['seq', 'message'])
        .where('session_id', '=', sessionId)
        .where('stream_id', '=', streamId)
        .where('seq', '>', seq)
        .orderBy('seq')
        .execute();
      // PostgreSQL bigint comes back as text.
      return rows.map((r) => ({ seq: Number(r.seq), message: r.message }));
    },
    async removeSessions(ids) {
      if (!ids.length) return 0;
      const r = await db.deleteFrom('mcp_stream_events').where('session_id', 'in', ids).executeTakeFirst();
      return Number(r.numDeletedRows);
    },
    async removeOwnedBy(sub) {
      const r = await db.deleteFrom('mcp_stream_events').where('sub', '=', sub).executeTakeFirst();
      return Number(r.numDeletedRows);
    },
    async removeOlderThan(cutoff) {
      const r = await db.deleteFrom('mcp_stream_events').where('created_at', '<=', cutoff).executeTakeFirst();
      return Number(r.numDeletedRows);
    },
  };
}

/**
 * The same log in this process's memory: for SQLite, which is one process by
 * definition, so no other replica ever reads it, and a resume (same process)
 * needs no disk write per answer. Bounded by the retention sweep, by `maxRows`
 * and by `maxChars` of messages in all (a tool's answers may be large); the
 * oldest go first.
 */
export function inMemoryStreamEventsStore(maxRows = 100_000, maxChars = 32 * 1024 * 1024): McpStreamEventsStore {
  // Insertion order is write order: the oldest rows are first.
  const rows = new Set<StreamEventRow>();
  const byStream = new Map<string, StreamEventRow[]>();
  let chars = 0;
  const key = (sessionId: string, streamId: string) => `${sessionId}\0${streamId}`;
  const drop = (r: StreamEventRow) => {
    if (rows.delete(r)) chars -= r.message.length;
    const k = key(r.sessionId, r.streamId);
    const list = byStream.get(k)?.filter((x) => x !== r);
    if (list?.length) byStream.set(k, list);
    else byStream.delete(k);
  };
  const removeWhere = (pick: (r: StreamEventRow) => boolean) => {
    let n = 0;
    for (const r of [...rows]) if (pick(r)) (drop(r), n++);
    return n;
  };
  return {
    async append(batch) {
      for (const r of batch) {
        rows.add(r);
        chars += r.message.length;
        const k = key(r.sessionId, r.streamId);
        byStream.set(k, [...(byStream.get(k) ?? []), r]);
      }
      for (const r of rows) {
        if (rows.size <= maxRows && chars <= maxChars) break;
        drop(r);
      }
    },
    async after(sessionId, streamId, seq) {
      return (byStream.get(key(sessionId, streamId)) ?? []).filter((r) => r.seq > seq).map((r) => ({ seq: r.seq, message: r.message }));
    },
    async removeSessions(ids) {
      const gone = new Set(ids);
      return gone.size ? removeWhere((r) => gone.has(r.sessionId)) : 0;
    },
    async removeOwnedBy(sub) {
      return removeWhere((r) => r.sub === sub);
    },
    async removeOlderThan(cutoff) {
      let n = 0;
      for (const r of rows) {
        if (r.createdAt > cutoff) break;
        drop(r);
        n++;
      }
      return n;
    },
  };
}

/**
 * On SQLite, one statement prepared once and run per row in one transaction:
 * Kysely prepares anew on each execute, which cost a 2025 session's calls 13 %
 * of their throughput (every answer is one row). Undefined on PostgreSQL,
 * where a batch is one multi-row INSERT and one round trip.
 */
function sqliteAppend(db: Db): ((rows: readonly StreamEventRow[]) => Promise<void>) | undefined {
  const sqlite = sqliteHandleOf(db);
  if (!sqlite) return undefined;
  const { sql } = db.insertInto('mcp_stream_events').values({ session_id: '', stream_id: '', seq: 0, sub: '', message: '', created_at: 0 }).compile();
  const insert = sqlite.prepare<[string, string, number, string, string, number]>(sql);
  const all = sqlite.transaction((rows: readonly StreamEventRow[]) => {
    for (const r of rows) insert.run(r.sessionId, r.streamId, r.seq, r.sub, r.message, r.createdAt);
  });
  return async (rows) => void all(rows);
}
