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
 *     own twin: the same JWT server with both off; 2025 stateless only.
 *  2. The check alone, and the removed-subject check with and without, in process.
 *  3. Memory: RSS after N and 2N distinct tokens against a token cache bounded
 *     at N (quick: N = 1,000 on a smaller bound; BENCH_MEMORY=full: N = 10,000,
 *     the production bound, which takes ~10 more minutes of minting); after
 *     1,000 sessions.
 *     Then a flood: one token against a server with the audit trail and the
 *     default limits (nearly every request a 429 and an audit record), memory
 *     sampled before, a few seconds in, halfway and near the end, and another
 *     person's whoami latency without and during the flood. Then issue 26's
 *     audit stall: one token loads a server with the audit trail on and the
 *     limits at their maxima (every call audited, at full rate) while other
 *     people call whoami at a steady pace: their p99 with and without it.
 *  4. Flow: 20 whole OAuth flows (registration → … → token).
 *  5. Pagination: page 1 and page 1000 of 100,000 notes (keyset vs OFFSET).
 *  6. Report: bench/results/latest.{md,json}, chart.svg, with each phase's duration.
 *
 * Flags: --quick (load only, JWT and warm introspection in every mode and audit-limits, 3
 * rounds; the report goes to a scratch directory), --aa (every scenario server
 * is a second baseline: each ratio should be 1.00×, its spread is the method's
 * noise; also to a scratch directory), --audit-only (only the audit-limits
 * pair, the flood and the audit stall, a few minutes; scratch directory). They may be combined.
 *
 * Knobs (environment): BENCH_CONNECTIONS (10), BENCH_SECONDS (1.5 per side per round), BENCH_SLICE_MS (250, one turn),
 * BENCH_WARM_SECONDS (6 per pair), BENCH_ROUNDS (10; quick 6; contrasts without targets 4 at most),
 * BENCH_TWIN_PROCESSES (5: processes the audit-limits pair is spread over),
 * BENCH_MEMORY (quick | full), BENCH_TOKENS (N, overrides the memory size), BENCH_FLOWS (20), BENCH_FLOOD_SECONDS (15), BENCH_STALL_SECONDS (12), BENCH_STALL_CONNECTIONS (2),
 * BENCH_AUDIT_LIMITS (both; "audit" or "limits": the audit-limits scenario turns on only that one),
 * BENCH_PIN (on; "off" leaves CPU placement to the OS), BENCH_RESULTS_DIR (where
 * the report goes), BENCH_CPU_PROF (a directory: V8 CPU profiles of every server,
 * compared with bench/profileDiff.ts). The default run takes under 10 minutes on 2 cores.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureHydraBinary, freeLoopbackPort, type RunningHydra, startHydra } from '../scripts/hydra.js';
import { DEFAULT_SESSION_LIMITS } from '../src/mcp/sessions.js';
import { addUserWithCli } from '../test/support/userCli.js';
import { pinToCpu } from './cpu.js';
import { summariseFlows, timeOneFlow } from './flow.js';
import { type BenchClient, createClient, createIdleClients, mintToken, mintTokens } from './hydraTokens.js';
import { callOnce, openSession, REVISION_2026, type Target } from './load.js';
import { runInterleaved } from './interleave.js';
import { BASELINE_TOKEN } from './switchVerifier.js';
import { sessionMemory, tokenMemory } from './memory.js';
import { writeReport } from './report.js';
import { paginationCost } from './pagination.js';
import { removedCheckCost, verifierCost } from './verifierCost.js';
import { type AuditStallResult, type BenchResults, type FloodResult, type LoadResult, type LoadSample, type MemoryResult, type Mode, OWN_TWIN, type Scenario } from './results.js';
import { floodMemory, MIN_FLOOD_SECONDS } from './flood.js';
import { auditStall, MIN_STALL_SECONDS, STALL_PEOPLE } from './auditStall.js';
import { type BenchServer, startBenchServer } from './servers.js';
import { median } from './stats.js';
import { BENCH_PROVIDER, whoamiWithCredential } from './credentialTool.js';
import { writeFile } from 'node:fs/promises';
import { openDatabase } from '../src/store/database.js';
import { connectionsStore } from '../src/store/connectionsStore.js';
import { createSealer, parseConnectionKeys } from '../src/connections/sealing.js';

// One key for the run: the bench seals the credential, the server opens it.
const CONNECTION_KEYS = `bench:${randomBytes(32).toString('base64url')}`;

/** A provider catalogue for the credential scenario. Its endpoints are never called: the stored token stays fresh. */
async function credentialEnv(dir: string): Promise<Record<string, string>> {
  const file = join(dir, 'connections.json');
  const endpoint = 'http://127.0.0.1:9/never-called';
  await writeFile(
    file,
    JSON.stringify({ providers: { [BENCH_PROVIDER]: { displayName: 'Bench', authorizationEndpoint: endpoint, tokenEndpoint: endpoint, clientId: 'bench', clientSecret: 'bench-secret', scopes: ['read'] } } }),
  );
  return { CONNECTIONS_FILE: file, CONNECTION_KEYS };
}

