/**
 * The bench's phases, in the order they run: each a function of the set-up
 * context that answers its part of the results. `run.ts` walks `PHASES`,
 * skipping those whose `when` is false, and times each one.
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { DEFAULT_SESSION_LIMITS } from '../src/mcp/sessions.js';
import { addUserWithCli } from '../test/support/userCli.js';
import { auditStall, STALL_PEOPLE } from './auditStall.js';
import { BASELINE_SUB } from './fixedPrincipal.js';
import { floodMemory } from './flood.js';
import { summariseFlows, timeOneFlow } from './flow.js';
import { createClient, mintToken, mintTokens } from './hydraTokens.js';
import { runInterleaved } from './interleave.js';
import { callOnce, openSession, type Target } from './load.js';
import { log } from './log.js';
import { sessionMemory, tokenMemory } from './memory.js';
import { paginationCost } from './pagination.js';
import type { AuditStallResult, FloodResult, FlowResult, LoadResult, LoadSample, MemoryResult, PaginationResult, RemovedCheckCost, Scenario, SessionRebuildResult, VerifierCost } from './results.js';
import { OWN_TWIN } from './results.js';
import type { BenchContext } from './setup.js';
import { sessionRebuilds } from './sessionRebuild.js';
import { CONTRASTS, MODES, pairKeys, processKeys, type Settings, scenariosOf } from './settings.js';
import { median } from './stats.js';
import { BASELINE_TOKEN } from './switchVerifier.js';
import { removedCheckCost, verifierCost } from './verifierCost.js';

/** What the phases found, each phase answering its own fields. */
export interface Findings {
  load?: LoadResult[];
  /** The machine's 1-minute load average at every pair: says whether the run had the machine to itself. */
  loadAverages?: number[];
  verifier?: VerifierCost[];
  removedCheck?: RemovedCheckCost;
  memory?: MemoryResult;
  flow?: FlowResult;
  pagination?: PaginationResult;
  flood?: FloodResult;
  auditStall?: AuditStallResult;
  sessionRebuild?: SessionRebuildResult;
}

export interface Phase {
  /** Its name in the log and in the report's phase table. */
  name: (ctx: BenchContext) => string;
  /** Whether this run has it. */
  when: (ctx: BenchContext) => boolean;
  run: (ctx: BenchContext) => Promise<Findings>;
}

const always = () => true;
const fullRun = (ctx: BenchContext) => ctx.memory !== undefined;

/** The run, top to bottom. */
export const PHASES: Phase[] = [
  { name: (c) => `warm-up (${c.settings.warmSeconds} s per pair)`, when: always, run: warmUp },
  { name: () => 'load', when: always, run: loadPairs },
  { name: (c) => `audit + limits flood (${c.settings.floodSeconds} s)`, when: (c) => c.flooded !== undefined, run: flood },
  { name: (c) => `another person while audit writes at full rate (${c.settings.stallSeconds} s)`, when: (c) => c.stalled !== undefined, run: stall },
  { name: (c) => `session rebuilds on a second process (${c.settings.rebuilds} sessions)`, when: (c) => c.settings.rebuilds > 0, run: rebuilds },
  // The full run only, from here.
  { name: () => 'the check alone, in process', when: fullRun, run: checkAlone },
  { name: memoryPhaseName, when: fullRun, run: memory },
  { name: () => 'OAuth flows', when: fullRun, run: flows },
  { name: () => 'pagination (100,000 notes)', when: fullRun, run: pagination },
];

// ── 1. load: each scenario and its twin in one process, loaded in turns ──
// The pair shares a process (heap, JIT, memory layout): two processes of
// the same build differ by a few % on their own, which used to decide the
// ratios. Only one side is loaded at a time, in turns of sliceMs over
// kept connections (bench/interleave.ts), so each has the CPU to itself
// (no scheduler share between them, no advantage for a side that waits on
// Hydra) and the host's drifts (this VM's speed moves by tens of % within
// seconds) reach both alike. Warm-up first: a fresh server needs ~8,000
// calls before its cost per call settles.

