import type { Db } from './database.js';

/** A 2025-era MCP session as every replica sees it (table `mcp_sessions`). */
export interface McpSessionRecord {
  id: string;
  sub: string;
  clientId: string;
  /** The revision `initialize` negotiated. */
  protocolVersion: string;
  /** The client's `capabilities` from `initialize`. */
  clientCapabilities: Record<string, unknown>;
  /** The client's `clientInfo` from `initialize`. */
  clientInfo: { name: string; version: string } & Record<string, unknown>;
  /** Epoch milliseconds. */
  createdAt: number;
  /** Epoch milliseconds. */
  lastSeenAt: number;
}

/** What a lookup by id and owner found. */
export type SessionUse = { found: true; record: McpSessionRecord } | { found: false; reason: 'unknown' | 'not_owner' };

/**
 * The shared session table. Every statement is keyed by the session id or
 * the owner's sub (indexed), never a scan; one round trip each, except
 * `record` (insert, then the cap) and a refused `use` (which asks why).
 */
export interface McpSessionsStore {
  /**
   * Record a new session and apply the per-person cap: the owner's least
   * recently seen sessions beyond `maxPerUser` (the new one counted) are
   * deleted. Returns the deleted ids.
   */
  record(session: McpSessionRecord, maxPerUser: number): Promise<string[]>;
  /**
   * The session `id` if `owner` opened it, its last-seen time set to `at`
   * (so a rebuild is one round trip). A foreign owner's session is left as it was.
   */
  use(id: string, owner: { sub: string; clientId: string }, at: number): Promise<SessionUse>;
  /** Set the last-seen time of each id (a session seen later than its row says); how many rows still exist. */
  touch(seen: ReadonlyArray<{ id: string; at: number }>): Promise<number>;
  /** Set the last-seen time of `id`; false when the row is gone (the session ended elsewhere). */
  touchOne(id: string, at: number): Promise<boolean>;
  /** Delete one session; false if it was already gone. */
  remove(id: string): Promise<boolean>;
  /** Delete every session of `sub`; the deleted ids. */
  removeOwnedBy(sub: string): Promise<string[]>;
  /** Delete sessions last seen at or before `cutoff` (epoch ms); the deleted ids. */
  removeIdle(cutoff: number): Promise<string[]>;
}

type Row = {
  id: string;
  sub: string;
  client_id: string;
  protocol_version: string;
  client_capabilities: string;
  client_info: string;
  created_at: number | string;
  last_seen_at: number | string;
};

const fromRow = (r: Row): McpSessionRecord => ({
  id: r.id,
  sub: r.sub,
  clientId: r.client_id,
  protocolVersion: r.protocol_version,
  clientCapabilities: JSON.parse(r.client_capabilities) as McpSessionRecord['clientCapabilities'],
  clientInfo: JSON.parse(r.client_info) as McpSessionRecord['clientInfo'],
  // PostgreSQL bigint comes back as text.
  createdAt: Number(r.created_at),
  lastSeenAt: Number(r.last_seen_at),
});

export function mcpSessionsStore(db: Db): McpSessionsStore {
  return {
    async record(s, maxPerUser) {
      if (!Number.isSafeInteger(maxPerUser) || maxPerUser < 1) throw new TypeError('mcpSessionsStore.record: maxPerUser must be a positive integer');
      await db
        .insertInto('mcp_sessions')
        .values({
          id: s.id,
          sub: s.sub,
          client_id: s.clientId,
          protocol_version: s.protocolVersion,
          client_capabilities: JSON.stringify(s.clientCapabilities),
          client_info: JSON.stringify(s.clientInfo),
          created_at: s.createdAt,
          last_seen_at: s.lastSeenAt,
        })
        .execute();
      // The new session is never the one evicted (another replica's clock may run ahead):
      // of the others, the most recently seen maxPerUser − 1 are kept. Concurrent
      // initializes of one person each run this, so the cap converges.
      const keep = db
        .selectFrom('mcp_sessions')
        .select('id')
        .where('sub', '=', s.sub)
        .where('id', '!=', s.id)
        .orderBy('last_seen_at', 'desc')
        .orderBy('created_at', 'desc')
        .limit(maxPerUser - 1);
      const gone = await db.deleteFrom('mcp_sessions').where('sub', '=', s.sub).where('id', '!=', s.id).where('id', 'not in', keep).returning('id').execute();
      return gone.map((r) => r.id);
    },
    async use(id, owner, at) {
      const row = await db
        .updateTable('mcp_sessions')
        .set({ last_seen_at: at })
        .where('id', '=', id)
        .where('sub', '=', owner.sub)
        .where('client_id', '=', owner.clientId)
        .returningAll()
        .executeTakeFirst();
      if (row) return { found: true, record: fromRow(row) };
      // Refused: only now ask whether it exists at all (for the log; the answer is 404 either way).
      const exists = await db.selectFrom('mcp_sessions').select('id').where('id', '=', id).executeTakeFirst();
      return { found: false, reason: exists ? 'not_owner' : 'unknown' };
    },
    async touch(seen) {
      const results = await Promise.all(seen.map(({ id, at }) => db.updateTable('mcp_sessions').set({ last_seen_at: at }).where('id', '=', id).executeTakeFirst()));
      return results.reduce((n, r) => n + Number(r.numUpdatedRows), 0);
    },
    async touchOne(id, at) {
      const r = await db.updateTable('mcp_sessions').set({ last_seen_at: at }).where('id', '=', id).executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },
    async remove(id) {
      const r = await db.deleteFrom('mcp_sessions').where('id', '=', id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    },
    async removeOwnedBy(sub) {
      return (await db.deleteFrom('mcp_sessions').where('sub', '=', sub).returning('id').execute()).map((r) => r.id);
    },
    async removeIdle(cutoff) {
      return (await db.deleteFrom('mcp_sessions').where('last_seen_at', '<=', cutoff).returning('id').execute()).map((r) => r.id);
    },
  };
}
