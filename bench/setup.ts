/**
 * Everything the phases measure against, started once: the Hydras, one
 * process per (server mode, scenario) serving both sides of its pair, the
 * memory, flood and audit-stall servers, a client per Hydra, and every pair's
 * two targets with their tokens. Each thing started registers its stop in the
 * caller's `cleanups`, so a set-up that fails half way still stops what it started.
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ensureHydraBinary, freeLoopbackPort, type RunningHydra, startHydra } from '../scripts/hydra.js';
import { pinToCpu } from './cpu.js';
import { credentialEnv, newConnectionKeys, seedCredential } from './credentialSeed.js';
import { whoamiWithCredential } from './credentialTool.js';
import { BASELINE_SUB, SESSIONS_SUB } from './fixedPrincipal.js';
import { type BenchClient, createClient, createIdleClients, mintToken } from './hydraTokens.js';
import { callOnce, openSession, REVISION_2026, type Target } from './load.js';
import { log } from './log.js';
import { type BenchServer, startBenchServer } from './servers.js';
import { LIMITS_AT_MAXIMA, MODES, processKeys, SERVER_MODES, serverModeOf, type Settings, scenariosOf, UNSET, withoutUnset } from './settings.js';
import { BASELINE_TOKEN, SESSIONS_TOKEN } from './switchVerifier.js';

/** What the caller owns and tears down, whether or not set-up finishes. */
export interface Resources {
  /** Scratch directory: the servers' databases, the provider catalogue. */
  dir: string;
  /** Stops, in the order things started (run them reversed). */
  cleanups: (() => Promise<void>)[];
  /** Every Hydra's output, for the error report. */
  hydraLog: string[];
}

type Hydras = Record<'jwt' | 'opaque', RunningHydra>;

/** A server's settings: its Hydra, its own port and database, request logs and limits off unless `extra` says otherwise. */
export type EnvFor = (name: string, hydra: RunningHydra, extra: Record<string, string>, port?: number) => Promise<Record<string, string>>;
/** Starts a bench server (on `port`, or a free one retried up to three times) and registers its stop. */
export type StartServer = (name: string, verifier: string, hydra: RunningHydra, extra: Record<string, string>, port?: number, twin?: Parameters<typeof startBenchServer>[4]) => Promise<BenchServer>;

/** One side of a measured pair: what to call, whom whoami should name, and the process that answers. */
export interface PairSide {
  target: Target;
  sub: string;
  server: BenchServer;
}

export interface BenchContext {
  settings: Settings;
  dir: string;
  /** How this process and the servers were placed on CPUs, for the report. */
  cpuPlacement: string;
  hydras: Hydras;
  /** The Hydra of whole OAuth flows, sending people to our login UI on `frontPort` (full run only). */
  flowHydra?: RunningHydra;
  frontPort: number;
  /** Scenario processes by `serverMode/scenario#process`. */
  load: Map<string, BenchServer>;
  /** Full run only. */
  memory?: { jwt: BenchServer; opaque: BenchServer; sessions: BenchServer };
  /** Issue 17's flood server (absent in a quick run). */
  flooded?: BenchServer;
  /** Issue 26 #10's audit-stall server (absent in a quick run). */
  stalled?: BenchServer;
  /** One client per Hydra, allowed every server as audience. */
  clients: Record<'jwt' | 'opaque', BenchClient>;
  /** Both sides of every pair: `mode/scenario#process` and `…/baseline`. */
  targets: Map<string, PairSide>;
  envFor: EnvFor;
  start: StartServer;
}

export async function setUp(settings: Settings, own: Resources): Promise<BenchContext> {
  // The load generator (this process) on CPU 0, every server on CPU 1; Hydra where the OS puts it.
  const pinned = pinToCpu(process.pid, 0);
  const cpuPlacement = pinned ? 'main threads pinned: load generator to CPU 0, servers to CPU 1 (Hydra and helper threads unpinned)' : 'no CPU pinning';
  log(cpuPlacement);
  const { hydras, flowHydra, frontPort } = await startHydras(settings, own);
  const { envFor, start } = serverStarter(own, pinned ? 1 : undefined);
  const load = await startLoadServers(settings, own.dir, hydras, envFor, start);
  const { memory, flooded, stalled } = await startOtherServers(settings, hydras, start);
  log(`${load.size} scenario processes (each with its twin)${memory ? ', 3 memory servers' : ''}${flooded ? ', a flood server' : ''}${stalled ? ', an audit-stall server' : ''} up`);

  // ── tokens: one client per Hydra, allowed every server as audience ───
  const all = [...load.values(), ...(memory ? Object.values(memory) : []), ...(flooded ? [flooded] : []), ...(stalled ? [stalled] : [])];
  const audiences = all.flatMap((s) => [s.mcpUrl.href, ...(s.twin ? [s.twin.mcpUrl.href] : [])]);
  const clients: Record<'jwt' | 'opaque', BenchClient> = {
    jwt: await createClient(hydras.jwt.adminUrl, audiences),
    opaque: await createClient(hydras.opaque.adminUrl, audiences),
  };
  if (scenariosOf(settings, 'stateless').includes('introspect-everything')) {
    // The comparison pattern pages through every registered client on every call.
    await createIdleClients(hydras.opaque.adminUrl, settings.registeredClients - 1);
    log(`${settings.registeredClients} clients registered in the opaque Hydra`);
  }
  const targets = await buildTargets(settings, hydras, clients, load);
  return { settings, dir: own.dir, cpuPlacement, hydras, flowHydra, frontPort, load, memory, flooded, stalled, clients, targets, envFor, start };
}

