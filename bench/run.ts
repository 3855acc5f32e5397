/**
 * `npm run bench`: what auth costs, against the real Ory Hydra, as ratios to
 * a baseline measured in the same run. Not part of `npm test`.
 *
 *  1. Load: `tools/call whoami` over keep-alive connections (autocannon) for
 *     each scenario, in three modes: 2025-era stateless and stateful Streamable
 *     HTTP, and 2026-07-28 (stateless, no initialize; the same server processes
 *     as 2025 stateless, only the request shape differs). Every scenario server
 *     has a twin: the same configuration with the fixed-principal verifier (its
 *     own baseline). The two are loaded AT THE SAME TIME, with the same
 *     connections, warm-up and idle time, both main threads pinned to the same
 *     CPU; a round's ratio is scenario req/s ÷ twin req/s in that round, so
 *     whatever else the machine does hits both alike. Rounds alternate the
 *     scenario order and which load starts first. The introspect-everything
 *     comparison (a hundredfold slower, a contrast, not a target per mode) runs
 *     in 2025 stateless only, in the first two rounds. The audit-limits
 *     scenario (issue 17: the audit trail on and fair-use limits on, set high
 *     enough never to refuse the load) has its own twin: the same JWT server
 *     with both off; 2025 stateless only.
 *  2. The check alone, and the removed-subject check with and without, in process.
 *  3. Memory: RSS after N and 2N distinct tokens against a token cache bounded
 *     at N (quick: N = 1,000 on a smaller bound; BENCH_MEMORY=full: N = 10,000,
 *     the production bound, which takes ~10 more minutes of minting); after
 *     1,000 sessions.
 *     Then a flood: one token against a server with the audit trail and the
 *     default limits (nearly every request a 429 and an audit record), memory
 *     sampled before, a few seconds in, halfway and near the end.
 *  4. Flow: 20 whole OAuth flows (registration → … → token).
 *  5. Pagination: page 1 and page 1000 of 100,000 notes (keyset vs OFFSET).
 *  6. Report: bench/results/latest.{md,json}, chart.svg, with each phase's duration.
 *
 * Flags: --quick (load only, JWT and warm introspection in every mode and audit-limits, 3
 * rounds; the report goes to a scratch directory), --aa (every scenario server
 * is a second baseline: each ratio should be 1.00×, its spread is the method's
 * noise; also to a scratch directory), --audit-only (only the audit-limits
 * pair and the flood, about a minute; scratch directory). They may be combined.
 *
 * Knobs (environment): BENCH_CONNECTIONS (10 per server), BENCH_SECONDS (3), BENCH_ROUNDS (7; quick 3),
 * BENCH_MEMORY (quick | full), BENCH_TOKENS (N, overrides the memory size), BENCH_FLOWS (20), BENCH_FLOOD_SECONDS (15),
 * BENCH_AUDIT_LIMITS (both; "audit" or "limits": the audit-limits scenario turns on only that one),
 * BENCH_PIN (on; "off" leaves CPU placement to the OS), BENCH_RESULTS_DIR (where
 * the report goes), BENCH_CPU_PROF (a directory: V8 CPU profiles of every server,
 * compared with bench/profileDiff.ts). The default run takes under 10 minutes on 2 cores.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureHydraBinary, freeLoopbackPort, type RunningHydra, startHydra } from '../scripts/hydra.js';
import { DEFAULT_SESSION_LIMITS } from '../src/mcp/sessions.js';
import { addUserWithCli } from '../test/e2e/stack.js';
import { pinToCpu } from './cpu.js';
import { summariseFlows, timeOneFlow } from './flow.js';
import { type BenchClient, createClient, createIdleClients, mintToken, mintTokens } from './hydraTokens.js';
import { callOnce, openSession, REVISION_2026, runLoad, type Target } from './load.js';
import { sessionMemory, tokenMemory } from './memory.js';
import { writeReport } from './report.js';
import { paginationCost } from './pagination.js';
import { removedCheckCost, verifierCost } from './verifierCost.js';
import { type BenchResults, type FloodResult, type LoadResult, type LoadSample, type MemoryResult, type Mode, OWN_TWIN, type Scenario } from './results.js';
import { floodMemory, MIN_FLOOD_SECONDS } from './flood.js';
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
/** Only issue 17's measurements: the audit-limits pair and the flood. */
const AUDIT_ONLY = args.includes('--audit-only');

