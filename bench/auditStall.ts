import { setTimeout as sleep } from 'node:timers/promises';
import { callOnce, runLoad, type Target } from './load.js';
import type { AuditStallResult } from './results.js';
import type { BenchServer } from './servers.js';
import { latencySummary } from './stats.js';

/** How many other people call: about 80 calls each during a 12 s load, so the p99 is not just the slowest call. */
export const STALL_PEOPLE = 4;
/** Each person's calls before the load, after a few not counted. */
const QUIET_CALLS = 30;
const WARM_CALLS = 5;
/** A person's pace: one whoami every 125 ms at most (8 a second, under the default fair-use rate). */
const PACE_MS = 125;
/** Shortest load with a second of settling at each end and a few seconds between. */
export const MIN_STALL_SECONDS = 4;

/** One person's paced whoami calls until `until()` (or `count` calls); each one's latency in ms. */
async function paced(person: { target: Target; sub: string }, until: () => boolean, count = Infinity): Promise<number[]> {
  const ms: number[] = [];
  while (ms.length < count && !until()) {
    const start = performance.now();
    await callOnce(person.target, person.sub);
    const took = performance.now() - start;
    ms.push(took);
    await sleep(Math.max(0, PACE_MS - took));
  }
  return ms;
}

/**
 * Issue 26 #10: other people's latency while the audit trail writes at full
 * rate on SQLite. One token loads `server` (audit trail on, fair-use limits
 * at their maxima: every call is served and audited, as fast as the server
 * answers) over `connections` connections for `seconds`; `others` each call
 * whoami at a steady pace before the load and from its first second to one
 * before its end, their latencies pooled. Each of their calls is also a
 * fair-use take, a write on the server's thread: while the audit writes held
 * the file's lock from a second connection, that write waited for it.
 */
export async function auditStall(server: BenchServer, target: Target, connections: number, seconds: number, others: { target: Target; sub: string }[]): Promise<AuditStallResult> {
  if (!Number.isInteger(seconds) || seconds < MIN_STALL_SECONDS) throw new Error(`audit stall: seconds must be a whole number ≥ ${MIN_STALL_SECONDS}, got ${seconds}`);
  if (others.length === 0) throw new Error('audit stall: needs at least one other person');
  // A few calls each first, not counted: the first ones open connections and warm caches.
  await Promise.all(others.map((p) => paced(p, () => false, WARM_CALLS)));
  const quiet = (await Promise.all(others.map((p) => paced(p, () => false, QUIET_CALLS)))).flat();
  const writtenBefore = await server.metric('audit_records_written_total');
  const started = performance.now();
  const load = runLoad(target, connections, seconds);
  const during = sleep(1000).then(async () => (await Promise.all(others.map((p) => paced(p, () => performance.now() - started > (seconds - 1) * 1000)))).flat());
  const [loaded, ms] = await Promise.all([load, during]);
  // What the writer had queued when the load ended is written within its flush interval.
  await sleep(1500);
  const written = (await server.metric('audit_records_written_total')) - writtenBefore;
  return { seconds, connections, people: others.length, rps: loaded.rps, errors: loaded.errors, auditWritten: written, quiet: latencySummary(quiet), during: latencySummary(ms) };
}
