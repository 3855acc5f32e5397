import { createAccountRemoval, type RemoveAccount } from '../account/accountRemoval.js';
import { createAccountSuspension } from '../account/accountSuspension.js';
import { createIdentitySweep, type IdentitySweep } from '../account/identitySweep.js';
import { findIdentityById, kratosAccountDirectory } from '../account/kratosDirectory.js';
import type { RemovedSubjects } from '../account/removedSubjects.js';
import { createUserStore, type UserStore } from '../account/userStore.js';
import { Audit } from '../audit/audit.js';
import { auditCallGuard } from '../audit/callGuard.js';
import { bearerAuth } from '../auth/bearerAuth.js';
import { CimdClients } from '../auth/cimd/cimdClients.js';
import { clientAssertionVerifier } from '../auth/cimd/clientAssertion.js';
import { cimdTokenAuth } from '../auth/cimd/cimdTokenAuth.js';
import { ClientMetadataDocuments } from '../auth/cimd/clientMetadataDocument.js';
import { HydraClientsStore } from '../auth/hydraClients.js';
import { HydraProvider } from '../auth/hydraProvider.js';
import { protectedResourceMetadataUrl } from '../auth/prmUrl.js';
import { ResourceSet } from '../auth/resource.js';
import type { AccessTokenVerifier } from '../auth/tokenVerifier.js';
import type { Config } from '../config/config.js';
import { type Connections, createConnections, toolsWithProviders } from '../connections/index.js';
import { type HydraAdmin, type HydraPublic, hydraPublicUrls } from '../hydra/index.js';
import { createKratos, type Kratos } from '../kratos/index.js';
import { createMcpRateLimit } from '../limits/mcpRateLimit.js';
import { LoginThrottle } from '../limits/throttle.js';
import type { Logger } from '../log/logger.js';
import { type ConnectionPromptOptions, requestStateCodec, waiterSlots } from '../mcp/connectionPrompt.js';
import { createMcpServer } from '../mcp/mcpServer.js';
import { SessionRegistry } from '../mcp/sessions.js';
import type { SseSession } from '../mcp/sse.js';
import { requireToolScopes } from '../mcp/stepUp.js';
import { InMemorySessionBus, type SessionBus } from '../mcp/sessionBus.js';
import { SessionRelay } from '../mcp/sessionRelay.js';
import { SharedSessions, type SharedSessionsOptions } from '../mcp/sharedSessions.js';
import { StreamEvents } from '../mcp/streamEvents.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Db } from '../store/database.js';
import { cimdMirrorsStore } from '../store/cimdMirrorsStore.js';
import { kratosSubjectsStore } from '../store/kratosSubjectsStore.js';
import { mcpSessionsStore } from '../store/mcpSessionsStore.js';
import { inMemoryStreamEventsStore, mcpStreamEventsStore } from '../store/mcpStreamEventsStore.js';
import { removedSubjectsStore } from '../store/removedSubjectsStore.js';
import { singleUseIds } from '../store/singleUseIds.js';
import { rateCountersStore, type RateCounters } from '../store/windowCounters.js';
import { tokenBucketsStore } from '../store/tokenBuckets.js';
import type { ToolDefinition } from '../tools/contract.js';
import { CursorKey } from '../tools/cursor.js';
import { Signer } from '../web/cookies.js';
import { InFlight } from './inFlight.js';

export interface AppDependencies {
  config: Config;
  /** True once this process is leaving the balancer's rotation (main.ts, on SIGTERM): /readyz answers 503. */
  stopping?: () => boolean;
  db: Db;
  hydraAdmin: HydraAdmin;
  /** Hydra's public API (token/revoke forwarding, registration, health); main.ts builds it with hydraAdmin over one transport. */
  hydraPublic: HydraPublic;
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
  /** How replicas pass a session's client messages to each other (main.ts: PostgreSQL LISTEN/NOTIFY with DATABASE_URL). Default: in process. */
  sessionBus?: SessionBus;
  /**
   * 2025-era sessions shared through the database: the revalidation interval and limits (defaults: src/mcp/sharedSessions.ts, src/mcp/sessions.ts);
   * `store` and `streamEvents` replace the shared tables (default), for the benchmark's in-memory baseline only.
   */
  sharedSessions?: Partial<Pick<SharedSessionsOptions, 'store' | 'streamEvents' | 'revalidateMs' | 'limits' | 'onRebuilt' | 'retryIntervalMs'>>;
}

