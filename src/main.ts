import 'dotenv/config';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { fileURLToPath } from 'node:url';
import { buildApp } from './app/app.js';
import { type AppDependencies, jwksUrlOf, resourcesOf } from './app/services.js';
import { Metrics } from './metrics/metrics.js';
import { certificateExpiry } from './metrics/certificateExpiry.js';
import type { RemoveAccount } from './account/accountRemoval.js';
import { RemovedSubjects } from './account/removedSubjects.js';
import { createHydra, type HydraAdmin } from './hydra/index.js';
import { MachineClients } from './auth/machineClients.js';
import { REGISTRABLE_SCOPES } from './auth/scopes.js';
import { type AccessTokenVerifier, HydraTokenVerifier } from './auth/tokenVerifier.js';
import { type Config, loadConfig } from './config/config.js';
import { createLogger, type Logger } from './log/logger.js';
import { startTracing } from './tracing/startTracing.js';
import type { IdentitySweep } from './account/identitySweep.js';
import { type Db, openDatabase } from './store/database.js';
import { PostgresSessionBus } from './mcp/postgresSessionBus.js';
import { startSqliteCheckpointer } from './store/sqliteCheckpointer.js';
import { startAudit } from './audit/startAudit.js';
import { removedSubjectsStore } from './store/removedSubjectsStore.js';
import { kratosSubjectsStore } from './store/kratosSubjectsStore.js';
import { checkTool, loadTools } from './tools/registry.js';
import type { ToolDefinition } from './tools/contract.js';

export interface RunningServer {
  url: string;
  /** Where Prometheus scrapes, when METRICS_PORT is not "off". */
  metricsUrl?: string;
  /**
   * Graceful stop: refuse new connections, let requests and tool calls in
   * flight on every transport finish (up to SHUTDOWN_TIMEOUT_SECONDS), then
   * close sessions, event streams and remaining connections, write the audit
   * records queued, and close the database.
   */
  stop(): Promise<void>;
  /**
   * Before a stop behind a load balancer (SIGTERM): /readyz answers 503 and
   * every answer closes its connection, while requests are still served;
   * resolves once no request has come for `quietMs` (the balancer has taken
   * this replica out), or after `maxMs`.
   */
  leaveRotation(quietMs: number, maxMs: number): Promise<void>;
  /** Remove an account in this process: refused and its sessions closed here at once, other replicas within seconds (src/account/). */
  removeAccount: RemoveAccount;
  /** IDENTITY=kratos: the identity sweep (it also runs every KRATOS_SWEEP_SECONDS on its own). */
  identitySweep?: IdentitySweep;
}

/** How long calls still running when their sessions were closed at the deadline get to end before the database closes. */
const CANCELLED_CALLS_GRACE_MS = 5000;

// tools/ sits beside src/ both in the repo and in the compiled dist/.
const TOOLS_DIR = fileURLToPath(new URL('../tools/', import.meta.url));
const VERSION = '0.1.0';

/** What a token verifier is built from. */
export interface VerifierParts {
  config: Config;
  hydraAdmin: HydraAdmin;
  log: Logger;
  metrics: Metrics;
  /** Removed accounts, whose tokens must be refused. */
  removedSubjects: RemovedSubjects;
}

export interface StartOptions {
  /** Where log lines go (default: stderr). */
  logSink?: (line: string) => void;
  /**
   * Builds the token verifier (default: hydraTokenVerifier). A parameter of
   * this function, not of the environment: only code that composes its own
   * server (the benchmark's baseline and comparison verifiers) can swap it.
   */
  verifier?: (parts: VerifierParts) => AccessTokenVerifier;
  /**
   * Tools served beside those in tools/ (checked the same way). A parameter,
   * not a setting: the end-to-end tests add a tool that calls their upstream API.
   */
  extraTools?: readonly ToolDefinition[];
  /**
   * The 2025-era sessions' options, from the opened database (default: the
   * shared table, the default interval and limits). A parameter, not a
   * setting: only the benchmark swaps the store (its in-memory baseline) and
   * times rebuilds.
   */
  sharedSessions?: (db: Db) => AppDependencies['sharedSessions'];
}

/**
 * JWTs checked against Hydra's JWKS, other tokens introspected, both cached within bounds.
 * `cacheSize` exists for the benchmark's quick memory run (a smaller bound to cross).
 */
