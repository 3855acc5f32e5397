import cors from 'cors';
import express, { type ErrorRequestHandler } from 'express';
import { createAccountRemoval, type RemoveAccount } from '../account/accountRemoval.js';
import type { RemovedSubjects } from '../account/removedSubjects.js';
import { authServerRouter } from '../auth/authServerRouter.js';
import { bearerAuth } from '../auth/bearerAuth.js';
import { createHydra, type HydraAdmin, type HydraPublic, hydraPublicUrls } from '../hydra/index.js';
import { createKratos } from '../kratos/index.js';
import { findIdentityById, kratosAccountDirectory } from '../account/kratosDirectory.js';
import { createIdentitySweep, type IdentitySweep } from '../account/identitySweep.js';
import { createAccountSuspension } from '../account/accountSuspension.js';
import { kratosSubjectsStore } from '../store/kratosSubjectsStore.js';
import { CimdClients } from '../auth/cimd/cimdClients.js';
import { clientAssertionVerifier } from '../auth/cimd/clientAssertion.js';
import { cimdTokenAuth } from '../auth/cimd/cimdTokenAuth.js';
import { ClientMetadataDocuments } from '../auth/cimd/clientMetadataDocument.js';
import { cimdMirrorsStore } from '../store/cimdMirrorsStore.js';
import { HydraClientsStore } from '../auth/hydraClients.js';
import { HydraProvider } from '../auth/hydraProvider.js';
import { protectedResourceMetadataUrl } from '../auth/prmUrl.js';
import { ResourceSet } from '../auth/resource.js';
import type { AccessTokenVerifier } from '../auth/tokenVerifier.js';
import type { Config } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import { createAccountRouter } from '../account/accountRouter.js';
import { Signer } from '../web/cookies.js';
import { createLoginRouter } from '../signin/loginRouter.js';
import { LoginThrottle } from '../limits/throttle.js';
import { createUserStore } from '../account/userStore.js';
import { endpointRateLimit } from '../limits/endpointRateLimits.js';
import { sharedRateLimitStores } from '../limits/sharedRateLimitStore.js';
import { createMcpRateLimit } from '../limits/mcpRateLimit.js';
import { createMcpServer } from '../mcp/mcpServer.js';
import { createConnections, toolsWithProviders } from '../connections/index.js';
import { type ConnectionPromptOptions, requestStateCodec, waiterSlots } from '../mcp/connectionPrompt.js';
import { jsonRpcError } from '../mcp/jsonRpcError.js';
import { allowedHosts, hostGuard, originGuard, originPolicy } from './hostGuard.js';
import { InFlight } from './inFlight.js';
import type { Metrics } from '../metrics/metrics.js';
import { requestLog } from './requestLog.js';
import { strictTransportSecurity } from './securityHeaders.js';
import { readinessHandler } from './readiness.js';
import { SessionRegistry } from '../mcp/sessions.js';
import { type SseSession, sseRouter } from '../mcp/sse.js';
import { requireToolScopes } from '../mcp/stepUp.js';
import { type HttpSession, streamableHttpRouter } from '../mcp/streamableHttp.js';
import type { Db } from '../store/database.js';
import { exportSubjectData } from '../store/export.js';
import { singleUseIds } from '../store/singleUseIds.js';
import { removedSubjectsStore } from '../store/removedSubjectsStore.js';
import { rateCountersStore, tokenBucketsStore } from '../store/rateCounters.js';
import type { ToolDefinition } from '../tools/contract.js';
import { CursorKey } from '../tools/cursor.js';
import { Audit } from '../audit/audit.js';
import { auditCallGuard } from '../audit/callGuard.js';
import { auditStore } from '../store/auditStore.js';

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
  /** Removed and suspended accounts: the same list the verifier refuses; a removal or suspension in this process applies at once. */
  removedSubjects: RemovedSubjects;
  /** The audit trail (src/audit/; main.ts builds its writer and stops it). Default: off. */
  audit?: Audit;
}

export interface App {
  app: express.Express;
  /** Waits until no request and no tool call is in flight on any transport, or the deadline passes (false). */
  drain(deadlineMs: number): Promise<boolean>;
  /** Requests and tool calls in flight now. */
  inFlight(): number;
  /** Ends every live MCP session and its event stream, and the background sweeps (for shutdown). */
  closeSessions(): Promise<void>;
  /** IDENTITY=kratos: the sweep that ends the access of identities deleted in Kratos (tests run it at will). */
  identitySweep?: IdentitySweep;
  /** Remove an account in this process: its tokens are refused and its open sessions closed at once (src/account/). */
  removeAccount: RemoveAccount;
}

const RESOURCE_NAME = 'hydra-mcp';
/** How often unused client metadata document mirrors are looked for (each replica; the work is shared through the table). */
const CIMD_SWEEP_EVERY_MS = 10 * 60_000;