/** The pair `key` in turns, scenario first unless `twinFirst`; answers [scenario, twin]. */
async function interleaved(ctx: BenchContext, key: string, slices: number, sliceMs: number, twinFirst = false): Promise<[LoadSample, LoadSample]> {
  const [a, b] = [ctx.targets.get(key)!, ctx.targets.get(`${key}/baseline`)!];
  const options = { connections: ctx.settings.connections, sliceMs, slices, cpuMicros: () => a.server.cpuMicros() };
  if (!twinFirst) return runInterleaved([a.target, b.target], options);
  const [twin, scenario] = await runInterleaved([b.target, a.target], options);
  return [scenario, twin];
}

async function warmUp(ctx: BenchContext): Promise<Findings> {
  const { warmSeconds, warmSliceMs } = ctx.settings;
  for (const key of pairKeys(ctx.settings)) await interleaved(ctx, key, Math.round((warmSeconds * 1000) / warmSliceMs), warmSliceMs);
  return {};
}

type Pairs = Map<string, { scenario: LoadSample; baseline: LoadSample }[]>;

/** Every round, then the results, the audit-limits pair's check, and the scenario servers stopped. */
async function loadPairs(ctx: BenchContext): Promise<Findings> {
  const { settings } = ctx;
  const pairs: Pairs = new Map();
  const loadAverages: number[] = [];
  for (let round = 0; round < settings.rounds; round++) {
    const flip = round % 2 === 1;
    for (const mode of MODES) {
      const inRound = scenariosOf(settings, mode).filter(
        (s) => s !== 'baseline' && (s !== 'introspect-everything' || round < settings.everythingRounds) && (!CONTRASTS.includes(s) || round < settings.contrastRounds) && (s !== 'shared-sessions' || round < settings.sessionRounds),
      );
      for (const scenario of flip ? [...inRound].reverse() : inRound) {
        loadAverages.push(loadavg()[0]!);
        const pair = await runPair(ctx, `${mode}/${scenario}`, round, `round ${round + 1}/${settings.rounds}`);
        pairs.set(`${mode}/${scenario}`, [...(pairs.get(`${mode}/${scenario}`) ?? []), pair]);
      }
    }
  }
  const load = summariseLoad(settings, pairs);
  await checkAuditLimits(ctx);
  checkSharedSessions(ctx);
  for (const s of ctx.load.values()) await s.stop();
  return { load, loadAverages };
}

/** One round of one pair: a scenario with its own twin server runs each round in the next of its processes. */
async function runPair(ctx: BenchContext, scenarioKey: string, round: number, label: string): Promise<{ scenario: LoadSample; baseline: LoadSample }> {
  const { settings, targets } = ctx;
  const suffixes = processKeys(settings, scenarioKey.slice(scenarioKey.indexOf('/') + 1) as Scenario);
  const key = `${scenarioKey}${suffixes[round % suffixes.length]}`;
  // The process sat idle while other pairs ran: a moment of unmeasured turns first.
  await interleaved(ctx, key, 2, 150);
  // Which side takes the first turn alternates by round.
  const slices = 2 * Math.max(1, Math.round((settings.seconds * 1000) / settings.sliceMs));
  const [scenario, baseline] = await interleaved(ctx, key, slices, settings.sliceMs, round % 2 === 1);
  for (const k of [key, `${key}/baseline`]) await callOnce(targets.get(k)!.target, targets.get(k)!.sub);
  const show = (s: LoadSample) => `${s.rps.toFixed(0)} req/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, ${s.cpuUs!.toFixed(0)} µs CPU/req, errors ${s.errors}`;
  log(`${label} ${key}: ${(scenario.rps / baseline.rps).toFixed(3)}× (${show(scenario)} | twin ${show(baseline)})`);
  return { scenario, baseline };
}