/** Everything the routes (./routes.ts) use, built once from the dependencies. */
export interface Services {
  audit: Audit;
  connections: Connections | undefined;
  resources: ResourceSet;
  /** Client ID Metadata Document clients, mirrored into Hydra; `cimdSweep` deletes unused mirrors. */
  cimd: CimdClients;
  cimdSweep: { stop(): void };
  /** The authorization-server facade MCP clients talk to (token and revocation forwarded to Hydra). */
  provider: HydraProvider;
  /** Page cursors, signed with a key derived from SESSION_SECRET: every replica accepts them. */
  cursorKey: CursorKey;
  mcp: McpServices;
  /** Fixed-window counters in the database every replica shares: the endpoint limits and the sign-in throttle. */
  rateCounters: RateCounters;
  identity: IdentityServices;
  /** Signs the pages' cookies and CSRF tokens. */
  signer: Signer;
  /** One sign-in throttle for the OAuth sign-in page and the account page. */
  throttle: LoginThrottle;
  /** Fair use (MCP_REQUESTS_PER_MINUTE); off: undefined. */
  fairUse: ReturnType<typeof createMcpRateLimit> | undefined;
}

/** The name this server gives itself as a protected resource and in MCP serverInfo. */
export const RESOURCE_NAME = 'hydra-mcp';
/** How often unused client metadata document mirrors are looked for (each replica; the work is shared through the table). */
const CIMD_SWEEP_EVERY_MS = 10 * 60_000;

/** The server is one resource with two URLs: /mcp and /sse (each has its own PRM). */
export function resourcesOf(config: Config): ResourceSet {
  return new ResourceSet([config.resourceUrl, config.sseUrl]);
}

/** Where Hydra publishes its signing keys (the JWT verifier's JWKS). */
export function jwksUrlOf(config: Config): URL {
  return hydraPublicUrls(config.hydra.publicUrl).jwks;
}

/** Build every service the application uses; nothing here reads the environment. */
export function buildServices(deps: AppDependencies): Services {
  const { config, db, log, metrics } = deps;
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
    onCredentialTimed: (p, o, seconds) => metrics.credentialDuration(p, o, seconds),
    onProviderCall: (p, call, outcome) => metrics.providerRequest(p, call, outcome),
  });
  if (connections) metrics.providersAre(connections.providers.keys());
  const { tools, skipped } = toolsWithProviders(deps.tools, connections && new Set(connections.providers.keys()));
  for (const t of skipped) log.warn('tool not served: it needs a connected account and CONNECTIONS_FILE is not set', { tool: t.name, credentials: t.credentials });
  const resources = resourcesOf(config);
  const { cimd, cimdSweep, provider } = authorizationServer(deps, resources);
  const cursorKey = CursorKey.fromSecret(config.sessionSecret);
  const mcp = mcpServices(deps, { tools, audit, connections, cursorKey });
  const rateCounters = rateCountersStore(db);
  const identity = identityServices(deps, connections, mcp);
  const signer = new Signer(config.sessionSecret);
  const throttle = new LoginThrottle({ counters: rateCounters });
  // Token buckets in the shared rate_counters table, so they hold across replicas.
  const fairUse = config.fairUse ? createMcpRateLimit({ buckets: tokenBucketsStore(db), ...config.fairUse, log, onCounted: (scope, transport) => metrics.rateLimited(scope, transport), onLimited: (e) => audit.rateLimited(e) }) : undefined;
  return { audit, connections, resources, cimd, cimdSweep, provider, cursorKey, mcp, rateCounters, identity, signer, throttle, fairUse };
}