/** Build the HTTP application from explicit dependencies; nothing here reads the environment. */
export function buildApp(deps: AppDependencies): App {
  const { config, db, hydraAdmin, log, metrics, verifier } = deps;
  const audit = deps.audit ?? Audit.off();
  const connections = createConnections({
    settings: config.connections,
    db,
    dialect: config.database.kind,
    publicBaseUrl: config.publicBaseUrl,
    secret: config.sessionSecret,
    log,
    onCredentialUse: (p, o, sub, requestId) => {
      metrics.credentialUse(p, o);
      audit.credentialUsed(p, o, sub, requestId);
    },
  });
  const { tools, skipped } = toolsWithProviders(deps.tools, connections && new Set(connections.providers.keys()));
  for (const t of skipped) log.warn('tool not served: it needs a connected account and CONNECTIONS_FILE is not set', { tool: t.name, credentials: t.credentials });
  const resources = resourcesOf(config);
  const hydraPublic = deps.hydraPublic ?? createHydra({ adminUrl: config.hydra.adminUrl, publicUrl: config.hydra.publicUrl }).public;
  const documents = new ClientMetadataDocuments({ testLoopbackCa: config.cimd.testLoopbackCa });
  const cimd = new CimdClients({ documents, hydraAdmin, resources, log, secret: config.sessionSecret, registry: cimdMirrorsStore(db) });
  const cimdSweep = cimd.startSweeping(CIMD_SWEEP_EVERY_MS, config.cimd.mirrorIdleDays * 86_400_000);
  const clientsStore = new HydraClientsStore({ hydraAdmin, resources, log, cimd });
  const hydraBrowserUrl = new URL(config.hydra.issuer);
  const provider = new HydraProvider({
    hydraPublic,
    hydraBrowserUrl,
    clientsStore,
    verifier,
    resources,
    log,
    forHydra: cimdTokenAuth({
      cimd,
      documents,
      verifyAssertion: clientAssertionVerifier({
        // RFC 7523 §3: the token endpoint, or the authorization server's issuer identifier (RFC 7523bis).
        audiences: [new URL('/token', config.publicBaseUrl).href, config.publicBaseUrl.href, config.publicBaseUrl.href.replace(/\/$/, '')],
        replays: singleUseIds(db),
        keysAt: (url, opts) => documents.keysAt(url, opts),
      }),
    }),
  });
  // Each endpoint's 401 names its own PRM (RFC 9728 §5.1); the verifier
  // accepts a token whose audience is any of our URLs: one resource server.
  const toolScopes = new Map(tools.map((t) => [t.name, t.scopes]));
  const toolCallers = new Map(tools.map((t) => [t.name, t.callers]));
  const toolsByName = new Map(tools.map((t) => [t.name, t]));
  const guardsFor = (resource: URL, transport: 'streamable-http' | 'sse') => {
    const resourceMetadataUrl = protectedResourceMetadataUrl(resource);
    return {
      authenticate: bearerAuth({ verifier, resourceMetadataUrl, log }),
      // Every tools/call leaves an audit record, whichever layer decides its outcome.
      authorizeCalls: auditCallGuard(requireToolScopes({ toolScopes, toolCallers, resourceMetadataUrl }), { audit, tools: toolsByName, transport }),
    };
  };
  const isActiveNow = (token: string) => verifier.isActiveNow(token);
  const onToolCall: NonNullable<Parameters<typeof createMcpServer>[0]['onToolCall']> = (tool, outcome, call) => {
    metrics.toolCall(tool, outcome);
    audit.toolOutcome(tool, outcome, call?.principal, call?.durationMs, call?.context);
  };
  // Page cursors are signed with a key derived from SESSION_SECRET (HKDF, own purpose label): every replica accepts them.
  const cursorKey = CursorKey.fromSecret(config.sessionSecret);
  const connectionPrompt: ConnectionPromptOptions | undefined = connections && {
    links: connections.links,
    isConnected: (sub, provider) => connections.credentials.isConnected(sub, provider),
    displayName: (provider) => connections.flow.displayName(provider),
    codec: requestStateCodec(config.sessionSecret, connections.waitMs),
    // A requestState is single-use on every replica (shared table); each replica bounds a person's waiting calls.
    useOnce: singleUseIds(db).use,
    waiters: waiterSlots(),
    waitMs: connections.waitMs,
    log,
  };
  // Before createServer: every tool call counts in flight until it ends (a call runs on after its client goes away).
  const inFlight = new InFlight();
  const createServer = () =>
    createMcpServer({
      track: (call) => inFlight.track(call),
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

  const app = express();
  app.disable('x-powered-by');
  // Behind a TLS-terminating proxy (TRUST_PROXY): req.ip (sign-in throttle, endpoint limits) and req.protocol come from its X-Forwarded-* headers.
  app.set('trust proxy', config.trustProxy);
  app.use(strictTransportSecurity(config.publicBaseUrl));
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
      limiter: (endpoint) => endpointRateLimit(endpoint, { store: sharedRateLimitStores(rateCounters) }),
      log,
      onClientRegistered: (c) => audit.account({ kind: 'client_registered', outcome: 'ok', clientId: c.client_id, ...(c.client_name ? { clientName: c.client_name } : {}) }),
    }),
  );
  const users = createUserStore(db);
  // IDENTITY=kratos: accounts are Kratos identities (found and deleted there), people sign in through its flows.
  const kratos = config.identity.kind === 'kratos' ? createKratos({ publicUrl: config.identity.publicUrl, adminUrl: config.identity.adminUrl }) : undefined;
  // One removal path for the CLI's process and this one; here it also ends the person's live sessions at once.
  const removeAccount = createAccountRemoval({
    db,
    users: kratos ? kratosAccountDirectory(kratos.admin) : users,
    hydra: hydraAdmin,
    removed: removedSubjectsStore(db),
    log,
    ...(connections ? { revokeConnections: (sub: string) => connections.flow.revokeAll(sub) } : {}),
    onRecorded: async (sub) => {
      deps.removedSubjects.add(sub);
      await Promise.all([httpSessions.closeOwnedBy(sub), sseSessions.closeOwnedBy(sub)]);
    },
  });
  const kratosSubjects = kratosSubjectsStore(db);
  // An identity deleted in Kratos loses its access and data here too; one deactivated, its access (Kratos tells no one: we ask).
  const identitySweep =
    kratos && config.identity.kind === 'kratos'
      ? createIdentitySweep({
          subjects: kratosSubjects,
          stateOf: async (sub) => {
            const identity = await findIdentityById(kratos.admin, sub);
            return !identity ? 'gone' : identity.state === 'inactive' ? 'inactive' : 'active';
          },
          hasAnyIdentity: async () => (await kratos.admin.listIdentities({ pageSize: 1 })).identities.length > 0,
          removeAccount,
          suspension: createAccountSuspension({
            subjects: kratosSubjects,
            hydra: hydraAdmin,
            endIdentitySessions: (sub) => kratos.admin.revokeSessions(sub),
            log,
            onSuspended: async (sub) => {
              deps.removedSubjects.suspend(sub);
              await Promise.all([httpSessions.closeOwnedBy(sub), sseSessions.closeOwnedBy(sub)]);
            },
            onReactivated: (sub, at) => deps.removedSubjects.reactivate(sub, at),
          }),
          log,
          everyMs: config.identity.sweepSeconds * 1000,
        })
      : undefined;
  identitySweep?.start();
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
      checkClient: (request) => cimd.checkAuthorization(request.client, request.request_url),
      ...(audit.enabled ? { audit: (e) => audit.account(e) } : {}),
      // IDENTITY=kratos: Kratos signs people in; our users table is not asked.
      ...(kratos && config.identity.kind === 'kratos'
        ? {
            kratos: {
              client: kratos,
              publicUrl: config.identity.publicUrl,
              publicBaseUrl: config.publicBaseUrl,
              onSignedIn: (sub: string) => kratosSubjects.record(sub, new Date()),
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
      // Activity pages: the person's own records, cursors signed with the tools' cursor key under their own label.
      ...(audit.enabled ? { audit: { record: (e) => audit.account(e), activity: auditStore(db), cursorKey } } : {}),
      ...(connections ? { connections: { flow: connections.flow, links: connections.links } } : {}),
      ...(kratos ? { kratos: { client: kratos, publicBaseUrl: config.publicBaseUrl } } : {}),
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
  // Fair use (MCP_REQUESTS_PER_MINUTE; off: none): token buckets in the shared rate_counters table, so they hold across replicas.
  const fairUse = config.fairUse && createMcpRateLimit({ buckets: tokenBucketsStore(db), ...config.fairUse, log, onCounted: (scope, transport) => metrics.rateLimited(scope, transport), onLimited: (e) => audit.rateLimited(e) });
  app.use(
    streamableHttpRouter({ createServer, ...guardsFor(config.resourceUrl, 'streamable-http'), sessions: httpSessions, log, stateless: config.statelessHttp, ...(fairUse ? { limit: fairUse('streamable-http') } : {}) }),
  );
  // HTTP+SSE is deprecated by MCP 2026-07-28; LEGACY_SSE=off stops serving it.
  if (config.legacySse) app.use(sseRouter({ createServer, ...guardsFor(config.sseUrl, 'sse'), sessions: sseSessions, work: inFlight, log, ...(fairUse ? { limit: fairUse('sse') } : {}) }));
  app.use(bodyErrors(log));

  return {
    app,
    drain: (deadlineMs) => inFlight.drained(deadlineMs),
    inFlight: () => inFlight.size,
    closeSessions: async () => {
      cimdSweep.stop();
      await Promise.all([httpSessions.closeAll(), sseSessions.closeAll(), identitySweep?.stop()]);
    },
    removeAccount,
    ...(identitySweep ? { identitySweep } : {}),
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
