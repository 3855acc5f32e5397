import cors from 'cors';
import express, { type ErrorRequestHandler } from 'express';
import { createAccountRemoval, type RemoveAccount } from '../account/accountRemoval.js';
import type { RemovedSubjects } from '../account/removedSubjects.js';
import { authServerRouter } from '../auth/authServerRouter.js';
import { bearerAuth } from '../auth/bearerAuth.js';
import { createHydra, type HydraAdmin, type HydraPublic, hydraPublicUrls } from '../hydra/index.js';
import { createKratos } from '../kratos/index.js';
import { ClientMetadataDocuments } from '../auth/cimd/clientMetadataDocument.js';
import { HydraClientsStore } from '../auth/hydraClients.js';
import { HydraProvider } from '../auth/hydraProvider.js';
import { protectedResourceMetadataUrl } from '../auth/prmUrl.js';
import { ResourceSet } from '../auth/resource.js';
import type { AccessTokenVerifier } from '../auth/tokenVerifier.js';
import type { Config } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import { createAccountRouter } from '../login/accountRouter.js';
import { Signer } from '../login/cookies.js';
import { createLoginRouter } from '../login/loginRouter.js';
import { LoginThrottle } from '../login/throttle.js';
import { createUserStore } from '../login/userStore.js';
import { sharedRateLimitStores } from '../limits/sharedRateLimitStore.js';
import { createMcpServer } from '../mcp/mcpServer.js';
import { createConnections, toolsWithProviders } from '../connections/index.js';
import { type ConnectionPromptOptions, requestStateCodec } from '../mcp/connectionPrompt.js';
import { jsonRpcError } from '../mcp/jsonRpcError.js';
import { allowedHosts, hostGuard, originGuard, originPolicy } from './hostGuard.js';
import { InFlight } from './inFlight.js';
import type { Metrics } from './metrics.js';
import { requestLog } from './requestLog.js';
import { readinessHandler } from './readiness.js';
import { SessionRegistry } from '../mcp/sessions.js';
import { type SseSession, sseRouter } from '../mcp/sse.js';
import { requireToolScopes } from '../mcp/stepUp.js';
import { type HttpSession, streamableHttpRouter } from '../mcp/streamableHttp.js';
import type { Db } from '../store/database.js';
import { exportSubjectData } from '../store/export.js';
import { removedSubjectsStore } from '../store/removedSubjectsStore.js';
import { rateCountersStore } from '../store/rateCounters.js';
import type { ToolDefinition } from '../tools/contract.js';
import { CursorKey } from '../tools/cursor.js';

export interface AppDependencies {
  config: Config;
  db: Db;
  hydraAdmin: HydraAdmin;
  /** Hydra's public API (token/revoke forwarding, registration, health); main.ts builds it with hydraAdmin over one transport. Default: built from config. */
  hydraPublic?: HydraPublic;
  tools: readonly ToolDefinition[];
  log: Logger;
  /** Reported in MCP serverInfo. */
  version: string;
  /** Where request, token, Hydra, session and tool metrics go. */
  metrics: Metrics;
  /** Checks bearer tokens on /mcp, /sse and /messages (main.ts builds the Hydra one). */
  verifier: AccessTokenVerifier;
  /** Removed accounts: the same list the verifier refuses; a removal in this process adds to it at once. */
  removedSubjects: RemovedSubjects;
}

export interface App {
  app: express.Express;
  /** Waits until no request is being served, or the deadline passes (false). */
  drain(deadlineMs: number): Promise<boolean>;
  /** Ends every live MCP session and its event stream (for shutdown). */
  closeSessions(): Promise<void>;
  /** Remove an account in this process: its tokens are refused and its open sessions closed at once (src/account/). */
  removeAccount: RemoveAccount;
}

const RESOURCE_NAME = 'hydra-mcp';

