/**
 * `npm run bench`: what auth costs, against the real Ory Hydra, as ratios to
 * a baseline measured in the same run. Not part of `npm test`.
 *
 *  1. Load: `tools/call whoami` over keep-alive connections for each
 *     scenario, in three modes: 2025-era stateless and stateful Streamable
 *     HTTP, and 2026-07-28 (stateless, no initialize; the same server processes
 *     as 2025 stateless, only the request shape differs). Every scenario has a
 *     twin: the same configuration with the fixed-principal verifier (its own
 *     baseline), served by the SAME process on its own port and database
 *     (bench/server.ts BENCH_TWIN). Each round loads the two in alternating
 *     turns of a quarter second over the same kept connections
 *     (bench/interleave.ts), which side goes first flipping by round; a
 *     round's ratio is the scenario's req/s ÷ the twin's over their own turns.
 *     The introspect-everything comparison (a hundredfold slower, a contrast,
 *     not a target per mode) runs in 2025 stateless only, in the first two
 *     rounds. The audit-limits scenario (issue 17: the audit trail on and
 *     fair-use limits on, set high enough never to refuse the load) has its
 *     own twin: the same JWT server with both off; 2025 stateless only. The
 *     shared-sessions scenario (issue 29: 2025 sessions recorded in the shared
 *     table, every request on the server that holds its session) is one
 *     stateful server whose session store switches on the person: its twin's
 *     sessions are kept in memory only; both sides the fixed principal; 4
 *     rounds (every round with --sessions-only).
 *  2. Flood: one token against a server with the audit trail and the default
 *     limits (nearly every request a 429 and an audit record), memory sampled
 *     before, a few seconds in, halfway and near the end, and another person's
 *     whoami latency without and during the flood.
 *  3. Audit stall (issue 26): one token loads a server with the audit trail on
 *     and the limits at their maxima (every call audited, at full rate) while
 *     other people call whoami at a steady pace: their p99 with and without it.
 *  4. Session rebuilds (issue 29): one at a time, a session opened on one
 *     server process and its next request sent to a second process on the
 *     same SQLite file, which rebuilds it from the row: the rebuild's ms (the
 *     server's own count), and that request's latency against the next one there.
 *  5. The check alone, and the removed-subject check with and without, in process.
 *  6. Memory: RSS after N and 2N distinct tokens against a token cache bounded
 *     at N (quick: N = 1,000 on a smaller bound; BENCH_MEMORY=full: N = 10,000,
 *     the production bound, which takes ~10 more minutes of minting); after
 *     1,000 sessions.
 *  7. Flow: 20 whole OAuth flows (registration → … → token).
 *  8. Pagination: page 1 and page 1000 of 100,000 notes (keyset vs OFFSET).
 *  9. Report: bench/results/latest.{md,json}, chart.svg, with each phase's duration.
 *
 * `--tracing-only` (issue 30) runs none of the above: bench/tracing.ts.
 *
 * Flags and BENCH_* knobs: bench/settings.ts. The servers and tokens: bench/setup.ts. The
 * phases, in order: bench/phases.ts. The default run takes under 10 minutes on 2 cores.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { log } from './log.js';
import { type Findings, PHASES } from './phases.js';
import { writeReport } from './report.js';
import type { BenchResults } from './results.js';
import { readSettings } from './settings.js';
import { type BenchContext, type Resources, setUp } from './setup.js';
import { tracingBench } from './tracing.js';

type PhaseTimes = NonNullable<BenchResults['phases']>;

/** Times phases back to back: `next` ends the current phase (logging and recording its seconds) and starts the next. */
function phaseClock(first: string): { next(name: string): void; phases: PhaseTimes } {
  const phases: PhaseTimes = [];
  let name = first;
  let started = performance.now();
  return {
    phases,
    next(following) {
      const seconds = (performance.now() - started) / 1000;
      phases.push({ name, seconds });
      log(`phase "${name}" took ${seconds.toFixed(0)} s`);
      name = following;
      started = performance.now();
    },
  };
}

