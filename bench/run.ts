/**
 * `npm run bench`: what auth costs, against the real Ory Hydra, as ratios to
 * a baseline measured in the same run. Not part of `npm test`.
 *
 *  1. Load: `tools/call whoami` over keep-alive connections (autocannon) for
 *     each scenario, in three modes: 2025-era stateless and stateful Streamable
 *     HTTP, and 2026-07-28 (stateless, no initialize; the same server processes
 *     as 2025 stateless, only the request shape differs). Each run is paired
 *     with an adjacent baseline run of its own mode, in rounds that alternate
 *     the order. The introspect-everything comparison (a hundredfold slower, a
 *     contrast, not a target per mode) runs in 2025 stateless only, in the
 *     first two rounds.
 *  2. The check alone, and the removed-subject check with and without, in process.
 *  3. Memory: RSS after N and 2N distinct tokens against a token cache bounded
 *     at N (quick: N = 1,000 on a smaller bound; BENCH_MEMORY=full: N = 10,000,
 *     the production bound, which takes ~10 more minutes of minting); after
 *     1,000 sessions.
 *  4. Flow: 20 whole OAuth flows (registration → … → token).
 *  5. Pagination: page 1 and page 1000 of 100,000 notes (keyset vs OFFSET).
 *  6. Report: bench/results/latest.{md,json}, chart.svg, with each phase's duration.
 *
 * Knobs (environment): BENCH_CONNECTIONS (10), BENCH_SECONDS (3), BENCH_ROUNDS (5),
 * BENCH_MEMORY (quick | full), BENCH_TOKENS (N, overrides the memory size), BENCH_FLOWS (20),
 * BENCH_PIN (on; "off" leaves CPU placement to the OS). The default run takes
 * under 10 minutes on 2 cores.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, platform, release, tmpdir, totalmem } from 'node:os';
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
import type { BenchResults, LoadResult, LoadSample, MemoryResult, Mode, Scenario } from './results.js';
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

const num = (name: string, fallback: number) => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  return v;
};
const CONNECTIONS = num('BENCH_CONNECTIONS', 10);
const SECONDS = num('BENCH_SECONDS', 3);
const ROUNDS = num('BENCH_ROUNDS', 5);
const FULL_MEMORY = (process.env.BENCH_MEMORY ?? 'quick') === 'full';
if (!['quick', 'full'].includes(process.env.BENCH_MEMORY ?? 'quick')) throw new Error('BENCH_MEMORY must be quick or full');
// The production cache bound for the full run; a smaller bound (same code) for the quick one.
const TOKEN_CACHE_BOUND = FULL_MEMORY ? 10_000 : 1_000;
const TOKENS = num('BENCH_TOKENS', TOKEN_CACHE_BOUND);
/** Rounds in which the introspect-everything comparison runs: it is 100× off, so two pairs say enough. */
const EVERYTHING_ROUNDS = 2;
const FLOWS = num('BENCH_FLOWS', 20);
const REGISTERED_CLIENTS = 1000;
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

const MODES: Mode[] = ['stateless', 'stateful', 'stateless-2026'];
const SCENARIOS: Scenario[] = ['baseline', 'jwt', 'opaque-cached', 'opaque-introspect', 'introspect-everything', 'credential'];
/**
 * The contrast is measured once (2025 stateless), and the 2026 mode measures
 * what its targets name (JWT, warm introspection): a third mode must not
 * lengthen the run past 10 minutes.
 */
/**
 * The credential scenario (a tool reading a connected account, issue 14) runs
 * in 2025 stateless only, against the baseline's own server; introspecting
 * every call is measured in 2025 stateless only (its cost does not depend on
 * the mode), which keeps the run under 10 minutes.
 */
const scenariosOf = (mode: Mode): Scenario[] =>
  SCENARIOS.filter(
    (s) =>
      (s !== 'introspect-everything' || mode === 'stateless') &&
      (s !== 'credential' || mode === 'stateless') &&
      (s !== 'opaque-introspect' || mode === 'stateless'),
  );
/** Scenarios served by another scenario's server process (a different tool on the same server). */
const SHARED_SERVER: Partial<Record<Scenario, Scenario>> = { credential: 'baseline' };
/** Server processes: 2026-07-28 requests go to the 2025 stateless servers (2 cores: no more processes than needed). */
const SERVER_MODES = ['stateless', 'stateful'] as const;
const serverModeOf = (mode: Mode): (typeof SERVER_MODES)[number] => (mode === 'stateful' ? 'stateful' : 'stateless');