/** Registration (incl. metadata-document clients), token and revocation, forwarded to Hydra. */
function authorizationServer(deps: AppDependencies, resources: ResourceSet) {
  const { config, db, hydraAdmin, log } = deps;
  const documents = new ClientMetadataDocuments({ testLoopbackCa: config.cimd.testLoopbackCa });
  const cimd = new CimdClients({ documents, hydraAdmin, resources, log, secret: config.sessionSecret, registry: cimdMirrorsStore(db) });
  const cimdSweep = cimd.startSweeping(CIMD_SWEEP_EVERY_MS, config.cimd.mirrorIdleDays * 86_400_000);
  const clientsStore = new HydraClientsStore({ hydraAdmin, resources, log, cimd });
  const provider = new HydraProvider({
    hydraPublic: deps.hydraPublic,
    hydraBrowserUrl: new URL(config.hydra.issuer),
    clientsStore,
    verifier: deps.verifier,
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
  return { cimd, cimdSweep, provider };
}

export interface McpServices {
  /** Every request and tool call in flight, for a graceful stop. */
  inFlight: InFlight;
  /** A fresh MCP server for a session (or a stateless request), built from the tool registry. */
  createServer: () => ReturnType<typeof createMcpServer>;
  /** Streamable HTTP sessions, in the database every replica shares (this replica's copies in memory). */
  httpSessions: SharedSessions;
  sseSessions: SessionRegistry<SseSession>;
  /** The bearer check and the per-call scope check of one transport, naming `resource`'s PRM. */
  guardsFor(resource: URL, transport: 'streamable-http' | 'sse'): { authenticate: ReturnType<typeof bearerAuth>; authorizeCalls: ReturnType<typeof auditCallGuard> };
}

/** The MCP servers the transports build per session, their guards, and the session registries. */
function mcpServices(deps: AppDependencies, o: { tools: ToolDefinition[]; audit: Audit; connections: Connections | undefined; cursorKey: CursorKey }): McpServices {
  const { config, db, log, metrics, verifier } = deps;
  const { tools, audit, connections, cursorKey } = o;
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
    // From the request reaching the call guard when known (as the audit record), else from the tool's start.
    const ms = call?.context ? performance.now() - call.context.startedAt : call?.durationMs;
    metrics.toolCall(tool, outcome, ms === undefined ? undefined : ms / 1000);
    audit.toolOutcome(tool, outcome, call?.principal, call?.durationMs, call?.context);
  };
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
  // Answers and cancellations for a call on another replica go there over the bus; streams are kept for resuming anywhere.
  const relay = new SessionRelay(deps.sessionBus ?? new InMemorySessionBus(), log);
  const resumeMs = config.streamResumeSeconds * 1000;
  // Shared in PostgreSQL, where other replicas resume streams; in this process's memory on SQLite (one process).
  const streamLog = config.database.kind === 'postgres' ? mcpStreamEventsStore(db) : inMemoryStreamEventsStore();
  const streamEvents = resumeMs > 0 ? new StreamEvents({ store: streamLog, log, retainMs: resumeMs }) : undefined;
  const httpSessions = new SharedSessions({ createServer, log, relay, ...(streamEvents ? { streamEvents } : {}), ...deps.sharedSessions, store: deps.sharedSessions?.store ?? mcpSessionsStore(db) });
  const sseSessions = new SessionRegistry<SseSession>();
  metrics.sessionsGauge(() => ({ 'streamable-http': httpSessions.size, sse: sseSessions.size }));
  return { inFlight, createServer, httpSessions, sseSessions, guardsFor };
}

export interface IdentityServices {
  users: UserStore;
  /** IDENTITY=kratos: accounts are Kratos identities (found and deleted there), people sign in through its flows. */
  kratos: Kratos | undefined;
  /** When each Kratos identity last signed in here (the sweep's list of whom to ask about). */
  kratosSubjects: ReturnType<typeof kratosSubjectsStore>;
  /** One removal path for the CLI's process and this one; here it also ends the person's live sessions at once. */
  removeAccount: RemoveAccount;
  /** IDENTITY=kratos: an identity deleted in Kratos loses its access and data here too; one deactivated, its access. */
  identitySweep: IdentitySweep | undefined;
}

/** Accounts: the user store or Kratos, removal, and the sweep that follows Kratos's deletions and deactivations. */
function identityServices(deps: AppDependencies, connections: Connections | undefined, mcp: McpServices): IdentityServices {
  const { config, db, hydraAdmin, log, removedSubjects } = deps;
  const endLiveSessions = (sub: string) => Promise.all([mcp.httpSessions.closeOwnedBy(sub), mcp.sseSessions.closeOwnedBy(sub)]);
  const users = createUserStore(db);
  const kratos = config.identity.kind === 'kratos' ? createKratos({ publicUrl: config.identity.publicUrl, adminUrl: config.identity.adminUrl }) : undefined;
  const removeAccount = createAccountRemoval({
    db,
    users: kratos ? kratosAccountDirectory(kratos.admin) : users,
    hydra: hydraAdmin,
    removed: removedSubjectsStore(db),
    log,
    ...(connections ? { revokeConnections: (sub: string) => connections.flow.revokeAll(sub) } : {}),
    onRecorded: async (sub) => {
      removedSubjects.add(sub);
      await endLiveSessions(sub);
    },
  });
  const kratosSubjects = kratosSubjectsStore(db);
  // Kratos tells no one of a deletion or deactivation: we ask.
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
              removedSubjects.suspend(sub);
              await endLiveSessions(sub);
            },
            onReactivated: (sub, at) => removedSubjects.reactivate(sub, at),
          }),
          log,
          everyMs: config.identity.sweepSeconds * 1000,
        })
      : undefined;
  identitySweep?.start();
  return { users, kratos, kratosSubjects, removeAccount, identitySweep };
}
