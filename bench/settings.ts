/**
 * What one `npm run bench` run measures: its flags and BENCH_* knobs, read
 * once by `readSettings`, and which scenarios run in which mode, composed how.
 *
 * Flags: --quick (load only, JWT and warm introspection in every mode and audit-limits, 6
 * rounds; the report goes to a scratch directory), --aa (every scenario server
 * is a second baseline: each ratio should be 1.00×, its spread is the method's
 * noise; also to a scratch directory), --audit-only (only the audit-limits
 * pair, the flood and the audit stall, a few minutes; scratch directory), --credential-only (only the
 * credential pair, every round, no flood or stall: a couple of minutes; scratch directory), --sessions-only
 * (only the shared-sessions pair, every round, and the session rebuilds: about a minute; scratch directory).
 * They may be combined. --tracing-only (issue 30: tracing unset, off and on at a 10 % sampler, in server
 * processes of their own, bench/tracing.ts; a few minutes; scratch directory) runs alone.
 *
 * Knobs (environment): BENCH_CONNECTIONS (10), BENCH_SECONDS (1.5 per side per round), BENCH_SLICE_MS (250, one turn),
 * BENCH_WARM_SECONDS (5 per pair), BENCH_ROUNDS (10; quick 6; contrasts without targets 4 at most),
 * BENCH_TWIN_PROCESSES (5: processes the audit-limits pair is spread over),
 * BENCH_MEMORY (quick | full), BENCH_TOKENS (N, overrides the memory size), BENCH_FLOWS (20), BENCH_FLOOD_SECONDS (15), BENCH_STALL_SECONDS (12), BENCH_STALL_CONNECTIONS (2),
 * BENCH_REBUILDS (100: sessions rebuilt on a second process), BENCH_TRACING_PROCESSES (3: sets of --tracing-only's server processes),
 * BENCH_AUDIT_LIMITS (both; "audit" or "limits": the audit-limits scenario turns on only that one),
 * BENCH_PIN (on; "off" leaves CPU placement to the OS), BENCH_RESULTS_DIR (where
 * the report goes), BENCH_CPU_PROF (a directory: V8 CPU profiles of every server,
 * compared with bench/profileDiff.ts). The default run takes under 10 minutes on 2 cores.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MIN_STALL_SECONDS } from './auditStall.js';
import { MIN_FLOOD_SECONDS } from './flood.js';
import type { Mode, Scenario } from './results.js';

export const FLAGS = ['--quick', '--aa', '--audit-only', '--credential-only', '--sessions-only', '--tracing-only'];

/**
 * Which Hydra issues the scenario's tokens, which verifier the server composes,
 * and its cache; `env` is the scenario server's own settings, `twin` the twin's
 * verifier and settings where the twin is not the fixed-principal baseline.
 */
export interface Composition {
  hydra: 'jwt' | 'opaque';
  verifier: string;
  cacheSeconds: number;
  env?: Record<string, string>;
  twin?: { verifier: string; env: Record<string, string> };
}

export interface Settings {
  /** Load only, the scenarios with targets: a few minutes, for checking the method or a change. */
  quick: boolean;
  /** A/A: every scenario server is composed like its baseline twin, so every ratio measures the method's noise. */
  aa: boolean;
  /** Only the audit trail's measurements: the audit-limits pair, the flood (issue 17) and the audit stall (issue 26). */
  auditOnly: boolean;
  /** Only the credential pair (a tool reading a connected account against the same tool without), every round. */
  credentialOnly: boolean;
  /** Only issue 29's session measurements: the shared-sessions pair, every round, and the session rebuilds. */
  sessionsOnly: boolean;
  /** Only issue 30's tracing pairs (bench/tracing.ts), nothing else. */
  tracingOnly: boolean;
  /** Sets of --tracing-only's server processes (one of each variant), each round using the next. */
  tracingProcesses: number;
  /** Unmeasured turns before the first round, per pair (both sides together). */
  warmSeconds: number;
  warmSliceMs: number;
  /** One turn of one side; a round gives each side `seconds` of turns. */
  sliceMs: number;
  connections: number;
  /** Seconds of load per side per round, in turns of `sliceMs`. */
  seconds: number;
  rounds: number;
  fullMemory: boolean;
  /** The production cache bound for the full run; a smaller bound (same code) for the quick one. */
  tokenCacheBound: number;
  tokens: number;
  /** Rounds in which the introspect-everything comparison runs: it is 100× off, so two pairs say enough. */
  everythingRounds: number;
  /**
   * Rounds of the contrasts without a target (introspect every call, the credential
   * tool): a round's ratio strays ±5 % on these machines, so the scenarios with
   * targets get every round (10: the median within about ±2 %) and these fewer.
   */
  contrastRounds: number;
  /**
   * Rounds of the shared-sessions pair: every round when measured alone
   * (--sessions-only), a few in the default run, which must stay under 10 minutes.
   */
  sessionRounds: number;
  /** Sessions opened on one process and rebuilt on a second one on the same database (0: not measured). */
  rebuilds: number;
  /**
   * A scenario with its own twin server (audit-limits) runs in this many
   * processes, each round in the next: two servers of one build, even in one
   * process, came out up to ±5 % apart by themselves (an A/A of such a pair
   * measured 0.95×), so their pairs are spread over processes built in both orders.
   * An odd number, so that over the rounds each process goes first with each side
   * (with 4, a process always had the same side first); 5 gives each 2 of 10 rounds.
   */
  twinProcesses: number;
  flows: number;
  floodSeconds: number;
  /** Issue 26 #10: how long one token loads the audit-stall server while other people call, and over how many connections (2 reach the server's full rate without a queue that would hide a stall). */
  stallSeconds: number;
  stallConnections: number;
  /** Which of the two the audit-limits scenario turns on (both by default; one alone tells their costs apart). */
  auditLimits: 'both' | 'audit' | 'limits';
  registeredClients: number;
  resultsDir: string;
  composition: Record<Scenario, Composition>;
}