/** The fixed principal's connection, sealed as the connect flow would store it, valid for a day. */
async function seedCredential(path: string, sub: string): Promise<void> {
  const db = await openDatabase({ kind: 'sqlite', path });
  try {
    const sealer = createSealer(parseConnectionKeys(CONNECTION_KEYS));
    const credential = { accessToken: 'bench-upstream-access-token', refreshToken: 'bench-upstream-refresh-token', expiresAt: Math.floor(Date.now() / 1000) + 86_400 };
    await connectionsStore(db, 'sqlite').upsert({ sub, provider: BENCH_PROVIDER, sealed: await sealer.seal(credential, { sub, provider: BENCH_PROVIDER }), keyId: sealer.newestKeyId, expiresAt: credential.expiresAt });
  } finally {
    await db.destroy();
  }
}

const FLAGS = ['--quick', '--aa', '--audit-only'];
const args = process.argv.slice(2);
for (const a of args) if (!FLAGS.includes(a)) throw new Error(`unknown argument ${a}: the bench takes ${FLAGS.join(', ')}`);
/** Load only, the scenarios with targets: a few minutes, for checking the method or a change. */
const QUICK = args.includes('--quick');
/** A/A: every scenario server is composed like its baseline twin, so every ratio measures the method's noise. */
const AA = args.includes('--aa');
/** Only the audit trail's measurements: the audit-limits pair, the flood (issue 17) and the audit stall (issue 26). */
const AUDIT_ONLY = args.includes('--audit-only');

const num = (name: string, fallback: number) => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  return v;
};
const seconds = (name: string, fallback: number) => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v < 0.5 || v > 60) throw new Error(`${name} must be a number of seconds from 0.5 to 60`);
  return v;
};
/** Unmeasured turns before the first round, per pair (both sides together). */
const WARM_SECONDS = seconds('BENCH_WARM_SECONDS', 6);
const WARM_SLICE_MS = 500;
/** One turn of one side; a round gives each side SECONDS of turns. */
const SLICE_MS = num('BENCH_SLICE_MS', 250);
const CONNECTIONS = num('BENCH_CONNECTIONS', 10);
/** Seconds of load per side per round, in turns of SLICE_MS. */
const SECONDS = seconds('BENCH_SECONDS', 1.5);
const ROUNDS = num('BENCH_ROUNDS', QUICK ? 6 : 10);
const FULL_MEMORY = (process.env.BENCH_MEMORY ?? 'quick') === 'full';
if (!['quick', 'full'].includes(process.env.BENCH_MEMORY ?? 'quick')) throw new Error('BENCH_MEMORY must be quick or full');
// The production cache bound for the full run; a smaller bound (same code) for the quick one.
const TOKEN_CACHE_BOUND = FULL_MEMORY ? 10_000 : 1_000;
const TOKENS = num('BENCH_TOKENS', TOKEN_CACHE_BOUND);
/** Rounds in which the introspect-everything comparison runs: it is 100× off, so two pairs say enough. */
const EVERYTHING_ROUNDS = 2;
/**
 * Rounds of the contrasts without a target (introspect every call, the credential
 * tool): a round's ratio strays ±5 % on these machines, so the scenarios with
 * targets get every round (10: the median within about ±2 %) and these fewer.
 */
const CONTRAST_ROUNDS = Math.min(ROUNDS, 4);
const CONTRASTS: Scenario[] = ['opaque-introspect', 'credential'];
/**
 * A scenario with its own twin server (audit-limits) runs in this many
 * processes, each round in the next: two servers of one build, even in one
 * process, came out up to ±5 % apart by themselves (an A/A of such a pair
 * measured 0.95×), so their pairs are spread over processes built in both orders.
 * An odd number, so that over the rounds each process goes first with each side
 * (with 4, a process always had the same side first); 5 gives each 2 of 10 rounds.
 */
