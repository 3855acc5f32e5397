import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureHydraBinary, ourPageUrls, freeLoopbackPort, type RunningHydra, startHydra } from '../../scripts/hydra.js';
import { ensureKratosBinary, type RunningKratos, startKratos } from '../../scripts/kratos.js';
import { type RunningServer, type StartOptions, startServer } from '../../src/main.js';
import { loadConfig } from '../../src/config/config.js';
import { openDatabase } from '../../src/store/database.js';
import { createTestDatabase } from '../support/postgres.js';
import { addUserWithCli, runUserCli } from '../support/userCli.js';
import { scopedStoreFor } from '../../src/store/scopedStore.js';

export interface TestUser {
  email: string;
  password: string;
  sub: string;
}

export interface Stack {
  hydra: RunningHydra;
  server: RunningServer;
  /** http://127.0.0.1:<port> of our server. */
  baseUrl: string;
  mcpUrl: URL;
  sseUrl: URL;
  /** Hydra's log lines so far (shown when a test fails). */
  hydraLog: string[];
  /** Our server's log lines, when started with captureLogs. */
  logs: string[];
  /** The real Ory Kratos our server signs people in with (identity 'kratos' only). */
  kratos?: RunningKratos;
  /** Kratos's log lines so far (identity 'kratos' only; shown when a test fails). */
  kratosLog: string[];
  /** Stop Hydra and start it again on the same ports and storage (needs hydraStorage 'file'). */
  restartHydra(): Promise<void>;
  /** The two halves of restartHydra, for a test that watches what happens while Hydra is down. */
  stopHydra(): Promise<void>;
  startHydraAgain(): Promise<void>;
  addUser(email: string, password: string): Promise<TestUser>;
  /** The environment our server runs with: a CLI given it works on the same database and Hydra. */
  env: Record<string, string>;
  /** What the long_task tool recorded for `sub`, read straight from the server's database. */
  lastRunOfLongTask(sub: string): Promise<unknown>;
  stop(): Promise<void>;
}



/**
 * The real thing, on loopback: Ory Hydra (built from its Go module, DSN
 * memory) and our server wired to it, with a throw-away database.
 */