/** Which Hydra issues the scenario's tokens, which verifier the server composes, and its cache. */
const COMPOSITION: Record<Scenario, { hydra: 'jwt' | 'opaque'; verifier: string; cacheSeconds: number }> = {
  baseline: { hydra: 'jwt', verifier: 'fixed', cacheSeconds: 60 },
  jwt: { hydra: 'jwt', verifier: 'hydra', cacheSeconds: 60 },
  'opaque-cached': { hydra: 'opaque', verifier: 'hydra', cacheSeconds: 60 },
  'opaque-introspect': { hydra: 'opaque', verifier: 'hydra', cacheSeconds: 0 },
  'introspect-everything': { hydra: 'opaque', verifier: 'introspect-everything', cacheSeconds: 0 },
  credential: { hydra: 'jwt', verifier: 'fixed', cacheSeconds: 60 },
};

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
    const flowHydra = await startH('opaque');
    log(`Hydra ${hydras.jwt.version}: jwt ${hydras.jwt.publicUrl}, opaque ${hydras.opaque.publicUrl}, flow ${flowHydra.publicUrl}`);

    const envFor = async (name: string, hydra: RunningHydra, extra: Record<string, string>, port?: number) => ({
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

    // ── servers: one per (server mode, scenario), three for memory ───────
    const load = new Map<string, BenchServer>();
    await Promise.all(
      SERVER_MODES.flatMap((mode) =>
        scenariosOf(mode)
          .filter((scenario) => !SHARED_SERVER[scenario])
          .map(async (scenario) => {
            const c = COMPOSITION[scenario];
            const s = await start(`${mode}-${scenario}`, c.verifier, hydras[c.hydra], {
              MCP_STATELESS: String(mode === 'stateless'),
              INTROSPECTION_CACHE_SECONDS: String(c.cacheSeconds),
              // The 2025 stateless baseline also serves the credential scenario's tool.
              ...(mode === 'stateless' && scenario === 'baseline' ? await credentialEnv(dir) : {}),
            });
            load.set(`${mode}/${scenario}`, s);
          }),
      ),
    );
    await seedCredential(join(dir, 'stateless-baseline.sqlite'), 'bench-baseline-user');
    // Memory servers keep answers for the longest allowed time, so only the bound limits the caches.
    const memVerifier = FULL_MEMORY ? 'hydra' : 'hydra-small-cache';
    const memEnv = { MCP_STATELESS: 'true', INTROSPECTION_CACHE_SECONDS: '3600', BENCH_CACHE_BOUND: String(TOKEN_CACHE_BOUND) };
    const memJwt = await start('memory-jwt', memVerifier, hydras.jwt, memEnv);
    const memOpaque = await start('memory-opaque', memVerifier, hydras.opaque, memEnv);
    const memSessions = await start('memory-sessions', 'hydra', hydras.jwt, { MCP_STATELESS: 'false' });
    log(`${load.size + 3} servers up`);

    // ── tokens: one client per Hydra, allowed every server as audience ───
    const all = [...load.values(), memJwt, memOpaque, memSessions];
    const audiences = all.map((s) => s.mcpUrl.href);
    const clients: Record<'jwt' | 'opaque', BenchClient> = {
      jwt: await createClient(hydras.jwt.adminUrl, audiences),
      opaque: await createClient(hydras.opaque.adminUrl, audiences),
    };
    // The comparison pattern pages through every registered client on every call.
    await createIdleClients(hydras.opaque.adminUrl, REGISTERED_CLIENTS - 1);
    log(`${REGISTERED_CLIENTS} clients registered in the opaque Hydra`);

    const targets = new Map<string, { target: Target; sub: string; server: BenchServer }>();
    for (const mode of MODES) {
      for (const scenario of scenariosOf(mode)) {
        const server = load.get(`${serverModeOf(mode)}/${SHARED_SERVER[scenario] ?? scenario}`)!;
        const which = COMPOSITION[scenario].hydra;
        const token = await mintToken(hydras[which].publicUrl, clients[which], server.mcpUrl.href);
        // client_credentials: the subject is the client; the baseline names its fixed person.
        const sub = COMPOSITION[scenario].verifier === 'fixed' ? 'bench-baseline-user' : clients[which].clientId;
        const sessionId = mode === 'stateful' ? (await openSession(server.mcpUrl, token)).sessionId : undefined;
        if (mode === 'stateful' && !sessionId) throw new Error(`${server.name}: could not open a session`);
        const target: Target = {
          url: server.mcpUrl,
          token,
          sessionId,
          ...(mode === 'stateless-2026' ? { revision: REVISION_2026 } : {}),
          ...(scenario === 'credential' ? { tool: whoamiWithCredential.name } : {}),
        };
        await callOnce(target, sub);
        // Warm-up: JIT, connection pools, the introspection cache where there is one.
        await runLoad(target, CONNECTIONS, 1);
        targets.set(`${mode}/${scenario}`, { target, sub, server });
      }
    }

    // ── 1. load: each scenario run next to a baseline run, in alternating order ──
    // A scenario's ratio comes only from pairs of adjacent runs, so drift on a
    // shared machine (minutes long) cancels; the order within a pair flips each
    // round. Before each measured run, a pause lets the previous run's
    // stragglers finish, and one unmeasured second warms the server: a server
    // left idle for half a minute runs slower for its first second (V8 drops
    // code it has not used), which otherwise penalised every scenario against
    // the baseline, which runs every other time.
    phase('load');
    const samples = new Map<string, LoadSample[]>();
    const pairs = new Map<string, { scenario: LoadSample; baseline: LoadSample }[]>();
    const run = async (key: string, label: string) => {
      await sleep(300);
      const { target, sub, server } = targets.get(key)!;
      await runLoad(target, CONNECTIONS, 1);
      const cpuBefore = await server.cpuMicros();
      const sample = await runLoad(target, CONNECTIONS, SECONDS);
      // Read after the last answers are in; the few µs of the IPC round trip are noise.
      sample.cpuUs = ((await server.cpuMicros()) - cpuBefore) / Math.max(1, sample.requests);
      await callOnce(target, sub);
      log(`${label} ${key}: ${sample.rps.toFixed(0)} req/s, p50 ${sample.p50.toFixed(2)} ms, p99 ${sample.p99.toFixed(2)} ms, ${sample.cpuUs.toFixed(0)} µs CPU/req, errors ${sample.errors}`);
      samples.set(key, [...(samples.get(key) ?? []), sample]);
      return sample;
    };
    for (let round = 0; round < ROUNDS; round++) {
      const flip = round % 2 === 1;
      for (const mode of MODES) {
        const inRound = scenariosOf(mode).filter((s) => s !== 'baseline' && (s !== 'introspect-everything' || round < EVERYTHING_ROUNDS));
        for (const scenario of flip ? [...inRound].reverse() : inRound) {
          const label = `round ${round + 1}/${ROUNDS}`;
          const first = await run(`${mode}/${flip ? scenario : 'baseline'}`, label);
          const second = await run(`${mode}/${flip ? 'baseline' : scenario}`, label);
          const pair = flip ? { scenario: first, baseline: second } : { scenario: second, baseline: first };
          pairs.set(`${mode}/${scenario}`, [...(pairs.get(`${mode}/${scenario}`) ?? []), pair]);
        }
      }
    }
    const loadResults: LoadResult[] = MODES.flatMap((mode) =>
      scenariosOf(mode).map((scenario) => {
        const rounds = samples.get(`${mode}/${scenario}`)!;
        const own = pairs.get(`${mode}/${scenario}`) ?? [];
        const ratio = (pick: (s: LoadSample) => number) => (scenario === 'baseline' ? 1 : median(own.map((p) => pick(p.scenario) / pick(p.baseline))));
        return {
          mode,
          scenario,
          rps: median(rounds.map((r) => r.rps)),
          p50: median(rounds.map((r) => r.p50)),
          p99: median(rounds.map((r) => r.p99)),
          // Capacity is the inverse cost ratio: baseline µs per request over the scenario's.
          ratio: { rps: ratio((s) => s.rps), p50: ratio((s) => s.p50), p99: ratio((s) => s.p99), cpu: ratio((s) => 1 / s.cpuUs!) },
          cpuUs: median(rounds.map((r) => r.cpuUs!)),
          p99AddedMs: scenario === 'baseline' ? 0 : median(own.map((p) => p.scenario.p99 - p.baseline.p99)),
          rounds,
          pairedBaseline: own.map((p) => p.baseline),
        };
      }),
    );
    for (const s of load.values()) await s.stop();

    // The check alone, in this process, with real tokens.
    phase('the check alone, in process');
    const resource = memJwt.mcpUrl;
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
    for (const [kind, server] of [['jwt', memJwt], ['opaque', memOpaque]] as const) {
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
      const c = await createClient(hydras.jwt.adminUrl, [memSessions.mcpUrl.href], `bench user ${i}`);
      sessionTokens.push(await mintToken(hydras.jwt.publicUrl, c, memSessions.mcpUrl.href));
    }
    const sessions = await sessionMemory(memSessions, sessionTokens, maxPerUser, maxSessions);
    log(`sessions: ${sessions.points.map((p) => `${p.label} ${p.rssMiB.toFixed(1)} MiB (${p.entries} live)`).join('; ')}; refused ${sessions.refused}`);

    // ── 3. the whole OAuth flow ───────────────────────────────────────────
    phase('OAuth flows');
    const frontServer = await start('front', 'hydra', flowHydra, { MCP_STATELESS: 'false' }, frontPort);
    const user = await addUserWithCli(await envFor('front', flowHydra, {}, frontPort), 'bench@example.com', 'correct horse battery staple');
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
      settings: { connections: CONNECTIONS, durationSeconds: SECONDS, rounds: ROUNDS, registeredClients: REGISTERED_CLIENTS, tool: 'whoami', cpuPlacement },
      load: loadResults,
      verifier,
      memory: { tokens, sessions },
      flow,
      removedCheck,
      pagination,
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