/** Each scenario's medians over its rounds, and its ratios to the twin beside it. */
function summariseLoad(settings: Settings, pairs: Pairs): LoadResult[] {
  return MODES.flatMap((mode) =>
    scenariosOf(settings, mode).map((scenario): LoadResult => {
      if (scenario === 'baseline') {
        // Every fixed-principal twin's runs in this mode: the baseline's absolute numbers, ratio 1 by definition.
        const rounds = scenariosOf(settings, mode)
          .filter((s) => !OWN_TWIN.includes(s))
          .flatMap((s) => (pairs.get(`${mode}/${s}`) ?? []).map((p) => p.baseline));
        const cpuUs = median(rounds.map((r) => r.cpuUs!));
        return { mode, scenario, rps: median(rounds.map((r) => r.rps)), p50: median(rounds.map((r) => r.p50)), p99: median(rounds.map((r) => r.p99)), ratio: { rps: 1, p50: 1, p99: 1, cpu: 1 }, cpuUs, p99AddedMs: 0, rounds, pairedBaseline: [] };
      }
      const own = pairs.get(`${mode}/${scenario}`)!;
      const rounds = own.map((p) => p.scenario);
      const ratio = (pick: (s: LoadSample) => number) => median(own.map((p) => pick(p.scenario) / pick(p.baseline)));
      return {
        mode,
        scenario,
        rps: median(rounds.map((r) => r.rps)),
        p50: median(rounds.map((r) => r.p50)),
        p99: median(rounds.map((r) => r.p99)),
        // Capacity is the inverse cost ratio: baseline µs per request over the scenario's.
        ratio: { rps: ratio((s) => s.rps), p50: ratio((s) => s.p50), p99: ratio((s) => s.p99), cpu: ratio((s) => 1 / s.cpuUs!) },
        cpuUs: median(rounds.map((r) => r.cpuUs!)),
        p99AddedMs: median(own.map((p) => p.scenario.p99 - p.baseline.p99)),
        rounds,
        pairedBaseline: own.map((p) => p.baseline),
      };
    }),
  );
}

/** The audit-limits scenario must have audited and never refused (else it measured 429s); its twin must have audited nothing. */
async function checkAuditLimits(ctx: BenchContext): Promise<void> {
  const { settings } = ctx;
  for (const suffix of scenariosOf(settings, 'stateless').includes('audit-limits') ? processKeys(settings, 'audit-limits') : []) {
    const auditPair = ctx.load.get(`stateless/audit-limits${suffix}`)!;
    const written = await auditPair.metric('audit_records_written_total');
    // No refusal yet: no such sample in the metrics.
    const refusedBy = (scope: string) => auditPair.metric('mcp_rate_limited_total', { scope }).catch(() => 0);
    const refused = (await refusedBy('principal')) + (await refusedBy('client'));
    const twinWritten = await auditPair.twin!.metric('audit_records_written_total');
    log(`audit-limits${suffix}: ${written} audit records written, ${refused} refused; twin ${twinWritten} written`);
    if (!settings.aa && ((settings.auditLimits !== 'limits' && written === 0) || refused > 0 || twinWritten > 0)) throw new Error(`audit-limits: expected records and no refusals on the scenario, none on its twin; got ${written} written, ${refused} refused, twin ${twinWritten}`);
  }
}

/** The shared-sessions scenario's session must be in its server's table and its twin's not (else the pair measured the same store twice). */
function checkSharedSessions(ctx: BenchContext): void {
  if (!scenariosOf(ctx.settings, 'stateful').includes('shared-sessions')) return;
  const sessionOf = (key: string) => ctx.targets.get(key)!.target.sessionId!;
  // The server's database: bench/setup.ts names it after the server.
  const db = new SQLite(join(ctx.dir, 'stateful-shared-sessions.sqlite'), { readonly: true, fileMustExist: true });
  try {
    const inTable = (key: string) => db.prepare('SELECT 1 FROM mcp_sessions WHERE id = ?').get(sessionOf(key)) !== undefined;
    const [scenarioRow, twinRow] = [inTable('stateful/shared-sessions'), inTable('stateful/shared-sessions/baseline')];
    log(`shared-sessions: the scenario's session ${scenarioRow ? 'is' : 'is not'} in the table, the twin's ${twinRow ? 'is' : 'is not'}`);
    if (!ctx.settings.aa && (!scenarioRow || twinRow)) throw new Error("shared-sessions: expected the scenario's session in the shared table and the twin's only in memory");
  } finally {
    db.close();
  }
}

/** A person of their own: their own client (client_credentials: the client is the subject), so their own buckets. */
async function otherPerson(ctx: BenchContext, server: { mcpUrl: URL }, name: string): Promise<{ target: Target; sub: string }> {
  const { jwt } = ctx.hydras;
  const c = await createClient(jwt.adminUrl, [server.mcpUrl.href], name);
  return { target: { url: server.mcpUrl, token: await mintToken(jwt.publicUrl, c, server.mcpUrl.href) }, sub: c.clientId };
}