const TWIN_PROCESSES = num('BENCH_TWIN_PROCESSES', 5);
const processKeys = (scenario: Scenario): string[] => (COMPOSITION[scenario].twin ? Array.from({ length: TWIN_PROCESSES }, (_, k) => `#${k}`) : ['']);
const FLOWS = num('BENCH_FLOWS', 20);
const FLOOD_SECONDS = num('BENCH_FLOOD_SECONDS', 15);
/** Issue 26 #10: how long one token loads the audit-stall server while other people call, and over how many connections (2 reach the server's full rate without a queue that would hide a stall). */
const STALL_SECONDS = num('BENCH_STALL_SECONDS', 12);
const STALL_CONNECTIONS = num('BENCH_STALL_CONNECTIONS', 2);
if (STALL_SECONDS < MIN_STALL_SECONDS) throw new Error(`BENCH_STALL_SECONDS must be at least ${MIN_STALL_SECONDS}`);
/** Which of the two the audit-limits scenario turns on (both by default; one alone tells their costs apart). */
const AUDIT_LIMITS = process.env.BENCH_AUDIT_LIMITS ?? 'both';
if (!['both', 'audit', 'limits'].includes(AUDIT_LIMITS)) throw new Error('BENCH_AUDIT_LIMITS must be both, audit or limits');
if (FLOOD_SECONDS < MIN_FLOOD_SECONDS) throw new Error(`BENCH_FLOOD_SECONDS must be at least ${MIN_FLOOD_SECONDS}`);
const REGISTERED_CLIENTS = 1000;
// Quick and A/A runs never replace the committed report.
const RESULTS_DIR = process.env.BENCH_RESULTS_DIR ?? (QUICK || AA || AUDIT_ONLY ? join(tmpdir(), 'hydra-mcp-bench-results') : fileURLToPath(new URL('./results/', import.meta.url)));

const MODES: Mode[] = ['stateless', 'stateful', 'stateless-2026'];
const SCENARIOS: Scenario[] = ['baseline', 'jwt', 'opaque-cached', 'opaque-introspect', 'introspect-everything', 'credential', 'audit-limits'];
/**
 * The 2026 mode measures what its targets name (JWT, warm introspection). The
 * credential scenario (a tool reading a connected account, issue 14) and
 * introspecting every call run in 2025 stateless only (their cost does not
 * depend on the mode), which keeps the run under 10 minutes.
 */
const scenariosOf = (mode: Mode): Scenario[] =>
  SCENARIOS.filter(
    (s) =>
      (s !== 'introspect-everything' || mode === 'stateless') &&
      (s !== 'credential' || mode === 'stateless') &&
      (s !== 'opaque-introspect' || mode === 'stateless') &&
      (s !== 'audit-limits' || mode === 'stateless') &&
      (!QUICK || ['baseline', 'jwt', 'opaque-cached', 'audit-limits'].includes(s)) &&
      (!AUDIT_ONLY || s === 'audit-limits'),
  );
/** Server processes: 2026-07-28 requests go to the 2025 stateless servers (2 cores: no more processes than needed). */
const SERVER_MODES = ['stateless', 'stateful'] as const;
const serverModeOf = (mode: Mode): (typeof SERVER_MODES)[number] => (mode === 'stateful' ? 'stateful' : 'stateless');

/**
 * Which Hydra issues the scenario's tokens, which verifier the server composes,
 * and its cache; `env` is the scenario server's own settings, `twin` the twin's
 * verifier and settings where the twin is not the fixed-principal baseline.
 */
/** Fair-use limits at the allowed maxima (1,000 a second refilled, a burst of 100,000): every check runs, none refuses a load. */
const LIMITS_AT_MAXIMA = { MCP_REQUESTS_PER_MINUTE: '60000', MCP_BURST: '100000', MCP_CLIENT_REQUESTS_PER_MINUTE: '60000', MCP_CLIENT_BURST: '100000' };
const COMPOSITION: Record<Scenario, { hydra: 'jwt' | 'opaque'; verifier: string; cacheSeconds: number; env?: Record<string, string>; twin?: { verifier: string; env: Record<string, string> } }> = {
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
      AUDIT: AUDIT_LIMITS === 'limits' ? 'off' : 'on',
      ...(AUDIT_LIMITS === 'audit'
        ? { MCP_REQUESTS_PER_MINUTE: 'off' }
        : LIMITS_AT_MAXIMA),
    },
    twin: { verifier: 'hydra', env: { AUDIT: 'off', MCP_REQUESTS_PER_MINUTE: 'off' } },
  },
};
/** A value in a server's extra settings that removes the setting, so the server takes its default. */
const UNSET = '\u0000unset';

/** Drops settings given as UNSET. */
const withoutUnset = (env: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(env).filter(([, v]) => v !== UNSET));

const log = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