/** The report's whole content: the machine, the settings, what the phases found and how long each took. */
function resultsOf(ctx: BenchContext, found: Findings, phases: PhaseTimes): BenchResults {
  const s = ctx.settings;
  const loads = found.loadAverages ?? [];
  return {
    date: new Date().toISOString(),
    machine: {
      cpu: cpus()[0]?.model.trim() ?? 'unknown',
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / 1024 ** 3),
      node: process.version,
      os: `${platform()} ${release()}`,
      hydra: ctx.hydras.jwt.version,
    },
    settings: { connections: s.connections, durationSeconds: s.seconds, rounds: s.rounds, registeredClients: s.registeredClients, tool: 'whoami', cpuPlacement: ctx.cpuPlacement, pairing: 'same-process', warmSeconds: s.warmSeconds, twinProcesses: s.twinProcesses, sliceMs: s.sliceMs, loadAverage: [Math.min(...loads), Math.max(...loads)], ...(s.quick ? { quick: true } : {}), ...(s.aa ? { aa: true } : {}), ...(s.auditOnly ? { auditOnly: true } : {}), ...(s.credentialOnly ? { credentialOnly: true } : {}), ...(s.sessionsOnly ? { sessionsOnly: true } : {}), ...(s.auditLimits !== 'both' ? { auditLimits: s.auditLimits } : {}) },
    load: found.load ?? [],
    verifier: found.verifier ?? [],
    ...(found.memory ? { memory: found.memory } : {}),
    ...(found.flow ? { flow: found.flow } : {}),
    ...(found.removedCheck ? { removedCheck: found.removedCheck } : {}),
    ...(found.pagination ? { pagination: found.pagination } : {}),
    ...(found.flood ? { flood: found.flood } : {}),
    ...(found.auditStall ? { auditStall: found.auditStall } : {}),
    ...(found.sessionRebuild ? { sessionRebuild: found.sessionRebuild } : {}),
    phases,
  };
}

/** Set up, walk the phases, write the report; whatever happens, stop everything started. */
async function main() {
  const settings = readSettings(process.argv.slice(2), process.env);
  if (settings.tracingOnly) return tracingOnly(settings);
  const clock = phaseClock('start: Hydras, servers, clients, tokens');
  const own: Resources = { dir: await mkdtemp(join(tmpdir(), 'hydra-mcp-bench-')), cleanups: [], hydraLog: [] };
  try {
    const ctx = await setUp(settings, own);
    const found: Findings = {};
    for (const phase of PHASES) {
      if (!phase.when(ctx)) continue;
      clock.next(phase.name(ctx));
      Object.assign(found, await phase.run(ctx));
    }
    clock.next('report');
    const { markdown, files } = await writeReport(resultsOf(ctx, found, clock.phases), settings.resultsDir);
    console.log(markdown);
    log(`written: ${files.join(', ')}`);
  } catch (e) {
    if (own.hydraLog.length) log(`Hydra's last lines:\n${own.hydraLog.slice(-20).join('\n')}`);
    throw e;
  } finally {
    for (const c of own.cleanups.reverse()) await c().catch(() => undefined);
    await rm(own.dir, { recursive: true, force: true });
  }
}

/** `--tracing-only`: its own Hydra, servers and report (bench/tracing.ts); whatever happens, stop everything started. */
async function tracingOnly(settings: ReturnType<typeof readSettings>) {
  const own: Resources = { dir: await mkdtemp(join(tmpdir(), 'hydra-mcp-bench-')), cleanups: [], hydraLog: [] };
  try {
    await tracingBench(settings, own);
  } catch (e) {
    if (own.hydraLog.length) log(`Hydra's last lines:\n${own.hydraLog.slice(-20).join('\n')}`);
    throw e;
  } finally {
    for (const c of own.cleanups.reverse()) await c().catch(() => undefined);
    await rm(own.dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