/** The two load Hydras, and in a full run the flow Hydra whose login UI is ours on `frontPort`. */
async function startHydras(settings: Settings, own: Resources): Promise<{ hydras: Hydras; flowHydra?: RunningHydra; frontPort: number }> {
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
      log: (l) => own.hydraLog.push(l),
    });
    own.cleanups.push(() => h.stop());
    return h;
  };
  // The load Hydras only mint client_credentials tokens in bulk: the lowest
  // bcrypt cost for client secrets keeps minting 20,000 of them quick. It
  // touches nothing measured (introspection does not hash secrets).
  const fastMint = { OAUTH2_HASHERS_BCRYPT_COST: '4' };
  const hydras = { jwt: await startH('jwt', fastMint), opaque: await startH('opaque', fastMint) };
  const flowHydra = settings.quick || settings.auditOnly || settings.credentialOnly || settings.sessionsOnly ? undefined : await startH('opaque');
  log(`Hydra ${hydras.jwt.version}: jwt ${hydras.jwt.publicUrl}, opaque ${hydras.opaque.publicUrl}${flowHydra ? `, flow ${flowHydra.publicUrl}` : ''}`);
  return { hydras, flowHydra, frontPort };
}

/** A bench server's environment: loopback, its own SQLite file in `dir`, request logs and fair use off; `extra` on top (UNSET removes a key). */
export async function benchServerEnv(dir: string, name: string, hydra: RunningHydra, extra: Record<string, string>, port?: number): Promise<Record<string, string>> {
  return withoutUnset({
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
}

/** `envFor` and `start` over the scratch directory, with every server pinned to `serverCpu`. */
function serverStarter(own: Resources, serverCpu: number | undefined): { envFor: EnvFor; start: StartServer } {
  const envFor: EnvFor = (name, hydra, extra, port) => benchServerEnv(own.dir, name, hydra, extra, port);
  const start: StartServer = async (name, verifier, hydra, extra, port, twin) => {
    // A free port can be taken by another process before the server binds it: try a fresh one.
    for (let attempt = 1; ; attempt++) {
      try {
        const s = await startBenchServer(name, verifier, await envFor(name, hydra, extra, port), serverCpu, twin);
        own.cleanups.push(() => s.stop());
        return s;
      } catch (e) {
        if (port !== undefined || attempt === 3) throw e;
        log(`${name}: ${(e as Error).message}; retrying on another port`);
      }
    }
  };
  return { envFor, start };
}

/**
 * Per (server mode, scenario) one process serving both sides of the pair.
 * Most scenarios differ from their baseline only in the token check: one
 * server whose verifier switches on the token (bench/switchVerifier.ts), the
 * baseline's requests bearing BASELINE_TOKEN. A scenario with its own twin
 * configuration (audit-limits: the audit trail and limits off) gets a second
 * server in the same process (bench/server.ts BENCH_TWIN). Under --aa both
 * sides are the baseline.
 */
async function startLoadServers(settings: Settings, dir: string, hydras: Hydras, envFor: EnvFor, start: StartServer): Promise<Map<string, BenchServer>> {
  const { aa, composition } = settings;
  const connectionKeys = newConnectionKeys();
  const load = new Map<string, BenchServer>();
  await Promise.all(
    SERVER_MODES.flatMap((mode) =>
      scenariosOf(settings, mode)
        .filter((scenario) => scenario !== 'baseline')
        .flatMap((scenario) => processKeys(settings, scenario).map((suffix) => ({ scenario, suffix })))
        .map(async ({ scenario, suffix }) => {
          const c = composition[scenario];
          const name = `${mode}-${scenario}${suffix.replace('#', '-')}`;
          const common = { MCP_STATELESS: String(mode === 'stateless'), INTROSPECTION_CACHE_SECONDS: String(c.cacheSeconds), ...(scenario === 'credential' ? await credentialEnv(dir, connectionKeys) : {}) };
          const dbs = [join(dir, `${name}.sqlite`)];
          let s: BenchServer;
          if (c.twin) {
            const twinEnv = await envFor(`${name}-baseline`, hydras[c.hydra], { ...common, ...c.twin.env });
            dbs.push(twinEnv.DATABASE_PATH!);
            // Which of the two servers is built first alternates between the processes.
            const twin = { verifier: c.twin.verifier, env: { PORT: twinEnv.PORT!, DATABASE_PATH: twinEnv.DATABASE_PATH!, ...common, ...c.twin.env }, first: Number(suffix.slice(1)) % 2 === 1 };
            s = await start(name, aa ? twin.verifier : c.verifier, hydras[c.hydra], { ...common, ...(aa ? c.twin.env : (c.env ?? {})) }, undefined, twin);
          } else {
            s = await start(name, `switch:${c.verifier}`, hydras[c.hydra], { ...common, ...(c.env ?? {}) });
          }
          if (scenario === 'credential') for (const db of dbs) await seedCredential(db, BASELINE_SUB, connectionKeys);
          load.set(`${mode}/${scenario}${suffix}`, s);
        }),
    ),
  );
  return load;
}

/** The three memory servers (full run), the flood server and the audit-stall server (not in a quick run). */
async function startOtherServers(settings: Settings, hydras: Hydras, start: StartServer): Promise<Pick<BenchContext, 'memory' | 'flooded' | 'stalled'>> {
  const { quick, auditOnly, credentialOnly, sessionsOnly } = settings;
  if (credentialOnly || (sessionsOnly && !auditOnly)) return {};
  // Memory servers keep answers for the longest allowed time, so only the bound limits the caches.
  const memVerifier = settings.fullMemory ? 'hydra' : 'hydra-small-cache';
  const memEnv = { MCP_STATELESS: 'true', INTROSPECTION_CACHE_SECONDS: '3600', BENCH_CACHE_BOUND: String(settings.tokenCacheBound) };
  const memory =
    quick || auditOnly
      ? undefined
      : {
          jwt: await start('memory-jwt', memVerifier, hydras.jwt, memEnv),
          opaque: await start('memory-opaque', memVerifier, hydras.opaque, memEnv),
          sessions: await start('memory-sessions', 'hydra', hydras.jwt, { MCP_STATELESS: 'false' }),
        };
  // Issue 17's flood: the audit trail on (the default) and the default limits, so nearly every request is refused.
  const flooded = quick && !auditOnly ? undefined : await start('flood', 'hydra', hydras.jwt, { MCP_STATELESS: 'true', AUDIT: 'on', MCP_REQUESTS_PER_MINUTE: UNSET });
  // Issue 26 #10: the audit trail on and the limits at their maxima, so every call is served, taken from its bucket and audited.
  const stalled = quick && !auditOnly ? undefined : await start('audit-stall', 'hydra', hydras.jwt, { MCP_STATELESS: 'true', AUDIT: 'on', ...LIMITS_AT_MAXIMA });
  return { memory, flooded, stalled };
}

/** Both sides of every pair in every mode, each called once to check it answers as whom it should. */
async function buildTargets(settings: Settings, hydras: Hydras, clients: Record<'jwt' | 'opaque', BenchClient>, load: Map<string, BenchServer>): Promise<Map<string, PairSide>> {
  const { aa, composition } = settings;
  const targets = new Map<string, PairSide>();
  for (const mode of MODES) {
    for (const [scenario, suffix] of scenariosOf(settings, mode)
      .filter((s) => s !== 'baseline')
      .flatMap((sc) => processKeys(settings, sc).map((x) => [sc, x] as const))) {
      for (const side of ['scenario', 'baseline'] as const) {
        const key = `${mode}/${scenario}${suffix}${side === 'baseline' ? '/baseline' : ''}`;
        const server = load.get(`${serverModeOf(mode)}/${scenario}${suffix}`)!;
        const c = composition[scenario];
        const url = side === 'baseline' && c.twin ? server.twin!.mcpUrl : server.mcpUrl;
        const which = c.hydra;
        // The switch verifier's baseline side (and, under --aa, both sides) bears BASELINE_TOKEN.
        const baselineToken = !c.twin && (side === 'baseline' || aa);
        // The shared-sessions side is free too: a token as short as the baseline's, so the two requests differ only in their session.
        const token = baselineToken ? BASELINE_TOKEN : c.verifier === 'fixed-sessions' ? SESSIONS_TOKEN : await mintToken(hydras[which].publicUrl, clients[which], url.href);
        // client_credentials: the subject is the client; a fixed-principal server names its fixed person.
        const fixed = baselineToken || (side === 'baseline' || aa ? (c.twin?.verifier ?? 'fixed') === 'fixed' : c.verifier === 'fixed');
        const sub = fixed ? BASELINE_SUB : c.verifier === 'fixed-sessions' ? SESSIONS_SUB : clients[which].clientId;
        const sessionId = mode === 'stateful' ? (await openSession(url, token)).sessionId : undefined;
        if (mode === 'stateful' && !sessionId) throw new Error(`${server.name}: could not open a session`);
        const target: Target = {
          url,
          token,
          sessionId,
          ...(mode === 'stateless-2026' ? { revision: REVISION_2026 } : {}),
          // The twin calls the tool the scenario's server calls (whoami, or its credential variant): only the check differs.
          ...(scenario === 'credential' && !aa && side === 'scenario' ? { tool: whoamiWithCredential.name } : {}),
        };
        await callOnce(target, sub);
        targets.set(key, { target, sub, server });
      }
    }
  }
  return targets;
}
