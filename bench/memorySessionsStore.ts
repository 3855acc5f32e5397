import type { McpSessionRecord, McpSessionsStore } from '../src/store/mcpSessionsStore.js';

/** The in-memory store, and whether it holds a session (for bench/switchSessionsStore.ts). */
export interface MemorySessionsStore extends McpSessionsStore {
  holds(id: string): boolean;
}

/**
 * The shared-sessions pair's baseline (bench only): McpSessionsStore's
 * contract kept in this process's memory instead of the shared table, so the
 * pair differs only in where sessions are recorded. Faithful to
 * src/store/mcpSessionsStore.ts: the per-person cap evicts the least recently
 * seen others (ties: the older), never the new one; `use` checks the owner
 * and sets last-seen; records are copied in and out, as rows would be.
 * Keyed by id and by person, like the table's indexes; only `removeIdle` visits every session.
 */
export function memorySessionsStore(): MemorySessionsStore {
  const byId = new Map<string, McpSessionRecord>();
  const bySub = new Map<string, Set<string>>();
  const drop = (id: string): boolean => {
    const s = byId.get(id);
    if (!s) return false;
    byId.delete(id);
    const ids = bySub.get(s.sub)!;
    ids.delete(id);
    if (ids.size === 0) bySub.delete(s.sub);
    return true;
  };
  return {
    holds: (id) => byId.has(id),
    async record(s, maxPerUser) {
      if (!Number.isSafeInteger(maxPerUser) || maxPerUser < 1) throw new TypeError('memorySessionsStore.record: maxPerUser must be a positive integer');
      // The table's primary key refuses a second session with one id.
      if (byId.has(s.id)) throw new Error(`memorySessionsStore.record: session ${s.id} already recorded`);
      const others = [...(bySub.get(s.sub) ?? [])].map((id) => byId.get(id)!);
      byId.set(s.id, structuredClone(s));
      bySub.set(s.sub, (bySub.get(s.sub) ?? new Set()).add(s.id));
      const gone = others
        .sort((a, b) => b.lastSeenAt - a.lastSeenAt || b.createdAt - a.createdAt)
        .slice(maxPerUser - 1)
        .map((o) => o.id);
      for (const id of gone) drop(id);
      return gone;
    },
    async use(id, owner, at) {
      const s = byId.get(id);
      if (!s) return { found: false, reason: 'unknown' };
      if (s.sub !== owner.sub || s.clientId !== owner.clientId) return { found: false, reason: 'not_owner' };
      s.lastSeenAt = at;
      return { found: true, record: structuredClone(s) };
    },
    async touch(seen) {
      let n = 0;
      for (const { id, at } of seen) {
        const s = byId.get(id);
        if (s) {
          s.lastSeenAt = at;
          n++;
        }
      }
      return n;
    },
    async touchOne(id, at) {
      const s = byId.get(id);
      if (s) s.lastSeenAt = at;
      return s !== undefined;
    },
    async remove(id) {
      return drop(id);
    },
    async removeOwnedBy(sub) {
      const ids = [...(bySub.get(sub) ?? [])];
      for (const id of ids) drop(id);
      return ids;
    },
    async removeIdle(cutoff) {
      const ids = [...byId.values()].filter((s) => s.lastSeenAt <= cutoff).map((s) => s.id);
      for (const id of ids) drop(id);
      return ids;
    },
  };
}