export const MODES: Mode[] = ['stateless', 'stateful', 'stateless-2026'];
const SCENARIOS: Scenario[] = ['baseline', 'jwt', 'opaque-cached', 'opaque-introspect', 'introspect-everything', 'credential', 'audit-limits', 'shared-sessions'];
export const CONTRASTS: Scenario[] = ['opaque-introspect', 'credential'];
/** Server processes: 2026-07-28 requests go to the 2025 stateless servers (2 cores: no more processes than needed). */
export const SERVER_MODES = ['stateless', 'stateful'] as const;
export const serverModeOf = (mode: Mode): (typeof SERVER_MODES)[number] => (mode === 'stateful' ? 'stateful' : 'stateless');

/** Fair-use limits at the allowed maxima (1,000 a second refilled, a burst of 100,000): every check runs, none refuses a load. */
export const LIMITS_AT_MAXIMA = { MCP_REQUESTS_PER_MINUTE: '60000', MCP_BURST: '100000', MCP_CLIENT_REQUESTS_PER_MINUTE: '60000', MCP_CLIENT_BURST: '100000' };

/** A value in a server's extra settings that removes the setting, so the server takes its default. */
export const UNSET = '\u0000unset';

/** Drops settings given as UNSET. */
export const withoutUnset = (env: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(env).filter(([, v]) => v !== UNSET));

function compositionFor(auditLimits: Settings['auditLimits']): Record<Scenario, Composition> {
  return {
    baseline: { hydra: 'jwt', verifier: 'fixed', cacheSeconds: 60 },
    jwt: { hydra: 'jwt', verifier: 'hydra', cacheSeconds: 60 },
    'opaque-cached': { hydra: 'opaque', verifier: 'hydra', cacheSeconds: 60 },
    'opaque-introspect': { hydra: 'opaque', verifier: 'hydra', cacheSeconds: 0 },
    'introspect-everything': { hydra: 'opaque', verifier: 'introspect-everything', cacheSeconds: 0 },
    credential: { hydra: 'jwt', verifier: 'fixed', cacheSeconds: 60 },
    // Limits on at the allowed maxima (1,000 a second refilled, a burst of 100,000): every check runs, none refuses the load.
    'audit-limits': {
      hydra: 'jwt',
      verifier: 'hydra',
      cacheSeconds: 60,
      env: {
        AUDIT: auditLimits === 'limits' ? 'off' : 'on',
        ...(auditLimits === 'audit' ? { MCP_REQUESTS_PER_MINUTE: 'off' } : LIMITS_AT_MAXIMA),
      },
      twin: { verifier: 'hydra', env: { AUDIT: 'off', MCP_REQUESTS_PER_MINUTE: 'off' } },
    },
    // Issue 29: one stateful server whose session store switches on the person (bench/switchSessionsStore.ts):
    // the scenario's person (free, like the baseline's) in the shared table, the baseline's in memory.
    'shared-sessions': { hydra: 'jwt', verifier: 'fixed-sessions', cacheSeconds: 60, env: { BENCH_SESSIONS_STORE: 'switch' } },
  };
}

