import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { callOnce, headersFor, type Target } from './load.js';
import { quantile } from './stats.js';
import type { FloodResult, MemoryPoint } from './results.js';
import type { BenchServer } from './servers.js';

const MiB = 1024 * 1024;
/** Shortest flood with room for three samples (each takes ~1.5 s of forced GCs) apart from each other. */
export const MIN_FLOOD_SECONDS = 8;
/** The other person's calls before the flood. */
const QUIET_CALLS = 30;

async function auditCounts(server: BenchServer): Promise<FloodResult['audit']> {
  const [written, dropped, failed] = await Promise.all(
    ['audit_records_written_total', 'audit_dropped_total', 'audit_write_failures_total'].map((m) => server.metric(m)),
  );
  return { written: written!, dropped: dropped!, failed: failed! };
}

async function point(server: BenchServer, label: string): Promise<MemoryPoint> {
  const m = await server.memory();
  return { label, rssMiB: m.rss / MiB, heapUsedMiB: m.heapUsed / MiB, entries: (await auditCounts(server)).written };
}

/** Another person's pace: one whoami every PACE_MS at most, as an agent working steadily would (8 a second: under the default fair-use rate of 10). */
const PACE_MS = 125;

/** `other`'s whoami calls, one every PACE_MS, until `until()` says stop (or `count` calls); each one's latency in ms. */
async function pacedCalls(other: { target: Target; sub: string }, until: () => boolean, count = Infinity): Promise<number[]> {
  const ms: number[] = [];
  while (ms.length < count && !until()) {
    const start = performance.now();
    await callOnce(other.target, other.sub);
    const took = performance.now() - start;
    ms.push(took);
    await sleep(Math.max(0, PACE_MS - took));
  }
  return ms;
}

const percentiles = (ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => (s.length ? quantile(s, q) : Number.NaN);
  return { p50: at(0.5), p95: at(0.95), n: s.length };
};

/**
 * One token sending `tools/call whoami` as fast as `connections` keep-alive
 * connections allow for `seconds`, against a server with its default limits:
 * all but the first burst are refused (429) and audited as `rate_limited`.
 * Memory is sampled before, a few seconds in, halfway and near the end, while
 * the flood runs; `entries` of each point is audit records written so far.
 * With `other` (another person's token), that person calls whoami at a steady
 * pace before the flood and from its second second to its last: whether the
 * flood slows them.
 */
export async function floodMemory(server: BenchServer, target: Target, connections: number, seconds: number, other?: { target: Target; sub: string }): Promise<FloodResult> {
  if (!Number.isInteger(seconds) || seconds < MIN_FLOOD_SECONDS) throw new Error(`flood: seconds must be a whole number ≥ ${MIN_FLOOD_SECONDS}, got ${seconds}`);
  const quiet = other ? await pacedCalls(other, () => false, QUIET_CALLS) : undefined;
  const before = await auditCounts(server);
  const points = [await point(server, 'before the flood (idle)')];
  const counts = { ok: 0, limited: 0, other: 0 };
  const started = performance.now();
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.url.href,
        connections,
        duration: seconds,
        headers: headersFor(target),
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
        method: 'POST',
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', (_client, status) => {
      if (status === 200) counts.ok++;
      else if (status === 429) counts.limited++;
      else counts.other++;
    });
  });
  const at = async (s: number, label: string) => {
    await sleep(Math.max(0, s * 1000 - (performance.now() - started)));
    points.push(await point(server, label));
  };
  // The other person starts once the flood's burst is spent (its first second), and stops a second before its end.
  const during = other ? sleep(1000).then(() => pacedCalls(other, () => performance.now() - started > (seconds - 1) * 1000)) : undefined;
  await at(2, 'flood, 2 s in');
  await at(seconds / 2 - 0.75, `flood, ${(seconds / 2 - 0.75).toFixed(0)} s in (middle)`);
  await at(seconds - 2, `flood, ${seconds - 2} s in (end)`);
  const result = await done;
  const otherMs = during && quiet ? { quiet: percentiles(quiet), during: percentiles(await during) } : undefined;
  const after = await auditCounts(server);
  return {
    seconds,
    connections,
    ...counts,
    other: counts.other + result.errors + result.timeouts,
    audit: { written: after.written - before.written, dropped: after.dropped - before.dropped, failed: after.failed - before.failed },
    points,
    ...(otherMs ? { otherUser: otherMs } : {}),
  };
}
