import type { SessionStreams } from '../src/mcp/sharedSessions.js';
import type { StreamEvents } from '../src/mcp/streamEvents.js';
import type { McpSessionsStore } from '../src/store/mcpSessionsStore.js';
import type { MemorySessionsStore } from './memorySessionsStore.js';

/**
 * One stateful server, both sides of the shared-sessions pair (bench only),
 * as bench/switchVerifier.ts is for the token check: the sessions of
 * `baselineSub` (the fixed principal of BASELINE_TOKEN) are recorded in
 * `memory`, everyone else's in `shared`, the app's own table. The two sides
 * then run the same SharedSessions, transports and tool, with the same JIT
 * state, and differ only in where their sessions are recorded. A call that
 * names only session ids goes to the store that holds them.
 */
export function switchSessionsStore(shared: McpSessionsStore, memory: MemorySessionsStore, baselineSub: string): McpSessionsStore {
  const bySub = (sub: string) => (sub === baselineSub ? memory : shared);
  const byId = (id: string) => (memory.holds(id) ? memory : shared);
  return {
    record: (s, maxPerUser) => bySub(s.sub).record(s, maxPerUser),
    use: (id, owner, at) => bySub(owner.sub).use(id, owner, at),
    async touch(seen) {
      const inMemory = seen.filter((s) => memory.holds(s.id));
      const inTable = seen.filter((s) => !memory.holds(s.id));
      return (inMemory.length ? await memory.touch(inMemory) : 0) + (inTable.length ? await shared.touch(inTable) : 0);
    },
    touchOne: (id, at) => byId(id).touchOne(id, at),
    remove: (id) => byId(id).remove(id),
    removeOwnedBy: (sub) => bySub(sub).removeOwnedBy(sub),
    removeIdle: async (cutoff) => [...(await memory.removeIdle(cutoff)), ...(await shared.removeIdle(cutoff))],
  };
}

/**
 * The same switch for the sessions' streams: the baseline person's are kept
 * nowhere (no event store, as sessions were before issue 29), everyone
 * else's in the app's shared stream log.
 */
export function switchStreamEvents(shared: StreamEvents, baselineSub: string): SessionStreams {
  return {
    forSession: (sessionId, sub) => (sub === baselineSub ? undefined : shared.forSession(sessionId, sub)),
    forgetSessions: (ids) => shared.forgetSessions(ids),
    forgetOwnedBy: (sub) => shared.forgetOwnedBy(sub),
    close: () => shared.close(),
    sweep: (now) => shared.sweep(now),
  };
}
