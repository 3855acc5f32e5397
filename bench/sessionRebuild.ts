import { callOnce, openSession } from './load.js';
import type { SessionRebuildResult } from './results.js';
import type { BenchServer } from './servers.js';
import { latencySummary } from './stats.js';

/** Sessions opened and rebuilt before the measured ones: connections opened, the rebuild path compiled. */
export const UNMEASURED_REBUILDS = 20;

/** One checked whoami in `sessionId` on `server`, its latency in ms (the whole answer read). */
async function timedCall(server: BenchServer, token: string, sessionId: string, sub: string): Promise<number> {
  const started = performance.now();
  await callOnce({ url: server.mcpUrl, token, sessionId }, sub);
  return performance.now() - started;
}

/**
 * Issue 29's cost of landing on another replica: one at a time, a session is
 * opened on `holder` (initialize, initialized), and its next request, a
 * whoami, goes to `other`, a second process on the same database, which must
 * rebuild it from the row; then one more whoami there, now served from
 * memory. The rebuild's own time comes from `other` (SharedSessions'
 * onRebuilt), which must have rebuilt each session exactly once.
 */
export async function sessionRebuilds(holder: BenchServer, other: BenchServer, token: string, sub: string, sessions: number, database: string): Promise<SessionRebuildResult> {
  const first: number[] = [];
  const held: number[] = [];
  for (let i = 0; i < UNMEASURED_REBUILDS + sessions; i++) {
    const { status, sessionId } = await openSession(holder.mcpUrl, token);
    if (!sessionId) throw new Error(`${holder.name}: initialize answered ${status}`);
    const firstMs = await timedCall(other, token, sessionId, sub);
    const heldMs = await timedCall(other, token, sessionId, sub);
    if (i < UNMEASURED_REBUILDS) continue;
    first.push(firstMs);
    held.push(heldMs);
  }
  const rebuilt = await other.rebuildMs();
  if (rebuilt.length !== UNMEASURED_REBUILDS + sessions) throw new Error(`${other.name}: ${rebuilt.length} sessions rebuilt, expected ${UNMEASURED_REBUILDS + sessions} (one per session)`);
  return {
    sessions,
    database,
    rebuild: latencySummary(rebuilt.slice(UNMEASURED_REBUILDS)),
    firstRequest: latencySummary(first),
    heldRequest: latencySummary(held),
    added: latencySummary(first.map((f, i) => f - held[i]!)),
  };
}