async function main() {
  const phases: { name: string; seconds: number }[] = [];
  let phaseStart = performance.now();
  let phaseName = 'start: Hydras, servers, clients, tokens';
  const phase = (next: string) => {
    const seconds = (performance.now() - phaseStart) / 1000;
    phases.push({ name: phaseName, seconds });
    log(`phase "${phaseName}" took ${seconds.toFixed(0)} s`);
    phaseName = next;
    phaseStart = performance.now();
  };
  const dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-bench-'));
  const cleanups: (() => Promise<void>)[] = [];
  const hydraLog: string[] = [];
  try {
    // The load generator (this process) on CPU 0, every server on CPU 1; Hydra where the OS puts it.
    const pinned = pinToCpu(process.pid, 0);
    const serverCpu = pinned ? 1 : undefined;
    const cpuPlacement = pinned ? 'main threads pinned: load generator to CPU 0, servers to CPU 1 (Hydra and helper threads unpinned)' : 'no CPU pinning';
    log(cpuPlacement);
    const binary = await ensureHydraBinary({ log: (l) => log(`hydra build: ${l}`) });
    // Our login UI for the flow Hydra; the load Hydras never send anyone to log in.
    const frontPort = await freeLoopbackPort();
    const front = `http://127.0.0.1:${frontPort}`;
    const startH = async (strategy: 'jwt' | 'opaque', env: Record<string, string> = {}) => {
      const h = await startHydra({
        binary,
        dsn: 'memory',
        accessTokenStrategy: strategy,
        loginUrl: `${front}/login`,
        consentUrl: `${front}/consent`,
        logoutUrl: `${front}/logout`,
        errorUrl: `${front}/oauth-error`,
        secretsSystem: randomBytes(24).toString('hex'),
        env: { LOG_LEVEL: 'warn', ...env },
        log: (l) => hydraLog.push(l),
      });
      cleanups.push(() => h.stop());
      return h;
    };
    // The load Hydras only mint client_credentials tokens in bulk: the lowest
    // bcrypt cost for client secrets keeps minting 20,000 of them quick. It
    // touches nothing measured (introspection does not hash secrets).
    const fastMint = { OAUTH2_HASHERS_BCRYPT_COST: '4' };
    const hydras = { jwt: await startH('jwt', fastMint), opaque: await startH('opaque', fastMint) };
    const flowHydra = QUICK || AUDIT_ONLY ? undefined : await startH('opaque');
    log(`Hydra ${hydras.jwt.version}: jwt ${hydras.jwt.publicUrl}, opaque ${hydras.opaque.publicUrl}${flowHydra ? `, flow ${flowHydra.publicUrl}` : ''}`);

    const envFor = async (name: string, hydra: RunningHydra, extra: Record<string, string>, port?: number) => withoutUnset({
      HOST: '127.0.0.1',
      PORT: String(port ?? (await freeLoopbackPort())),
      HYDRA_PUBLIC_URL: hydra.publicUrl,
      HYDRA_ADMIN_URL: hydra.adminUrl,
      HYDRA_ISSUER: hydra.issuer,
      DATABASE_PATH: join(dir, `${name}.sqlite`),
      SESSION_SECRET: randomBytes(32).toString('hex'),
      // Request logs off in every scenario alike: we measure auth, not stderr.
      LOG_LEVEL: 'warn',
      METRICS_PORT: '0',
      // The load drives one principal far past fair use (src/limits/): the limiter would answer 429.
      MCP_REQUESTS_PER_MINUTE: 'off',
      ...extra,
    });
    const start = async (name: string, verifier: string, hydra: RunningHydra, extra: Record<string, string>, port?: number, twin?: Parameters<typeof startBenchServer>[4]) => {
      // A free port can be taken by another process before the server binds it: try a fresh one.
      for (let attempt = 1; ; attempt++) {
        try {
          const s = await startBenchServer(name, verifier, await envFor(name, hydra, extra, port), serverCpu, twin);
          cleanups.push(() => s.stop());
          return s;
        } catch (e) {
          if (port !== undefined || attempt === 3) throw e;
          log(`${name}: ${(e as Error).message}; retrying on another port`);
        }
      }
    };

    // ── servers: per (server mode, scenario) one process serving both sides of the pair; three for memory ──
    // Most scenarios differ from their baseline only in the token check: one
    // server whose verifier switches on the token (bench/switchVerifier.ts),
    // the baseline's requests bearing BASELINE_TOKEN. A scenario with its own
    // twin configuration (audit-limits: the audit trail and limits off) gets a
    // second server in the same process (bench/server.ts BENCH_TWIN). Under
    // --aa both sides are the baseline.
    const load = new Map<string, BenchServer>();
    await Promise.all(
      SERVER_MODES.flatMap((mode) =>
        scenariosOf(mode)
          .filter((scenario) => scenario !== 'baseline')
          .flatMap((scenario) => processKeys(scenario).map((suffix) => ({ scenario, suffix })))
          .map(async ({ scenario, suffix }) => {
            const c = COMPOSITION[scenario];
            const name = `${mode}-${scenario}${suffix.replace('#', '-')}`;
            const common = { MCP_STATELESS: String(mode === 'stateless'), INTROSPECTION_CACHE_SECONDS: String(c.cacheSeconds), ...(scenario === 'credential' ? await credentialEnv(dir) : {}) };
            const dbs = [join(dir, `${name}.sqlite`)];
            let s: BenchServer;
            if (c.twin) {
              const twinEnv = await envFor(`${name}-baseline`, hydras[c.hydra], { ...common, ...c.twin.env });
              dbs.push(twinEnv.DATABASE_PATH!);
              // Which of the two servers is built first alternates between the processes.
              const twin = { verifier: c.twin.verifier, env: { PORT: twinEnv.PORT!, DATABASE_PATH: twinEnv.DATABASE_PATH!, ...common, ...c.twin.env }, first: Number(suffix.slice(1)) % 2 === 1 };
              s = await start(name, AA ? twin.verifier : c.verifier, hydras[c.hydra], { ...common, ...(AA ? c.twin.env : (c.env ?? {})) }, undefined, twin);
            } else {
              s = await start(name, `switch:${c.verifier}`, hydras[c.hydra], { ...common, ...(c.env ?? {}) });
            }
            if (scenario === 'credential') for (const db of dbs) await seedCredential(db, 'bench-baseline-user');
            load.set(`${mode}/${scenario}${suffix}`, s);
          }),
      ),
    );
    // Memory servers keep answers for the longest allowed time, so only the bound limits the caches.
    const memVerifier = FULL_MEMORY ? 'hydra' : 'hydra-small-cache';
    const memEnv = { MCP_STATELESS: 'true', INTROSPECTION_CACHE_SECONDS: '3600', BENCH_CACHE_BOUND: String(TOKEN_CACHE_BOUND) };
    const memory = QUICK || AUDIT_ONLY
      ? undefined
      : {
          jwt: await start('memory-jwt', memVerifier, hydras.jwt, memEnv),
          opaque: await start('memory-opaque', memVerifier, hydras.opaque, memEnv),
          sessions: await start('memory-sessions', 'hydra', hydras.jwt, { MCP_STATELESS: 'false' }),
        };
    // Issue 17's flood: the audit trail on (the default) and the default limits, so nearly every request is refused.
    const flooded = QUICK && !AUDIT_ONLY ? undefined : await start('flood', 'hydra', hydras.jwt, { MCP_STATELESS: 'true', AUDIT: 'on', MCP_REQUESTS_PER_MINUTE: UNSET });
    // Issue 26 #10: the audit trail on and the limits at their maxima, so every call is served, taken from its bucket and audited.
    const stalled = QUICK && !AUDIT_ONLY
      ? undefined
      : await start('audit-stall', 'hydra', hydras.jwt, { MCP_STATELESS: 'true', AUDIT: 'on', ...LIMITS_AT_MAXIMA });
    log(`${load.size} scenario processes (each with its twin)${memory ? ', 3 memory servers' : ''}${flooded ? ', a flood server' : ''}${stalled ? ', an audit-stall server' : ''} up`);

    // ── tokens: one client per Hydra, allowed every server as audience ───
    const all = [...load.values(), ...(memory ? Object.values(memory) : []), ...(flooded ? [flooded] : []), ...(stalled ? [stalled] : [])];
    const audiences = all.flatMap((s) => [s.mcpUrl.href, ...(s.twin ? [s.twin.mcpUrl.href] : [])]);
    const clients: Record<'jwt' | 'opaque', BenchClient> = {
      jwt: await createClient(hydras.jwt.adminUrl, audiences),
      opaque: await createClient(hydras.opaque.adminUrl, audiences),
    };
    if (scenariosOf('stateless').includes('introspect-everything')) {
      // The comparison pattern pages through every registered client on every call.
      await createIdleClients(hydras.opaque.adminUrl, REGISTERED_CLIENTS - 1);
      log(`${REGISTERED_CLIENTS} clients registered in the opaque Hydra`);
    }

    const targets = new Map<string, { target: Target; sub: string; server: BenchServer }>();
    for (const mode of MODES) {
      for (const [scenario, suffix] of scenariosOf(mode).filter((s) => s !== 'baseline').flatMap((sc) => processKeys(sc).map((x) => [sc, x] as const))) {
        for (const side of ['scenario', 'baseline'] as const) {
          const key = `${mode}/${scenario}${suffix}${side === 'baseline' ? '/baseline' : ''}`;
          const server = load.get(`${serverModeOf(mode)}/${scenario}${suffix}`)!;
          const c = COMPOSITION[scenario];
          const url = side === 'baseline' && c.twin ? server.twin!.mcpUrl : server.mcpUrl;
          const which = c.hydra;
          // The switch verifier's baseline side (and, under --aa, both sides) bears BASELINE_TOKEN.
          const baselineToken = !c.twin && (side === 'baseline' || AA);
          const token = baselineToken ? BASELINE_TOKEN : await mintToken(hydras[which].publicUrl, clients[which], url.href);
          // client_credentials: the subject is the client; a fixed-principal server names its fixed person.
          const fixed = baselineToken || (side === 'baseline' || AA ? (c.twin?.verifier ?? 'fixed') === 'fixed' : c.verifier === 'fixed');
          const sub = fixed ? 'bench-baseline-user' : clients[which].clientId;
          const sessionId = mode === 'stateful' ? (await openSession(url, token)).sessionId : undefined;
          if (mode === 'stateful' && !sessionId) throw new Error(`${server.name}: could not open a session`);
          const target: Target = {
            url,
            token,
            sessionId,
            ...(mode === 'stateless-2026' ? { revision: REVISION_2026 } : {}),
            // The twin calls the tool the scenario's server calls (whoami, or its credential variant): only the check differs.
            ...(scenario === 'credential' && !AA && side === 'scenario' ? { tool: whoamiWithCredential.name } : {}),
          };
          await callOnce(target, sub);
          targets.set(key, { target, sub, server });
        }
      }
    }

    // ── 1. load: each scenario and its twin in one process, loaded in turns ──
    // The pair shares a process (heap, JIT, memory layout): two processes of
    // the same build differ by a few % on their own, which used to decide the
    // ratios. Only one side is loaded at a time, in turns of SLICE_MS over
    // kept connections (bench/interleave.ts), so each has the CPU to itself
    // (no scheduler share between them, no advantage for a side that waits on
    // Hydra) and the host's drifts (this VM's speed moves by tens of % within
    // seconds) reach both alike. Warm-up first: a fresh server needs ~8,000
    // calls before its cost per call settles.
    /** The pair `key` in turns, scenario first unless `twinFirst`; answers [scenario, twin]. */
    const interleaved = async (key: string, slices: number, sliceMs: number, twinFirst = false): Promise<[LoadSample, LoadSample]> => {
      const [a, b] = [targets.get(key)!, targets.get(`${key}/baseline`)!];
      const options = { connections: CONNECTIONS, sliceMs, slices, cpuMicros: () => a.server.cpuMicros() };
      if (!twinFirst) return runInterleaved([a.target, b.target], options);
      const [twin, scenario] = await runInterleaved([b.target, a.target], options);
      return [scenario, twin];
    };
    const combos = MODES.flatMap((mode) => scenariosOf(mode).filter((s) => s !== 'baseline').flatMap((scenario) => processKeys(scenario).map((suffix) => `${mode}/${scenario}${suffix}`)));
    phase(`warm-up (${WARM_SECONDS} s per pair)`);
    for (const key of combos) await interleaved(key, Math.round((WARM_SECONDS * 1000) / WARM_SLICE_MS), WARM_SLICE_MS);
    phase('load');
    const pairs = new Map<string, { scenario: LoadSample; baseline: LoadSample }[]>();
    // The machine's 1-minute load average at every pair: says whether the run had the machine to itself.
    const loads: number[] = [];
    const runPair = async (scenarioKey: string, round: number, label: string) => {
      // A scenario with its own twin server runs each round in the next of its processes.
      const suffixes = processKeys(scenarioKey.slice(scenarioKey.indexOf('/') + 1) as Scenario);
      const key = `${scenarioKey}${suffixes[round % suffixes.length]}`;
      const sides = [key, `${key}/baseline`];
      loads.push(loadavg()[0]!);
      // The process sat idle while other pairs ran: a moment of unmeasured turns first.
      await interleaved(key, 2, 150);
      // Which side takes the first turn alternates by round.
      const slices = 2 * Math.max(1, Math.round((SECONDS * 1000) / SLICE_MS));
      const [scenario, baseline] = await interleaved(key, slices, SLICE_MS, round % 2 === 1);
      for (const k of sides) await callOnce(targets.get(k)!.target, targets.get(k)!.sub);
      const show = (s: LoadSample) => `${s.rps.toFixed(0)} req/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, ${s.cpuUs!.toFixed(0)} µs CPU/req, errors ${s.errors}`;
      log(`${label} ${key}: ${(scenario.rps / baseline.rps).toFixed(3)}× (${show(scenario)} | twin ${show(baseline)})`);
      pairs.set(scenarioKey, [...(pairs.get(scenarioKey) ?? []), { scenario, baseline }]);
    };
    for (let round = 0; round < ROUNDS; round++) {
      const flip = round % 2 === 1;
      for (const mode of MODES) {
        const inRound = scenariosOf(mode).filter((s) => s !== 'baseline' && (s !== 'introspect-everything' || round < EVERYTHING_ROUNDS) && (!CONTRASTS.includes(s) || round < CONTRAST_ROUNDS));
        for (const scenario of flip ? [...inRound].reverse() : inRound) await runPair(`${mode}/${scenario}`, round, `round ${round + 1}/${ROUNDS}`);
      }
    }
    const loadResults: LoadResult[] = MODES.flatMap((mode) =>
      scenariosOf(mode).map((scenario): LoadResult => {
        if (scenario === 'baseline') {
          // Every fixed-principal twin's runs in this mode: the baseline's absolute numbers, ratio 1 by definition.
          const rounds = scenariosOf(mode)
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
    for (const suffix of scenariosOf('stateless').includes('audit-limits') ? processKeys('audit-limits') : []) {
      const auditPair = load.get(`stateless/audit-limits${suffix}`)!;
      // The scenario must have audited and never refused (else it measured 429s); its twin must have audited nothing.
      const written = await auditPair.metric('audit_records_written_total');
      // No refusal yet: no such sample in the metrics.
      const refusedBy = (scope: string) => auditPair.metric('mcp_rate_limited_total', { scope }).catch(() => 0);
      const refused = (await refusedBy('principal')) + (await refusedBy('client'));
      const twinWritten = await auditPair.twin!.metric('audit_records_written_total');
      log(`audit-limits${suffix}: ${written} audit records written, ${refused} refused; twin ${twinWritten} written`);
      if (!AA && ((AUDIT_LIMITS !== 'limits' && written === 0) || refused > 0 || twinWritten > 0)) throw new Error(`audit-limits: expected records and no refusals on the scenario, none on its twin; got ${written} written, ${refused} refused, twin ${twinWritten}`);
    }
    for (const s of load.values()) await s.stop();

    let flood: FloodResult | undefined;
    if (flooded) {
      phase(`audit + limits flood (${FLOOD_SECONDS} s)`);
      const token = await mintToken(hydras.jwt.publicUrl, clients.jwt, flooded.mcpUrl.href);
      const target: Target = { url: flooded.mcpUrl, token };
      await callOnce(target, clients.jwt.clientId);
      // Another person: their own client (client_credentials: the client is the subject), so their own buckets.
      const otherClient = await createClient(hydras.jwt.adminUrl, [flooded.mcpUrl.href], 'bench other person');
      const other = { target: { url: flooded.mcpUrl, token: await mintToken(hydras.jwt.publicUrl, otherClient, flooded.mcpUrl.href) }, sub: otherClient.clientId };
      flood = await floodMemory(flooded, target, CONNECTIONS, FLOOD_SECONDS, other);
      if (flood.otherUser) log(`flood: another person's median ${flood.otherUser.quiet.p50.toFixed(2)} ms without, ${flood.otherUser.during.p50.toFixed(2)} ms during (p95 ${flood.otherUser.quiet.p95.toFixed(2)} / ${flood.otherUser.during.p95.toFixed(2)} ms)`);
      log(`flood: ${flood.ok} 200, ${flood.limited} 429, ${flood.other} other; audit ${flood.audit.written} written, ${flood.audit.dropped} dropped; ${flood.points.map((p) => `${p.label} ${p.rssMiB.toFixed(1)} MiB RSS, ${p.heapUsedMiB.toFixed(1)} MiB heap`).join('; ')}`);
      await flooded.stop();
    }

    let stall: AuditStallResult | undefined;
    if (stalled) {
      phase(`another person while audit writes at full rate (${STALL_SECONDS} s)`);
      const target: Target = { url: stalled.mcpUrl, token: await mintToken(hydras.jwt.publicUrl, clients.jwt, stalled.mcpUrl.href) };
      await callOnce(target, clients.jwt.clientId);
      // Other people: each their own client (client_credentials: the client is the subject), so their own buckets.
      const others = [];
      for (let i = 0; i < STALL_PEOPLE; i++) {
        const c = await createClient(hydras.jwt.adminUrl, [stalled.mcpUrl.href], `bench other person ${i}`);
        others.push({ target: { url: stalled.mcpUrl, token: await mintToken(hydras.jwt.publicUrl, c, stalled.mcpUrl.href) }, sub: c.clientId });
      }
      stall = await auditStall(stalled, target, STALL_CONNECTIONS, STALL_SECONDS, others);
      const { quiet, during } = stall;
      log(
        `audit stall: ${Math.round(stall.rps)} req/s, ${stall.auditWritten} audit records; other people p50 ${quiet.p50.toFixed(2)} / ${during.p50.toFixed(2)} ms, p99 ${quiet.p99.toFixed(2)} / ${during.p99.toFixed(2)} ms, max ${quiet.max.toFixed(2)} / ${during.max.toFixed(2)} ms (without / during; ${quiet.n} / ${during.n} calls)`,
      );
      await stalled.stop();
    }

    // Phases 2–5 (the full run only).
    const rest = async (mem: NonNullable<typeof memory>) => {
      // The check alone, in this process, with real tokens.
      phase('the check alone, in process');
      const resource = mem.jwt.mcpUrl;
      const verifier = await verifierCost(hydras, resource, {
        jwt: await mintToken(hydras.jwt.publicUrl, clients.jwt, resource.href),
        opaque: await mintToken(hydras.opaque.publicUrl, clients.opaque, resource.href),
      });
      log(`check alone: ${verifier.map((v) => `${v.check} ${v.microseconds.toFixed(1)} µs`).join('; ')}`);
      const removedCheck = await removedCheckCost(hydras.jwt, resource, await mintToken(hydras.jwt.publicUrl, clients.jwt, resource.href));
      log(`removed-subject check: +${removedCheck.addedMicroseconds.toFixed(3)} µs per cached JWT check (range ${removedCheck.addedRange.map((x) => x.toFixed(3)).join(' to ')})`);

      // ── 2. memory ─────────────────────────────────────────────────────────
      phase(`memory (${FULL_MEMORY ? 'full' : 'quick'}: ${TOKENS.toLocaleString('en-US')} + ${TOKENS.toLocaleString('en-US')} tokens, bound ${TOKEN_CACHE_BOUND.toLocaleString('en-US')})`);
      const tokens: MemoryResult['tokens'] = [];
      for (const [kind, server] of [['jwt', mem.jwt], ['opaque', mem.opaque]] as const) {
        log(`minting ${2 * TOKENS} ${kind} tokens`);
        const batch1 = await mintTokens(hydras[kind].publicUrl, clients[kind], server.mcpUrl.href, TOKENS);
        const batch2 = await mintTokens(hydras[kind].publicUrl, clients[kind], server.mcpUrl.href, TOKENS);
        const result = await tokenMemory(server, kind, TOKEN_CACHE_BOUND, [batch1, batch2]);
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

      // ── 3. the whole OAuth flow ───────────────────────────────────────────
      phase('OAuth flows');
      const frontServer = await start('front', 'hydra', flowHydra!, { MCP_STATELESS: 'false' }, frontPort);
      const user = await addUserWithCli(await envFor('front', flowHydra!, {}, frontPort), 'bench@example.com', 'correct horse battery staple');
      const flows: number[][] = [];
      for (let i = 0; i < FLOWS; i++) {
        const { ms, accessToken } = await timeOneFlow(frontServer.mcpUrl, user);
        await callOnce({ url: frontServer.mcpUrl, token: accessToken, sessionId: (await openSession(frontServer.mcpUrl, accessToken)).sessionId }, user.sub);
        flows.push(ms);
      }
      const flow = summariseFlows(flows);
      log(`flow: median ${flow.medianMs.toFixed(1)} ms, p95 ${flow.p95Ms.toFixed(1)} ms`);

      // ── 4. pagination ─────────────────────────────────────────────────────
      phase('pagination (100,000 notes)');
      const pagination = await paginationCost(dir, { notes: 100_000, pageSize: 100, page: 1000 });
      log(`pagination: page 1 ${pagination.firstPageMicroseconds.toFixed(0)} µs, page 1000 ${pagination.deepPageMicroseconds.toFixed(0)} µs (${pagination.ratio.toFixed(2)}×), OFFSET ${pagination.offsetMicroseconds.toFixed(0)} µs`);
      return { verifier, removedCheck, memory: { tokens, sessions }, flow, pagination };
    };
    const extra = memory ? await rest(memory) : undefined;
    phase('report');

    // ── 4. report ─────────────────────────────────────────────────────────
    const results: BenchResults = {
      date: new Date().toISOString(),
      machine: {
        cpu: cpus()[0]?.model.trim() ?? 'unknown',
        cores: cpus().length,
        memoryGiB: Math.round(totalmem() / 1024 ** 3),
        node: process.version,
        os: `${platform()} ${release()}`,
        hydra: hydras.jwt.version,
      },
      settings: { connections: CONNECTIONS, durationSeconds: SECONDS, rounds: ROUNDS, registeredClients: REGISTERED_CLIENTS, tool: 'whoami', cpuPlacement, pairing: 'same-process', warmSeconds: WARM_SECONDS, twinProcesses: TWIN_PROCESSES, sliceMs: SLICE_MS, loadAverage: [Math.min(...loads), Math.max(...loads)], ...(QUICK ? { quick: true } : {}), ...(AA ? { aa: true } : {}), ...(AUDIT_ONLY ? { auditOnly: true } : {}), ...(AUDIT_LIMITS !== 'both' ? { auditLimits: AUDIT_LIMITS as 'audit' | 'limits' } : {}) },
      load: loadResults,
      verifier: extra?.verifier ?? [],
      ...(extra ? { memory: extra.memory, flow: extra.flow, removedCheck: extra.removedCheck, pagination: extra.pagination } : {}),
      ...(flood ? { flood } : {}),
      ...(stall ? { auditStall: stall } : {}),
      phases,
    };
    const { markdown, files } = await writeReport(results, RESULTS_DIR);
    console.log(markdown);
    log(`written: ${files.join(', ')}`);
  } catch (e) {
    if (hydraLog.length) log(`Hydra's last lines:\n${hydraLog.slice(-20).join('\n')}`);
    throw e;
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