export async function startStack(opts: {
  accessTokenStrategy: 'opaque' | 'jwt';
  /** Our server's own database: the embedded SQLite file, or a fresh database on the run's PostgreSQL. */
  database: 'sqlite' | { postgresAdminUrl: string };
  /** Default 0: revocation must be visible at once in tests. */
  introspectionCacheSeconds?: number;
  /** Keep every log line of our server in `stack.logs` (at debug level). */
  captureLogs?: boolean;
  /** Hydra's storage: in memory (default), or a SQLite file that survives restartHydra(). */
  hydraStorage?: 'memory' | 'file';
  /**
   * A test CA's PEM file: our server may fetch client metadata documents from
   * loopback under it (CIMD_TEST_LOOPBACK_CA), and Hydra trusts it for a
   * client's https jwks_uri (SSL_CERT_FILE, which replaces Go's system roots).
   */
  cimdTestCaFile?: string;
  /** More settings for our server, given its base URL (e.g. a provider catalogue whose redirect URI names it) and the Hydra already started. */
  appEnv?: (base: string, dir: string, hydra: RunningHydra) => Promise<Record<string, string>>;
  /** Tools served beside tools/ (StartOptions.extraTools). */
  extraTools?: StartOptions['extraTools'];
  /** Who keeps accounts: our users table (default), or a real Ory Kratos (DSN memory) started here (IDENTITY=kratos). */
  identity?: 'builtin' | 'kratos';
  /** Kratos settings by environment variable (e.g. a short flow lifespan); identity 'kratos' only. */
  kratosEnv?: Record<string, string>;
  /** Hydra settings by environment variable (e.g. its tracing, src/tracing/oryTracing.ts). */
  hydraEnv?: Record<string, string>;
}): Promise<Stack> {
  const appPort = await freeLoopbackPort();
  const base = `http://127.0.0.1:${appPort}`;
  const hydraLog: string[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-e2e-'));
  const binary = await ensureHydraBinary({ log: (l) => process.stderr.write(`[hydra build] ${l}\n`) });
  const hydraOptions = {
    binary,
    dsn: opts.hydraStorage === 'file' ? join(dir, 'hydra.sqlite') : 'memory',
    accessTokenStrategy: opts.accessTokenStrategy,
    ...ourPageUrls(base),
    // private_key_jwt assertions are signed for the token endpoint our metadata names.
    tokenUrl: `${base}/token`,
    ...(opts.cimdTestCaFile ? { caFile: opts.cimdTestCaFile } : {}),
    secretsSystem: randomBytes(24).toString('hex'),
    ...(opts.hydraEnv ? { env: opts.hydraEnv } : {}),
    log: (line: string) => hydraLog.push(line),
  };
  let hydra = await startHydra(hydraOptions);
  const kratosLog: string[] = [];
  const kratos =
    opts.identity === 'kratos'
      ? await startKratos({
          binary: await ensureKratosBinary({ log: (l) => process.stderr.write(`[kratos build] ${l}\n`) }),
          dsn: 'memory',
          // Kratos sends browsers to our /kratos/* pages and back to our /login.
          uiBaseUrl: base,
          log: (line: string) => kratosLog.push(line),
          ...(opts.kratosEnv ? { env: opts.kratosEnv } : {}),
        })
      : undefined;
  const pgDb = opts.database === 'sqlite' ? undefined : await createTestDatabase(opts.database.postgresAdminUrl);
  const env: Record<string, string> = {
    HOST: '127.0.0.1',
    PORT: String(appPort),
    HYDRA_PUBLIC_URL: hydra.publicUrl,
    HYDRA_ADMIN_URL: hydra.adminUrl,
    HYDRA_ISSUER: hydra.issuer,
    DATABASE_PATH: join(dir, 'hydra-mcp.sqlite'),
    // Revocation must be visible at once in these tests; caching is tested on its own.
    INTROSPECTION_CACHE_SECONDS: String(opts.introspectionCacheSeconds ?? 0),
    LOG_LEVEL: opts.captureLogs ? 'debug' : (process.env.E2E_LOG_LEVEL ?? 'silent'),
    ...(pgDb ? { DATABASE_URL: pgDb.url } : {}),
    // Several servers share one test process: a free port each, reported in server.metricsUrl.
    METRICS_PORT: '0',
    ...(opts.cimdTestCaFile ? { CIMD_TEST_LOOPBACK_CA: opts.cimdTestCaFile } : {}),
    ...(kratos ? { IDENTITY: 'kratos', KRATOS_PUBLIC_URL: kratos.publicUrl, KRATOS_ADMIN_URL: kratos.adminUrl } : {}),
    ...(opts.appEnv ? await opts.appEnv(base, dir, hydra) : {}),
  };
  // Same ports, storage and secret: to our server it is the same Hydra, back again.
  const startHydraAgain = async () => {
    hydra = await startHydra({ ...hydraOptions, publicPort: Number(new URL(hydra.publicUrl).port), adminPort: Number(new URL(hydra.adminUrl).port) });
  };
  const logs: string[] = [];
  const server = await startServer(env, {
    ...(opts.captureLogs ? { logSink: (line: string) => logs.push(line) } : {}),
    ...(opts.extraTools ? { extraTools: opts.extraTools } : {}),
  });
  return {
    get hydra() {
      return hydra;
    },
    async restartHydra() {
      await hydra.stop();
      await startHydraAgain();
    },
    stopHydra: () => hydra.stop(),
    startHydraAgain,
    server,
    baseUrl: base,
    mcpUrl: new URL(`${base}/mcp`),
    sseUrl: new URL(`${base}/sse`),
    hydraLog,
    logs,
    ...(kratos ? { kratos } : {}),
    kratosLog,
    addUser: (email, password) => addUserWithCli(env, email, password),
    env,
    async lastRunOfLongTask(sub) {
      const db = await openDatabase(loadConfig(env).database);
      try {
        const row = await scopedStoreFor(db, sub).records('long_task').get('last_run');
        return row;
      } finally {
        await db.destroy();
      }
    },
    async stop() {
      await server.stop();
      await hydra.stop();
      await kratos?.stop();
      await pgDb?.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export { addUserWithCli, runUserCli };