// ── 2. flood (issue 17): one token floods a server with the audit trail and the default limits ──
async function flood(ctx: BenchContext): Promise<Findings> {
  const flooded = ctx.flooded!;
  const token = await mintToken(ctx.hydras.jwt.publicUrl, ctx.clients.jwt, flooded.mcpUrl.href);
  const target: Target = { url: flooded.mcpUrl, token };
  await callOnce(target, ctx.clients.jwt.clientId);
  const other = await otherPerson(ctx, flooded, 'bench other person');
  const result = await floodMemory(flooded, target, ctx.settings.connections, ctx.settings.floodSeconds, other);
  if (result.otherUser) log(`flood: another person's median ${result.otherUser.quiet.p50.toFixed(2)} ms without, ${result.otherUser.during.p50.toFixed(2)} ms during (p95 ${result.otherUser.quiet.p95.toFixed(2)} / ${result.otherUser.during.p95.toFixed(2)} ms)`);
  log(`flood: ${result.ok} 200, ${result.limited} 429, ${result.other} other; audit ${result.audit.written} written, ${result.audit.dropped} dropped; ${result.points.map((p) => `${p.label} ${p.rssMiB.toFixed(1)} MiB RSS, ${p.heapUsedMiB.toFixed(1)} MiB heap`).join('; ')}`);
  await flooded.stop();
  return { flood: result };
}

// ── 3. audit stall (issue 26 #10): other people's latency while one token's calls are all audited ──
async function stall(ctx: BenchContext): Promise<Findings> {
  const stalled = ctx.stalled!;
  const target: Target = { url: stalled.mcpUrl, token: await mintToken(ctx.hydras.jwt.publicUrl, ctx.clients.jwt, stalled.mcpUrl.href) };
  await callOnce(target, ctx.clients.jwt.clientId);
  const others = [];
  for (let i = 0; i < STALL_PEOPLE; i++) others.push(await otherPerson(ctx, stalled, `bench other person ${i}`));
  const result = await auditStall(stalled, target, ctx.settings.stallConnections, ctx.settings.stallSeconds, others);
  const { quiet, during } = result;
  log(
    `audit stall: ${Math.round(result.rps)} req/s, ${result.auditWritten} audit records; other people p50 ${quiet.p50.toFixed(2)} / ${during.p50.toFixed(2)} ms, p99 ${quiet.p99.toFixed(2)} / ${during.p99.toFixed(2)} ms, max ${quiet.max.toFixed(2)} / ${during.max.toFixed(2)} ms (without / during; ${quiet.n} / ${during.n} calls)`,
  );
  await stalled.stop();
  return { auditStall: result };
}

// ── 4. session rebuilds (issue 29): a session's next request on another replica ──
async function rebuilds(ctx: BenchContext): Promise<Findings> {
  // Two processes on one SQLite file (the bench runs no PostgreSQL), the fixed principal (no token check in the numbers).
  const shared = { MCP_STATELESS: 'false', DATABASE_PATH: join(ctx.dir, 'rebuilds.sqlite'), SESSION_SECRET: randomBytes(32).toString('hex'), BENCH_SESSION_REBUILDS: 'on' };
  // Started together, as replicas are: the migration lock lets one bring the schema up to date (test/db/store/concurrentMigrations.test.ts).
  const [holder, other] = await Promise.all([ctx.start('rebuild-holder', 'fixed', ctx.hydras.jwt, shared), ctx.start('rebuild-other', 'fixed', ctx.hydras.jwt, shared)]);
  try {
    const r = await sessionRebuilds(holder, other, BASELINE_TOKEN, BASELINE_SUB, ctx.settings.rebuilds, 'one SQLite file, WAL');
    const show = (l: typeof r.rebuild) => `median ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms`;
    log(`session rebuilds (${r.sessions}): rebuild ${show(r.rebuild)}; first request there ${show(r.firstRequest)}, next one ${show(r.heldRequest)}; added ${show(r.added)}`);
    return { sessionRebuild: r };
  } finally {
    await holder.stop();
    await other.stop();
  }
}

// ── 5. the check alone, in this process, with real tokens ──
async function checkAlone(ctx: BenchContext): Promise<Findings> {
  const { hydras, clients } = ctx;
  const resource = ctx.memory!.jwt.mcpUrl;
  const verifier = await verifierCost(hydras, resource, {
    jwt: await mintToken(hydras.jwt.publicUrl, clients.jwt, resource.href),
    opaque: await mintToken(hydras.opaque.publicUrl, clients.opaque, resource.href),
  });
  log(`check alone: ${verifier.map((v) => `${v.check} ${v.microseconds.toFixed(1)} µs`).join('; ')}`);
  const removedCheck = await removedCheckCost(hydras.jwt, resource, await mintToken(hydras.jwt.publicUrl, clients.jwt, resource.href));
  log(`removed-subject check: +${removedCheck.addedMicroseconds.toFixed(3)} µs per cached JWT check (range ${removedCheck.addedRange.map((x) => x.toFixed(3)).join(' to ')})`);
  return { verifier, removedCheck };
}