/** Build the HTTP application from explicit dependencies; nothing here reads the environment. */
export function buildApp(deps: AppDependencies): App {
  const { config, db, hydraAdmin, log, metrics, verifier } = deps;
  const connections = createConnections({ settings: config.connections, db, dialect: config.database.kind, publicBaseUrl: config.publicBaseUrl, secret: config.sessionSecret, log, onCredentialUse: (p, o) => metrics.credentialUse(p, o) });
  const { tools, skipped } = toolsWithProviders(deps.tools, connections && new Set(connections.providers.keys()));
  for (const t of skipped) log.warn('tool not served: it needs a connected account and CONNECTIONS_FILE is not set', { tool: t.name, credentials: t.credentials });
  const resources = resourcesOf(config);
  const hydraPublic = deps.hydraPublic ?? createHydra({ adminUrl: config.hydra.adminUrl, publicUrl: config.hydra.publicUrl }).public;
  const clientMetadataDocuments = new ClientMetadataDocuments({ testLoopbackCa: config.cimd.testLoopbackCa });
  const clientsStore = new HydraClientsStore({ hydraPublic, hydraAdmin, resources, log, clientMetadataDocuments });
  const hydraBrowserUrl = new URL(config.hydra.issuer);
  const provider = new HydraProvider({
    hydraPublic,
    hydraBrowserUrl,
    clientsStore,
    verifier,
    resources,
    log,
  });
  // Each endpoint's 401 names its own PRM (RFC 9728 §5.1); the verifier
  // accepts a token whose audience is any of our URLs: one resource server.
  const toolScopes = new Map(tools.map((t) => [t.name, t.scopes]));
  const toolCallers = new Map(tools.map((t) => [t.name, t.callers]));
  const guardsFor = (resource: URL) => {
    const resourceMetadataUrl = protectedResourceMetadataUrl(resource);
    return {
      authenticate: bearerAuth({ verifier, resourceMetadataUrl, log }),
      authorizeCalls: requireToolScopes({ toolScopes, toolCallers, resourceMetadataUrl }),
    };
  };
  const isActiveNow = (token: string) => verifier.isActiveNow(token);
  const onToolCall = metrics.toolCall.bind(metrics);
  // Page cursors are signed with a key derived from SESSION_SECRET (HKDF, own purpose label): every replica accepts them.
  const cursorKey = CursorKey.fromSecret(config.sessionSecret);
  const connectionPrompt: ConnectionPromptOptions | undefined = connections && {
    links: connections.links,
    isConnected: (sub, provider) => connections.credentials.isConnected(sub, provider),
    displayName: (provider) => connections.flow.displayName(provider),
    codec: requestStateCodec(config.sessionSecret, connections.waitMs),
    waitMs: connections.waitMs,
    log,
  };
  const createServer = () =>
    createMcpServer({
      tools,
      db,
      cursorKey,
      log,
      isActiveNow,
      onToolCall,
      name: RESOURCE_NAME,
      version: deps.version,
      ...(connections ? { credentials: connections.credentials, connectionPrompt } : {}),
    });
  const httpSessions = new SessionRegistry<HttpSession>();
  const sseSessions = new SessionRegistry<SseSession>();
  metrics.sessionsGauge(() => ({ 'streamable-http': httpSessions.size, sse: sseSessions.size }));

  const inFlight = new InFlight();
  const app = express();
  app.disable('x-powered-by');
  app.use(inFlight.middleware);
  app.use(requestLog(log));
  app.use(metrics.middleware);
  app.use(hostGuard(allowedHosts(config.publicBaseUrl, config.allowedHosts)));
  // Liveness: the process answers. Readiness: it can serve (database, Hydra).
  app.get('/healthz', (_req, res) => res.json({ status: 'ok' }));
  app.get(
    '/readyz',
    readinessHandler({
      db,
      dialect: config.database.kind,
      hydra: hydraPublic,
    }),
  );
  // Counters in the database every replica shares: the endpoint limits and the sign-in throttle hold across replicas.
  const rateCounters = rateCountersStore(db);
  app.use(
    authServerRouter({
      provider,
      publicBaseUrl: config.publicBaseUrl,
      resources,
      resourceName: RESOURCE_NAME,
      rateLimits: { store: sharedRateLimitStores(rateCounters) },
      log,
    }),
  );
  const users = createUserStore(db);
  // One removal path for the CLI's process and this one; here it also ends the person's live sessions at once.
  const removeAccount = createAccountRemoval({
    db,
    users,
    hydra: hydraAdmin,
    removed: removedSubjectsStore(db),
    log,
    ...(connections ? { revokeConnections: (sub: string) => connections.flow.revokeAll(sub) } : {}),
    onRecorded: async (sub) => {
      deps.removedSubjects.add(sub);
      await Promise.all([httpSessions.closeOwnedBy(sub), sseSessions.closeOwnedBy(sub)]);
    },
  });
  const signer = new Signer(config.sessionSecret);
  const secureCookies = config.publicBaseUrl.protocol === 'https:';
  const throttle = new LoginThrottle({ counters: rateCounters });
  app.use(
    createLoginRouter({
      hydra: hydraAdmin,
      users,
      resources,
      signer,
      secureCookies,
      trustedClientIds: config.trustedClientIds,
      throttle,
      log,
      // IDENTITY=kratos: Kratos signs people in; our users table is not asked.
      ...(config.identity.kind === 'kratos'
        ? {
            kratos: {
              client: createKratos({ publicUrl: config.identity.publicUrl, adminUrl: config.identity.adminUrl }),
              publicUrl: config.identity.publicUrl,
              publicBaseUrl: config.publicBaseUrl,
            },
          }
        : {}),
    }),
  );
  app.use(
    createAccountRouter({
      hydra: hydraAdmin,
      users,
      signer,
      secureCookies,
      throttle,
      exportData: (sub) => exportSubjectData(db, sub),
      // "Delete my account" takes the same path as the operator's `npm run user -- remove`.
      deleteAccount: async (sub) => void (await removeAccount({ sub })),
      log,
      ...(connections ? { connections: { flow: connections.flow, links: connections.links } } : {}),
    }),
  );
  // Browser clients call the MCP endpoints cross-origin with a bearer token
  // (no cookies), and must be able to read the 401 challenge and session id.
  app.use(
    ['/mcp', '/sse', '/messages'],
    cors({
      origin: '*',
      // Mcp-Method / Mcp-Name: required on every MCP 2026-07-28 request.
      allowedHeaders: ['Authorization', 'Content-Type', 'Mcp-Session-Id', 'MCP-Protocol-Version', 'Last-Event-ID', 'Mcp-Method', 'Mcp-Name'],
      exposedHeaders: ['WWW-Authenticate', 'Mcp-Session-Id', 'MCP-Protocol-Version'],
    }),
  );
  app.use(['/mcp', '/sse', '/messages'], originGuard(originPolicy(config.publicBaseUrl, config.allowedOrigins)));
  app.use(
    streamableHttpRouter({ createServer, ...guardsFor(config.resourceUrl), sessions: httpSessions, log, stateless: config.statelessHttp }),
  );
  // HTTP+SSE is deprecated by MCP 2026-07-28; LEGACY_SSE=off stops serving it.
  if (config.legacySse) app.use(sseRouter({ createServer, ...guardsFor(config.sseUrl), sessions: sseSessions, log }));
  app.use(bodyErrors(log));

  return {
    app,
    drain: (deadlineMs) => inFlight.drained(deadlineMs),
    closeSessions: async () => {
      await Promise.all([httpSessions.closeAll(), sseSessions.closeAll()]);
    },
    removeAccount,
  };
}

/** The server is one resource with two URLs: /mcp and /sse (each has its own PRM). */
export function resourcesOf(config: Config): ResourceSet {
  return new ResourceSet([config.resourceUrl, config.sseUrl]);
}

export function jwksUrlOf(config: Config): URL {
  return hydraPublicUrls(config.hydra.publicUrl).jwks;
}

/** Body parser failures become specific JSON-RPC errors instead of HTML pages. */
function bodyErrors(log: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) return next(err);
    const type = (err as { type?: string }).type;
    if (type === 'entity.too.large') return jsonRpcError(res, 413, -32600, 'Request body too large');
    if (type === 'entity.parse.failed') return jsonRpcError(res, 400, -32700, 'Parse error: body is not valid JSON');
    log.error('unhandled error', { path: req.path, error: err });
    jsonRpcError(res, 500, -32603, 'Internal error');
  };
}
