/** The shape of one `npm run bench` run: written as JSON, rendered as markdown and SVG. */

/**
 * The request path measured: 'stateless' and 'stateful' are 2025-era Streamable
 * HTTP (stateless: no session; stateful: initialize, then every call in its
 * session); 'stateless-2026' is MCP 2026-07-28 (no initialize, revision and
 * capabilities in `_meta`, `Mcp-Method`/`Mcp-Name` headers), served by the
 * same stateless server processes.
 */
export type Mode = 'stateless' | 'stateful' | 'stateless-2026';

export const MODE_TITLES: Record<Mode, string> = {
  stateless: '2025-era stateless Streamable HTTP',
  stateful: '2025-era stateful Streamable HTTP (sessions)',
  'stateless-2026': '2026-07-28 (stateless, no initialize)',
};

export type Scenario = 'baseline' | 'jwt' | 'opaque-cached' | 'opaque-introspect' | 'introspect-everything' | 'credential' | 'audit-limits' | 'shared-sessions';

export const SCENARIO_LABELS: Record<Scenario, string> = {
  baseline: 'baseline (fixed principal, no token check)',
  jwt: 'JWT, verified locally',
  'opaque-cached': 'opaque, introspection cache warm',
  'opaque-introspect': 'opaque, introspect every call',
  'introspect-everything': 'introspect + list every client (1,000 clients)',
  credential: 'baseline tool reading a stored credential (connected account, fresh token)',
  'audit-limits': 'JWT, audit trail + fair-use limits on (× its twin: JWT, both off)',
  'shared-sessions': 'sessions in the shared table (× its twin: sessions in memory only; both fixed principal)',
};

/**
 * Scenarios whose twin is not the mode's fixed-principal baseline: their ratio
 * is to their own twin (audit-limits: the same JWT server with the audit trail
 * and limits off; shared-sessions: the fixed principal with its sessions in
 * memory, not in the shared table), so their twins stay out of the mode's baseline row.
 */
export const OWN_TWIN: readonly Scenario[] = ['audit-limits', 'shared-sessions'];

/** One autocannon run of one scenario. Latencies in milliseconds. */
export interface LoadSample {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** Connection errors, timeouts and non-2xx answers: any of these voids the sample. */
  errors: number;
  /**
   * Server CPU time per answered request, µs (the server process's user +
   * system time over the run, every thread, divided by its answers). Other
   * processes on the machine slow a run's throughput but barely change this.
   */
  cpuUs?: number;
}

export interface LoadResult {
  mode: Mode;
  scenario: Scenario;
  /** Medians over the rounds. */
  rps: number;
  p50: number;
  p99: number;
  /**
   * Median over rounds of this scenario's value divided by that of the
   * baseline run right next to it (so drift on the machine cancels); 1 for the baseline.
   */
  ratio: {
    rps: number;
    p50: number;
    p99: number;
    /**
     * Capacity: the adjacent baseline run's CPU µs per request divided by this
     * scenario's, median over rounds (1 = the check costs nothing; 0.95 = the
     * server does 5 % less work per core-second). Absent in results from
     * before it was measured.
     */
    cpu?: number;
  };
  /** Median over rounds of server CPU µs per request. */
  cpuUs?: number;
  /** Median over rounds of p99 minus the adjacent baseline run's p99, in ms. */
  p99AddedMs: number;
  /** Every run of this scenario, in the order run (the baseline: all its runs in this mode, every twin's). */
  rounds: LoadSample[];
  /** The baseline run paired with each of `rounds`, its twin's under concurrent pairing (empty for the baseline itself). */
  pairedBaseline: LoadSample[];
}

export interface MemoryPoint {
  /** What had happened when this was measured, e.g. "10,000 distinct JWTs". */
  label: string;
  /** After a forced GC in the server process. */
  rssMiB: number;
  heapUsedMiB: number;
  /** Entries in the verifier's caches, or live sessions, at that point. */
  entries: number;
}

export interface MemoryResult {
  /** Token cache: the same server before any token, after 10,000 and after 20,000 distinct tokens. */
  tokens: { kind: 'jwt' | 'opaque'; bound: number; points: MemoryPoint[] }[];
  /** Session registry: before, after 1,000 sessions, after trying to open more than the bound. */
  sessions: { bound: number; refused: number; points: MemoryPoint[] };
}

/**
 * Memory of one server (audit trail on, default fair-use limits) while one
 * token floods it: most requests are refused with 429 and each refusal is an
 * audit record, so the audit queue's bound is what keeps memory flat.
 */
export interface FloodResult {
  seconds: number;
  connections: number;
  /** Answers by status over the whole flood. */
  ok: number;
  limited: number;
  /** Anything else: connection errors, timeouts, other statuses. */
  other: number;
  /** Audit writer's counts over the flood (Prometheus): records written, dropped at the full queue, lost to failed writes. */
  audit: { written: number; dropped: number; failed: number };
  /** Before the flood (idle), then a few seconds in, halfway and just before it ends (all under load). */
  points: MemoryPoint[];
  /** Another person's whoami latency (ms), one call every 50 ms, before the flood and during it (absent in older results). */
  otherUser?: { quiet: { p50: number; p95: number; n: number }; during: { p50: number; p95: number; n: number } };
}

/** Latencies of a set of calls, ms: nearest-rank percentiles over `n` calls. */
export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  n: number;
}