/** The run's settings from its arguments and environment; a bad one fails here, naming it. */
export function readSettings(args: string[], env: NodeJS.ProcessEnv): Settings {
  for (const a of args) if (!FLAGS.includes(a)) throw new Error(`unknown argument ${a}: the bench takes ${FLAGS.join(', ')}`);
  const quick = args.includes('--quick');
  const aa = args.includes('--aa');
  const auditOnly = args.includes('--audit-only');
  const credentialOnly = args.includes('--credential-only');
  const sessionsOnly = args.includes('--sessions-only');
  const tracingOnly = args.includes('--tracing-only');
  if (tracingOnly && args.length > 1) throw new Error('--tracing-only runs alone: it measures its own pairs, in server processes of their own');
  const num = (name: string, fallback: number) => {
    const v = Number(env[name] ?? fallback);
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
    return v;
  };
  const seconds = (name: string, fallback: number) => {
    const v = Number(env[name] ?? fallback);
    if (!Number.isFinite(v) || v < 0.5 || v > 60) throw new Error(`${name} must be a number of seconds from 0.5 to 60`);
    return v;
  };
  const warmSeconds = seconds('BENCH_WARM_SECONDS', 5);
  const sliceMs = num('BENCH_SLICE_MS', 250);
  const connections = num('BENCH_CONNECTIONS', 10);
  const loadSeconds = seconds('BENCH_SECONDS', 1.5);
  const rounds = num('BENCH_ROUNDS', quick ? 6 : 10);
  const fullMemory = (env.BENCH_MEMORY ?? 'quick') === 'full';
  if (!['quick', 'full'].includes(env.BENCH_MEMORY ?? 'quick')) throw new Error('BENCH_MEMORY must be quick or full');
  const tokenCacheBound = fullMemory ? 10_000 : 1_000;
  const tokens = num('BENCH_TOKENS', tokenCacheBound);
  const twinProcesses = num('BENCH_TWIN_PROCESSES', 5);
  const flows = num('BENCH_FLOWS', 20);
  const floodSeconds = num('BENCH_FLOOD_SECONDS', 15);
  const stallSeconds = num('BENCH_STALL_SECONDS', 12);
  const stallConnections = num('BENCH_STALL_CONNECTIONS', 2);
  const rebuilds = num('BENCH_REBUILDS', 100);
  const tracingProcesses = num('BENCH_TRACING_PROCESSES', 3);
  if (stallSeconds < MIN_STALL_SECONDS) throw new Error(`BENCH_STALL_SECONDS must be at least ${MIN_STALL_SECONDS}`);
  const auditLimits = env.BENCH_AUDIT_LIMITS ?? 'both';
  if (auditLimits !== 'both' && auditLimits !== 'audit' && auditLimits !== 'limits') throw new Error('BENCH_AUDIT_LIMITS must be both, audit or limits');
  if (floodSeconds < MIN_FLOOD_SECONDS) throw new Error(`BENCH_FLOOD_SECONDS must be at least ${MIN_FLOOD_SECONDS}`);
  // Quick and A/A runs never replace the committed report.
  const resultsDir = env.BENCH_RESULTS_DIR ?? (quick || aa || auditOnly || credentialOnly || sessionsOnly || tracingOnly ? join(tmpdir(), 'hydra-mcp-bench-results') : fileURLToPath(new URL('./results/', import.meta.url)));
  return {
    quick,
    aa,
    auditOnly,
    credentialOnly,
    sessionsOnly,
    tracingOnly,
    tracingProcesses,
    warmSeconds,
    warmSliceMs: 500,
    sliceMs,
    connections,
    seconds: loadSeconds,
    rounds,
    fullMemory,
    tokenCacheBound,
    tokens,
    everythingRounds: 2,
    // Measured alone, the credential pair is the point of the run: every round.
    contrastRounds: credentialOnly ? rounds : Math.min(rounds, 4),
    sessionRounds: sessionsOnly ? rounds : Math.min(rounds, 4),
    // Not in the runs that measure something else alone.
    rebuilds: sessionsOnly || !(quick || auditOnly || credentialOnly) ? rebuilds : 0,
    twinProcesses,
    flows,
    floodSeconds,
    stallSeconds,
    stallConnections,
    auditLimits,
    registeredClients: 1000,
    resultsDir,
    composition: compositionFor(auditLimits),
  };
}

/**
 * The scenarios run in `mode`. The 2026 mode measures what its targets name
 * (JWT, warm introspection). The credential scenario (a tool reading a
 * connected account, issue 14) and introspecting every call run in 2025
 * stateless only (their cost does not depend on the mode), which keeps the run
 * under 10 minutes; the shared session table (issue 29) in 2025 stateful only,
 * the one mode with sessions.
 */
export const scenariosOf = (s: Settings, mode: Mode): Scenario[] =>
  SCENARIOS.filter(
    (sc) =>
      (sc !== 'introspect-everything' || mode === 'stateless') &&
      (sc !== 'credential' || mode === 'stateless') &&
      (sc !== 'opaque-introspect' || mode === 'stateless') &&
      (sc !== 'audit-limits' || mode === 'stateless') &&
      (sc !== 'shared-sessions' || mode === 'stateful') &&
      (!s.quick || ['baseline', 'jwt', 'opaque-cached', 'audit-limits'].includes(sc)) &&
      (!s.auditOnly || sc === 'audit-limits') &&
      (!s.credentialOnly || sc === 'credential') &&
      (!s.sessionsOnly || sc === 'shared-sessions'),
  );

/** The process suffixes of a scenario: `#0`… for one with its own twin (one per twin process), else just ''. */
export const processKeys = (s: Settings, scenario: Scenario): string[] => (s.composition[scenario].twin ? Array.from({ length: s.twinProcesses }, (_, k) => `#${k}`) : ['']);

/** Every measured pair's key, `mode/scenario#process`, in the order the rounds run them. */
export const pairKeys = (s: Settings): string[] =>
  MODES.flatMap((mode) => scenariosOf(s, mode).filter((sc) => sc !== 'baseline').flatMap((scenario) => processKeys(s, scenario).map((suffix) => `${mode}/${scenario}${suffix}`)));