const num = (name: string, fallback: number) => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  return v;
};
const CONNECTIONS = num('BENCH_CONNECTIONS', 10);
const SECONDS = num('BENCH_SECONDS', 3);
const ROUNDS = num('BENCH_ROUNDS', QUICK ? 3 : 7);
const FULL_MEMORY = (process.env.BENCH_MEMORY ?? 'quick') === 'full';
if (!['quick', 'full'].includes(process.env.BENCH_MEMORY ?? 'quick')) throw new Error('BENCH_MEMORY must be quick or full');
// The production cache bound for the full run; a smaller bound (same code) for the quick one.
const TOKEN_CACHE_BOUND = FULL_MEMORY ? 10_000 : 1_000;
const TOKENS = num('BENCH_TOKENS', TOKEN_CACHE_BOUND);
/** Rounds in which the introspect-everything comparison runs: it is 100× off, so two pairs say enough. */
const EVERYTHING_ROUNDS = 2;
const FLOWS = num('BENCH_FLOWS', 20);
const FLOOD_SECONDS = num('BENCH_FLOOD_SECONDS', 15);
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
        : { MCP_REQUESTS_PER_MINUTE: '60000', MCP_BURST: '100000', MCP_CLIENT_REQUESTS_PER_MINUTE: '60000', MCP_CLIENT_BURST: '100000' }),
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
    const start = async (name: string, verifier: string, hydra: RunningHydra, extra: Record<string, string>, port?: number) => {
      // A free port can be taken by another process before the server binds it: try a fresh one.
      for (let attempt = 1; ; attempt++) {
        try {
          const s = await startBenchServer(name, verifier, await envFor(name, hydra, extra, port), serverCpu);
          cleanups.push(() => s.stop());
          return s;
        } catch (e) {
          if (port !== undefined || attempt === 3) throw e;
          log(`${name}: ${(e as Error).message}; retrying on another port`);
        }
      }
    };

    // ── servers: per (server mode, scenario) the scenario's and its baseline twin; three for memory ──
    // The twin has the scenario's configuration (credential provider included)
    // with the fixed principal instead of the token check; under --aa the
    // scenario's server is composed the same way, so each pair is baseline vs baseline.
    const load = new Map<string, BenchServer>();
    await Promise.all(
      SERVER_MODES.flatMap((mode) =>
        scenariosOf(mode)
          .filter((scenario) => scenario !== 'baseline')
          .flatMap((scenario) =>
            (['scenario', 'baseline'] as const).map(async (side) => {
              const c = COMPOSITION[scenario];
              const name = `${mode}-${scenario}${side === 'baseline' ? '-baseline' : ''}`;
              const s = await start(name, side === 'baseline' || AA ? (c.twin?.verifier ?? 'fixed') : c.verifier, hydras[c.hydra], {
                MCP_STATELESS: String(mode === 'stateless'),
                INTROSPECTION_CACHE_SECONDS: String(c.cacheSeconds),
                ...(scenario === 'credential' ? await credentialEnv(dir) : {}),
                ...(side === 'baseline' || AA ? (c.twin?.env ?? {}) : (c.env ?? {})),
              });
              if (scenario === 'credential') await seedCredential(join(dir, `${name}.sqlite`), 'bench-baseline-user');
              load.set(`${mode}/${scenario}${side === 'baseline' ? '/baseline' : ''}`, s);
            }),
          ),
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
    log(`${load.size + (memory ? 3 : 0) + (flooded ? 1 : 0)} servers up`);

    // ── tokens: one client per Hydra, allowed every server as audience ───
    const all = [...load.values(), ...(memory ? Object.values(memory) : []), ...(flooded ? [flooded] : [])];
    const audiences = all.map((s) => s.mcpUrl.href);
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
      for (const scenario of scenariosOf(mode).filter((s) => s !== 'baseline')) {
        for (const side of ['scenario', 'baseline'] as const) {
          const key = `${mode}/${scenario}${side === 'baseline' ? '/baseline' : ''}`;
          const server = load.get(`${serverModeOf(mode)}/${scenario}${side === 'baseline' ? '/baseline' : ''}`)!;
          const which = COMPOSITION[scenario].hydra;
          const token = await mintToken(hydras[which].publicUrl, clients[which], server.mcpUrl.href);
          // client_credentials: the subject is the client; a fixed-principal server names its fixed person.
          const c = COMPOSITION[scenario];
          const fixed = side === 'baseline' || AA ? (c.twin?.verifier ?? 'fixed') === 'fixed' : c.verifier === 'fixed';
          const sub = fixed ? 'bench-baseline-user' : clients[which].clientId;
          const sessionId = mode === 'stateful' ? (await openSession(server.mcpUrl, token)).sessionId : undefined;
          if (mode === 'stateful' && !sessionId) throw new Error(`${server.name}: could not open a session`);
          const target: Target = {
            url: server.mcpUrl,
            token,
            sessionId,
            ...(mode === 'stateless-2026' ? { revision: REVISION_2026 } : {}),
            // The twin calls the tool the scenario's server calls (whoami, or its credential variant): only the check differs.
            ...(scenario === 'credential' && !AA && side === 'scenario' ? { tool: whoamiWithCredential.name } : {}),
          };
          await callOnce(target, sub);
          // Warm-up: JIT, connection pools, the introspection cache where there is one.
          await runLoad(target, CONNECTIONS, 1);
          targets.set(key, { target, sub, server });
        }
      }
    }

    // ── 1. load: each scenario loaded at the same time as its baseline twin ──
    // Two processes pinned to one CPU share it by the scheduler's fair share:
    // the one that spends more CPU per request answers fewer requests, and
    // anything else on the machine (other processes, drift over minutes) slows
    // both alike. Both have the same history (warmed, loaded and left idle
    // together), so no side pays for having waited while the other ran. Before
    // each measured pair, a pause lets the previous pair's stragglers finish,
    // and one unmeasured second under the same concurrent load warms both.
    phase('load');
    const pairs = new Map<string, { scenario: LoadSample; baseline: LoadSample }[]>();
    // The machine's 1-minute load average at every pair: says whether the run had the machine to itself.
    const loads: number[] = [];
    const measure = async (key: string, seconds: number) => {
      const { target, server } = targets.get(key)!;
      const cpuBefore = await server.cpuMicros();
      const sample = await runLoad(target, CONNECTIONS, seconds);
      // Read after the last answers are in; the few µs of the IPC round trip are noise.
      sample.cpuUs = ((await server.cpuMicros()) - cpuBefore) / Math.max(1, sample.requests);
      return sample;
    };
    const runPair = async (key: string, round: number, label: string) => {
      const sides = [key, `${key}/baseline`];
      // Which load starts first (its connections open a few µs earlier) alternates by round.
      const ordered = round % 2 === 1 ? [...sides].reverse() : sides;
      await sleep(300);
      loads.push(loadavg()[0]!);
      await Promise.all(ordered.map((k) => runLoad(targets.get(k)!.target, CONNECTIONS, 1)));
      const measured = await Promise.all(ordered.map((k) => measure(k, SECONDS)));
      const [scenario, baseline] = round % 2 === 1 ? [measured[1]!, measured[0]!] : [measured[0]!, measured[1]!];
      for (const k of sides) await callOnce(targets.get(k)!.target, targets.get(k)!.sub);
      const show = (s: LoadSample) => `${s.rps.toFixed(0)} req/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, ${s.cpuUs!.toFixed(0)} µs CPU/req, errors ${s.errors}`;
      log(`${label} ${key}: ${(scenario.rps / baseline.rps).toFixed(3)}× (${show(scenario)} | twin ${show(baseline)})`);
      pairs.set(key, [...(pairs.get(key) ?? []), { scenario, baseline }]);
    };
    for (let round = 0; round < ROUNDS; round++) {
      const flip = round % 2 === 1;
      for (const mode of MODES) {
        const inRound = scenariosOf(mode).filter((s) => s !== 'baseline' && (s !== 'introspect-everything' || round < EVERYTHING_ROUNDS));
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
    const auditPair = load.get('stateless/audit-limits');
    if (auditPair) {
      // The scenario must have audited and never refused (else it measured 429s); its twin must have audited nothing.
      const written = await auditPair.metric('audit_records_written_total');
      // No refusal yet: no such sample in the metrics.
      const refusedBy = (scope: string) => auditPair.metric('mcp_rate_limited_total', { scope }).catch(() => 0);
      const refused = (await refusedBy('principal')) + (await refusedBy('client'));
      const twinWritten = await load.get('stateless/audit-limits/baseline')!.metric('audit_records_written_total');
      log(`audit-limits: ${written} audit records written, ${refused} refused; twin ${twinWritten} written`);
      if (!AA && ((AUDIT_LIMITS !== 'limits' && written === 0) || refused > 0 || twinWritten > 0)) throw new Error(`audit-limits: expected records and no refusals on the scenario, none on its twin; got ${written} written, ${refused} refused, twin ${twinWritten}`);
    }
    for (const s of load.values()) await s.stop();

    let flood: FloodResult | undefined;
    if (flooded) {
      phase(`audit + limits flood (${FLOOD_SECONDS} s)`);
      const token = await mintToken(hydras.jwt.publicUrl, clients.jwt, flooded.mcpUrl.href);
      const target: Target = { url: flooded.mcpUrl, token };
      await callOnce(target, clients.jwt.clientId);
      flood = await floodMemory(flooded, target, CONNECTIONS, FLOOD_SECONDS);
      log(`flood: ${flood.ok} 200, ${flood.limited} 429, ${flood.other} other; audit ${flood.audit.written} written, ${flood.audit.dropped} dropped; ${flood.points.map((p) => `${p.label} ${p.rssMiB.toFixed(1)} MiB RSS, ${p.heapUsedMiB.toFixed(1)} MiB heap`).join('; ')}`);
      await flooded.stop();
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
      settings: { connections: CONNECTIONS, durationSeconds: SECONDS, rounds: ROUNDS, registeredClients: REGISTERED_CLIENTS, tool: 'whoami', cpuPlacement, pairing: 'concurrent', loadAverage: [Math.min(...loads), Math.max(...loads)], ...(QUICK ? { quick: true } : {}), ...(AA ? { aa: true } : {}), ...(AUDIT_ONLY ? { auditOnly: true } : {}), ...(AUDIT_LIMITS !== 'both' ? { auditLimits: AUDIT_LIMITS as 'audit' | 'limits' } : {}) },
      load: loadResults,
      verifier: extra?.verifier ?? [],
      ...(extra ? { memory: extra.memory, flow: extra.flow, removedCheck: extra.removedCheck, pagination: extra.pagination } : {}),
      ...(flood ? { flood } : {}),
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