export function hydraTokenVerifier({ config, hydraAdmin, log, metrics, removedSubjects }: VerifierParts, tuning: { cacheSize?: number } = {}): AccessTokenVerifier {
  const verifier = new HydraTokenVerifier({
    issuer: config.hydra.issuer,
    jwksUrl: jwksUrlOf(config),
    resources: resourcesOf(config),
    hydraAdmin,
    log,
    introspectionCacheSeconds: config.introspectionCacheSeconds,
    alwaysIntrospect: config.alwaysIntrospect,
    onVerification: (kind, outcome, cached, seconds) => metrics.verification(kind, outcome, cached, seconds),
    removedSubjects,
    // Client-credentials tokens: machines only when an operator made the client (npm run client -- add --machine).
    machineClients: new MachineClients({ hydraAdmin, log }),
    ...(tuning.cacheSize ? { introspectionCacheSize: tuning.cacheSize } : {}),
  });
  metrics.tokenCacheGauge(() => verifier.cacheSizes());
  return verifier;
}

/** Start the server from an environment; the composition root. */
export async function startServer(env: Record<string, string | undefined>, options: StartOptions = {}): Promise<RunningServer> {
  const config = loadConfig(env);
  const log = createLogger(config.logLevel, options.logSink);
  if (config.sessionSecretGenerated) {
    log.warn('SESSION_SECRET is not set: using a random one for this process; set it when running several replicas');
  }
  if (config.trustProxy === true) {
    log.warn('TRUST_PROXY=true believes every X-Forwarded-For hop: anyone who reaches this port directly can pick their address for the sign-in and endpoint limits; prefer a hop count or the proxy\'s addresses');
  }
  const tools = [...(await loadTools(TOOLS_DIR, REGISTRABLE_SCOPES)), ...(options.extraTools ?? []).map((t) => checkTool(t, `extraTools/${t.name}`, REGISTRABLE_SCOPES))];
  // Before the database: its failed queries count from the first migration on.
  const metrics = new Metrics();
  const db = await openDatabase(config.database, { onError: () => metrics.databaseError(config.database.kind) });
  // The certificate people's clients see, for the expiry alert (read at scrape time, at most hourly).
  if (config.publicBaseUrl.protocol === 'https:') metrics.certificateExpiryGauge(certificateExpiry({ url: config.publicBaseUrl, log }));
  // Several replicas share PostgreSQL: a session's client messages reach the replica running the call over LISTEN/NOTIFY.
  const sessionBus = config.database.kind === 'postgres' && !config.statelessHttp ? await PostgresSessionBus.start(config.database.url, log) : undefined;
  // SQLite: WAL checkpoints (a copy into the file and an fsync) on a thread of their own, never inside a request's write.
  const checkpoints = startSqliteCheckpointer(db);
  // One transport for both of Hydra's ports: one timeout, every call timed in hydra_request_duration_seconds.
  const hydra = createHydra({ adminUrl: config.hydra.adminUrl, publicUrl: config.hydra.publicUrl, onCall: (call, s, ok) => metrics.hydraCall(call, s, ok) });
  const hydraAdmin = hydra.admin;
  // Read before the first request is served, then every few seconds (another replica or the CLI may remove someone).
  const removedSubjects = new RemovedSubjects({
    store: removedSubjectsStore(db),
    // IDENTITY=kratos: identities deactivated in Kratos are refused too (src/account/accountSuspension.ts).
    ...(config.identity.kind === 'kratos' ? { suspensions: kratosSubjectsStore(db) } : {}),
    retentionSeconds: config.removedSubjectRetentionSeconds,
    log,
  });
  await removedSubjects.start();
  const verifier = (options.verifier ?? hydraTokenVerifier)({ config, hydraAdmin, log, metrics, removedSubjects });
  // Batched writes off the request path, and the retention sweep (both stopped below, the queue flushed).
  const audit = startAudit({ settings: config.audit, db, hydraAdmin, log, metrics });
  // Set by leaveRotation (SIGTERM): /readyz answers 503 from then on.
  let leaving = false;
  const { app, drain, inFlight, closeSessions, removeAccount, identitySweep } = buildApp({ config, stopping: () => leaving, db, hydraAdmin, hydraPublic: hydra.public, tools, log, version: VERSION, metrics, verifier, removedSubjects, audit: audit.audit, sharedSessions: options.sharedSessions?.(db), ...(sessionBus ? { sessionBus } : {}) });
  const metricsServer = config.metrics ? await serveMetrics(metrics, config.metrics.host, config.metrics.port) : undefined;
  // TLS_CERT_FILE + TLS_KEY_FILE: https here; otherwise plain http, for loopback or behind a TLS-terminating proxy.
  // Once a stop is announced (leaveRotation), every answer closes its connection, so no kept-alive
  // connection is reused and then closed under a request; the probes' own requests do not count as traffic.
  let lastRequestAt = 0;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (leaving) {
      res.setHeader('Connection', 'close');
      if (!/^\/(healthz|readyz)(\?|$)/.test(req.url ?? '')) lastRequestAt = Date.now();
    }
    app(req, res);
  };
  const server = config.tls ? createHttpsServer({ cert: config.tls.cert, key: config.tls.key }, handler) : createServer(handler);
  const scheme = config.tls ? 'https' : 'http';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  log.info('listening', { url: `${scheme}://${config.host}:${port}`, mcp: config.resourceUrl.href, tools: tools.map((t) => t.name) });
  let stopped: Promise<void> | undefined;
  const stop = async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // Requests and tool calls on every transport: a legacy SSE call runs after its POST was answered, and a
    // call whose client went away runs on; each may still write its own rows and its audit record.
    if (inFlight() > 0) log.info('stopping: waiting for requests and tool calls in flight', { in_flight: inFlight(), deadline_seconds: config.shutdownTimeoutSeconds });
    const finished = await drain(config.shutdownTimeoutSeconds * 1000);
    if (!finished) log.warn('shutdown deadline passed with requests in flight; closing them');
    // Closing a session aborts its calls' signals.
    await closeSessions();
    server.closeAllConnections();
    // No tool runs on a closed database: calls cut off by the deadline (or begun on a kept connection since) get a moment to end.
    if (!(await drain(Math.min(CANCELLED_CALLS_GRACE_MS, config.shutdownTimeoutSeconds * 1000)))) {
      log.warn('tool calls still running after their sessions closed; closing the database under them', { in_flight: inFlight() });
    }
    removedSubjects.stop();
    await sessionBus?.close();
    // After the last call: every audit record queued so far reaches the database before it closes.
    await audit.stop();
    await closed;
    await new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
    await checkpoints?.stop();
    await db.destroy();
    log.info('stopped');
  };
  return {
    url: `${scheme}://${config.host}:${port}`,
    metricsUrl: metricsServer ? `http://${config.metrics!.host}:${(metricsServer.address() as { port: number }).port}/metrics` : undefined,
    stop: () => (stopped ??= stop()),
    async leaveRotation(quietMs, maxMs) {
      leaving = true;
      lastRequestAt = Date.now();
      const until = Date.now() + maxMs;
      while (Date.now() < until && Date.now() - lastRequestAt < quietMs) await new Promise((r) => setTimeout(r, 50));
      log.info('out of rotation', { quiet_ms: Date.now() - lastRequestAt });
    },
    removeAccount,
    ...(identitySweep ? { identitySweep } : {}),
  };
}

/** Prometheus text format on its own listener, away from the public port. */
async function serveMetrics(metrics: Metrics, host: string, port: number) {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return server;
}

// Run directly (`node dist/src/main.js` or `tsx src/main.ts`): start and stop on signals.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // Tracing first (OTEL_* variables; off and never loaded without them), so the server's first spans are recorded.
  startTracing(process.env, { log: createLogger('warn') })
    .then(async (tracing) => ({ tracing, running: await startServer(process.env) }))
    .then(
      ({ tracing, running }) => {
        let stopping = false;
        for (const signal of ['SIGINT', 'SIGTERM'] as const) {
          process.on(signal, () => {
            // A second signal means "now": exit without waiting.
            if (stopping) process.exit(1);
            stopping = true;
            // Readiness false first, serving on until the balancer stops sending (a second of quiet, at most 5 s), then close.
            void running
              .leaveRotation(1000, 5000)
              .then(() => running.stop())
              // The last spans (the stop itself) reach the collector before the exit.
              .then(() => tracing.shutdown())
              .then(() => process.exit(0));
          });
        }
      },
      (error: unknown) => {
        console.error(error instanceof Error ? error.message : error);
        process.exit(1);
      },
    );
}