// ── 6. memory: the token caches at N and 2N tokens, then the session registry ──
function memoryPhaseName({ settings: s }: BenchContext): string {
  const n = s.tokens.toLocaleString('en-US');
  return `memory (${s.fullMemory ? 'full' : 'quick'}: ${n} + ${n} tokens, bound ${s.tokenCacheBound.toLocaleString('en-US')})`;
}

async function memory(ctx: BenchContext): Promise<Findings> {
  const { hydras, clients, settings } = ctx;
  const mem = ctx.memory!;
  const tokens: MemoryResult['tokens'] = [];
  for (const [kind, server] of [['jwt', mem.jwt], ['opaque', mem.opaque]] as const) {
    log(`minting ${2 * settings.tokens} ${kind} tokens`);
    const batch1 = await mintTokens(hydras[kind].publicUrl, clients[kind], server.mcpUrl.href, settings.tokens);
    const batch2 = await mintTokens(hydras[kind].publicUrl, clients[kind], server.mcpUrl.href, settings.tokens);
    const result = await tokenMemory(server, kind, settings.tokenCacheBound, [batch1, batch2]);
    log(`${kind}: ${result.points.map((p) => `${p.label} ${p.rssMiB.toFixed(1)} MiB (${p.entries} cached)`).join('; ')}`);
    tokens.push(result);
  }
  const { maxSessions, maxPerUser } = DEFAULT_SESSION_LIMITS;
  const users = Math.ceil(maxSessions / maxPerUser) + 10;
  const sessionTokens: string[] = [];
  for (let i = 0; i < users; i++) {
    // A client per user: client_credentials tokens name the client as `sub`.
    const c = await createClient(hydras.jwt.adminUrl, [mem.sessions.mcpUrl.href], `bench user ${i}`);
    sessionTokens.push(await mintToken(hydras.jwt.publicUrl, c, mem.sessions.mcpUrl.href));
  }
  const sessions = await sessionMemory(mem.sessions, sessionTokens, maxPerUser, maxSessions);
  log(`sessions: ${sessions.points.map((p) => `${p.label} ${p.rssMiB.toFixed(1)} MiB (${p.entries} live)`).join('; ')}; refused ${sessions.refused}`);
  return { memory: { tokens, sessions } };
}

// ── 7. the whole OAuth flow, through our login UI ──
async function flows(ctx: BenchContext): Promise<Findings> {
  const flowHydra = ctx.flowHydra!;
  const frontServer = await ctx.start('front', 'hydra', flowHydra, { MCP_STATELESS: 'false' }, ctx.frontPort);
  const user = await addUserWithCli(await ctx.envFor('front', flowHydra, {}, ctx.frontPort), 'bench@example.com', 'correct horse battery staple');
  const runs: number[][] = [];
  for (let i = 0; i < ctx.settings.flows; i++) {
    const { ms, accessToken } = await timeOneFlow(frontServer.mcpUrl, user);
    await callOnce({ url: frontServer.mcpUrl, token: accessToken, sessionId: (await openSession(frontServer.mcpUrl, accessToken)).sessionId }, user.sub);
    runs.push(ms);
  }
  const flow = summariseFlows(runs);
  log(`flow: median ${flow.medianMs.toFixed(1)} ms, p95 ${flow.p95Ms.toFixed(1)} ms`);
  return { flow };
}

// ── 8. pagination: keyset against OFFSET ──
async function pagination(ctx: BenchContext): Promise<Findings> {
  const result = await paginationCost(ctx.dir, { notes: 100_000, pageSize: 100, page: 1000 });
  log(`pagination: page 1 ${result.firstPageMicroseconds.toFixed(0)} µs, page 1000 ${result.deepPageMicroseconds.toFixed(0)} µs (${result.ratio.toFixed(2)}×), OFFSET ${result.offsetMicroseconds.toFixed(0)} µs`);
  return { pagination: result };
}
