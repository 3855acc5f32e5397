import cors from 'cors';
import type express from 'express';
import type { ErrorRequestHandler } from 'express';
import { createAccountRouter } from '../account/accountRouter.js';
import { authServerRouter } from '../auth/authServerRouter.js';
import { endpointRateLimit } from '../limits/endpointRateLimits.js';
import { sharedRateLimitStores } from '../limits/sharedRateLimitStore.js';
import type { Logger } from '../log/logger.js';
import { jsonRpcError } from '../mcp/jsonRpcError.js';
import { sseRouter } from '../mcp/sse.js';
import { streamableHttpRouter } from '../mcp/streamableHttp.js';
import { createLoginRouter } from '../signin/loginRouter.js';
import { auditStore } from '../store/auditStore.js';
import { exportSubjectData } from '../store/export.js';
import { traceRequests } from '../tracing/httpSpans.js';
import { tracingEnabled } from '../tracing/spans.js';
import { allowedHosts, hostGuard, originGuard, originPolicy } from './hostGuard.js';
import { createReadiness, readinessHandler } from './readiness.js';
import { requestLog } from './requestLog.js';
import { strictTransportSecurity } from './securityHeaders.js';
import { type AppDependencies, RESOURCE_NAME, type Services } from './services.js';

const MCP_PATHS = ['/mcp', '/sse', '/messages'];

/** The application's middleware and routes, in the order a request meets them. */
export function mountRoutes(app: express.Express, s: Services, deps: AppDependencies): void {
  const { config, db, log, metrics } = deps;
  const { mcp, fairUse } = s;
  app.disable('x-powered-by');
  // Behind a TLS-terminating proxy (TRUST_PROXY): req.ip (sign-in throttle, endpoint limits) and req.protocol come from its X-Forwarded-* headers.
  app.set('trust proxy', config.trustProxy);
  // A server span per request when tracing is on (src/tracing/); off, not even mounted.
  if (tracingEnabled()) app.use(traceRequests());
  app.use(strictTransportSecurity(config.publicBaseUrl));
  app.use(mcp.inFlight.middleware);
  app.use(requestLog(log));
  app.use(metrics.middleware);
  app.use(hostGuard(allowedHosts(config.publicBaseUrl, config.allowedHosts)));
  // Liveness: the process answers. Readiness: it can serve (database, Hydra).
  app.get('/healthz', (_req, res) => res.json({ status: 'ok' }));
  const readiness = createReadiness({
    db,
    dialect: config.database.kind,
    hydra: deps.hydraPublic,
    ...(s.identity.kratos ? { kratos: s.identity.kratos.public } : {}),
    ...(deps.stopping ? { stopping: deps.stopping } : {}),
  });
  app.get('/readyz', readinessHandler(readiness));
  // The same checks at scrape time: dependency_up and ready.
  metrics.readinessGauges(async () => {
    const { checks, ready } = await readiness.check();
    return { dependencies: checks, ready };
  });
  app.use(
    authServerRouter({
      provider: s.provider,
      publicBaseUrl: config.publicBaseUrl,
      resources: s.resources,
      resourceName: RESOURCE_NAME,
      // Counters in the database every replica shares: the endpoint limits hold across replicas.
      limiter: (endpoint) => endpointRateLimit(endpoint, { store: sharedRateLimitStores(s.rateCounters) }),
      log,
      onTokenAnswer: (grantType, outcome) => metrics.tokenRequest(grantType, outcome),
      onClientRegistered: (c) => s.audit.account({ kind: 'client_registered', outcome: 'ok', clientId: c.client_id, ...(c.client_name ? { clientName: c.client_name } : {}) }),
    }),
  );
  app.use(loginRouter(s, deps));
  app.use(accountRouter(s, deps));
  // Browser clients call the MCP endpoints cross-origin with a bearer token
  // (no cookies), and must be able to read the 401 challenge and session id.
  app.use(
    MCP_PATHS,
    cors({
      origin: '*',
      // Mcp-Method / Mcp-Name: required on every MCP 2026-07-28 request.
      allowedHeaders: ['Authorization', 'Content-Type', 'Mcp-Session-Id', 'MCP-Protocol-Version', 'Last-Event-ID', 'Mcp-Method', 'Mcp-Name'],
      exposedHeaders: ['WWW-Authenticate', 'Mcp-Session-Id', 'MCP-Protocol-Version'],
    }),
  );
  app.use(MCP_PATHS, originGuard(originPolicy(config.publicBaseUrl, config.allowedOrigins)));
  app.use(
    streamableHttpRouter({ createServer: mcp.createServer, ...mcp.guardsFor(config.resourceUrl, 'streamable-http'), sessions: mcp.httpSessions, log, stateless: config.statelessHttp, ...(fairUse ? { limit: fairUse('streamable-http') } : {}) }),
  );
  // HTTP+SSE is deprecated by MCP 2026-07-28; LEGACY_SSE=off stops serving it.
  if (config.legacySse) app.use(sseRouter({ createServer: mcp.createServer, ...mcp.guardsFor(config.sseUrl, 'sse'), sessions: mcp.sseSessions, work: mcp.inFlight, log, ...(fairUse ? { limit: fairUse('sse') } : {}) }));
  app.use(bodyErrors(log));
}

/** Hydra's login, consent and logout pages (src/signin/). */
function loginRouter(s: Services, deps: AppDependencies): express.Router {
  const { config } = deps;
  const { kratos, kratosSubjects } = s.identity;
  return createLoginRouter({
    hydra: deps.hydraAdmin,
    users: s.identity.users,
    resources: s.resources,
    signer: s.signer,
    secureCookies: secureCookies(deps),
    trustedClientIds: config.trustedClientIds,
    throttle: s.throttle,
    log: deps.log,
    onSignInAttempt: (method, outcome) => deps.metrics.signInAttempt(method, outcome),
    checkClient: (request) => s.cimd.checkAuthorization(request.client, request.request_url),
    ...(s.audit.enabled ? { audit: (e) => s.audit.account(e) } : {}),
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
  });
}

/** The self-service account pages (src/account/). */
function accountRouter(s: Services, deps: AppDependencies): express.Router {
  const { db } = deps;
  const { audit, connections, identity } = s;
  return createAccountRouter({
    hydra: deps.hydraAdmin,
    users: identity.users,
    signer: s.signer,
    secureCookies: secureCookies(deps),
    throttle: s.throttle,
    exportData: (sub) => exportSubjectData(db, sub),
    // "Delete my account" takes the same path as the operator's `npm run user -- remove`.
    deleteAccount: async (sub) => void (await identity.removeAccount({ sub })),
    log: deps.log,
    // Activity pages: the person's own records, cursors signed with the tools' cursor key under their own label.
    ...(audit.enabled ? { audit: { record: (e) => audit.account(e), activity: auditStore(db), cursorKey: s.cursorKey } } : {}),
    ...(connections ? { connections: { flow: connections.flow, links: connections.links } } : {}),
    ...(identity.kratos ? { kratos: { client: identity.kratos, publicBaseUrl: deps.config.publicBaseUrl } } : {}),
  });
}

const secureCookies = (deps: AppDependencies) => deps.config.publicBaseUrl.protocol === 'https:';

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