/**
 * Issue 26 #10: other people's whoami latency while one token loads a server
 * with the audit trail on and fair-use limits at their maxima (every call
 * served and audited): the audit trail writing at full rate on SQLite.
 */
export interface AuditStallResult {
  seconds: number;
  connections: number;
  /** How many other people called, each every 125 ms; their latencies pooled. */
  people: number;
  /** The load's answers per second, and its failed requests. */
  rps: number;
  errors: number;
  /** Audit records written from the load's start to shortly after its end. */
  auditWritten: number;
  /** Before the load, and during it (from its first second to one before its end). */
  quiet: LatencySummary;
  during: LatencySummary;
}

/**
 * Issue 29: a 2025 session opened on one server process and its next request
 * sent to a second process on the same database, which rebuilds it from its
 * row (SharedSessions.rebuild); then one more request there, now held.
 */
export interface SessionRebuildResult {
  /** Sessions measured (after a few unmeasured ones). */
  sessions: number;
  /** Where the two processes shared the session table, e.g. "one SQLite file, WAL". */
  database: string;
  /** The rebuild itself on the second process (SharedSessions' onRebuilt: read the row, build, restore), ms. */
  rebuild: LatencySummary;
  /** The client's view, ms: the session's first request on the second process (rebuilt) and its next one there (held). */
  firstRequest: LatencySummary;
  heldRequest: LatencySummary;
  /** Per session, the first request's latency minus the held one's, ms. */
  added: LatencySummary;
}

export interface FlowResult {
  runs: number;
  /** Whole flow: registration → authorize → login → consent → token. */
  medianMs: number;
  p95Ms: number;
  /** Median of each step, in order. */
  steps: { name: string; medianMs: number }[];
}

/** One token check on its own, in the bench process (no HTTP, no MCP). */
export interface VerifierCost {
  check: string;
  /** Median µs per call. */
  microseconds: number;
}

/** The removed-subject check (issue 18) on the cached-JWT path, in process: with and without it, batch by batch in turn. */
export interface RemovedCheckCost {
  /** How many subjects the list held. */
  removedSubjects: number;
  withoutMicroseconds: number;
  withMicroseconds: number;
  /** Median over batch pairs of with − without, µs. */
  addedMicroseconds: number;
  /** Range of the per-pair differences, µs. */
  addedRange: [number, number];
}

/** Page 1 and page N of one person's notes, keyset cursor vs OFFSET, in process on SQLite. */
export interface PaginationResult {
  notes: number;
  pageSize: number;
  page: number;
  firstPageMicroseconds: number;
  deepPageMicroseconds: number;
  offsetMicroseconds: number;
  /** Median over batch pairs of deep / first page time. */
  ratio: number;
  ratioRange: [number, number];
}

export interface BenchResults {
  /** ISO time the run finished. */
  date: string;
  machine: { cpu: string; cores: number; memoryGiB: number; node: string; os: string; hydra: string };
  settings: {
    connections: number;
    durationSeconds: number;
    rounds: number;
    registeredClients: number;
    tool: string;
    /** How the load generator and the servers were placed on CPUs, e.g. "load generator on CPU 0, server on CPU 1". */
    cpuPlacement: string;
    /**
     * 'same-process': each scenario and its baseline twin served by one
     * process, loaded in alternating turns of `sliceMs`. 'concurrent':
     * two processes loaded at the same time. Absent in results from before:
     * the baseline ran next to the scenario, one after the other.
     */
    pairing?: 'concurrent' | 'same-process';
    /** Unmeasured seconds of turns per pair before the first round, and the length of one turn (same-process pairing). */
    warmSeconds?: number;
    /** Processes the audit-limits pair is spread over (BENCH_TWIN_PROCESSES). */
    twinProcesses?: number;
    sliceMs?: number;
    /** Lowest and highest 1-minute load average of the machine seen before each pair (absent before it was recorded). */
    loadAverage?: [number, number];
    /** A quick run (`--quick`): load only, the scenarios with targets. */
    quick?: boolean;
    /** An A/A run (`--aa`): every scenario server was a baseline too, so every ratio measures noise. */
    aa?: boolean;
    /** `--audit-only`: only the audit-limits pair, the flood and the audit stall. */
    auditOnly?: boolean;
    /** `--credential-only`: only the credential pair. */
    credentialOnly?: boolean;
    /** `--sessions-only`: only the shared-sessions pair and the session rebuilds. */
    sessionsOnly?: boolean;
    /** BENCH_AUDIT_LIMITS: the audit-limits scenario had only this one on (absent: both). */
    auditLimits?: 'audit' | 'limits';
  };
  load: LoadResult[];
  /** The check alone, to set against a whole request's time. */
  verifier: VerifierCost[];
  /** Absent in quick runs (load only). */
  memory?: MemoryResult;
  /** Memory under a sustained flood with the audit trail and limits on (absent in quick runs and older results). */
  flood?: FloodResult;
  /** Other people's latency while audit writes at full rate (issue 26 #10; absent in quick runs and older results). */
  auditStall?: AuditStallResult;
  /** A session's first request on another replica (issue 29; absent in quick runs and older results). */
  sessionRebuild?: SessionRebuildResult;
  flow?: FlowResult;
  removedCheck?: RemovedCheckCost;
  pagination?: PaginationResult;
  /** Seconds each phase of the run took. */
  phases?: { name: string; seconds: number }[];
}
