import express, { type RequestHandler } from 'express';
import { isLoopbackHost } from '../lib/loopback.js';
import type { Logger } from '../log/logger.js';
import { CLIENT_ASSERTION_ALGS } from './cimd/clientMetadataDocument.js';
import { authorizationHandler } from './handlers/authorize.js';
import { metadataHandler } from './handlers/metadata.js';
import { registrationHandler } from './handlers/register.js';
import type { HydraProvider } from './hydraProvider.js';
import { protectedResourceMetadataPath } from './prmUrl.js';
import type { ResourceSet } from './resource.js';
import { SUPPORTED_SCOPES } from './scopes.js';
import { type TokenAnswerListener, tokenProxyRouter } from './tokenProxy.js';
import type { OAuthMetadata, OAuthProtectedResourceMetadata } from './types.js';

export interface AuthServerRouterOptions {
  provider: HydraProvider;
  /** This server's public base URL: the issuer clients see for /authorize, /token, /register. */
  publicBaseUrl: URL;
  /** Our resource URLs (RFC 9728): the MCP endpoint first, then the legacy SSE endpoint. */
  resources: ResourceSet;
  resourceName: string;
  /**
   * The per-address limiter of each endpoint (/token, /revoke, /register,
   * /authorize), run before anything else there; the composition root builds
   * them (src/limits/endpointRateLimits.ts) so they count where every replica
   * sees them. Absent: no limit.
   */
  limiter?: EndpointLimiter;
  /** Where unexpected errors of /authorize and /register are logged. */
  log?: Logger;
  /** Told of every answer of POST /token (oauth_token_requests_total); see TokenProxyOptions. */
  onTokenAnswer?: TokenAnswerListener;
  /** Told of each client registered at /register (the audit trail). */
  onClientRegistered?: (client: { client_id: string; client_name?: string }) => void;
}

/** The endpoints limited per client address. */
export type LimitedEndpoint = 'token' | 'revoke' | 'register' | 'authorize';
/** Builds the limiter of one endpoint (a fresh one per call). */
export type EndpointLimiter = (endpoint: LimitedEndpoint) => RequestHandler;

/**
 * The authorization server MCP clients see, in front of Hydra: discovery
 * (RFC 8414 metadata, RFC 9728 protected resource metadata), registration
 * (RFC 7591), /authorize, /token and /revoke. Hydra does the real work; the
 * Hydra provider and clients store carry requests to it.
 */
export function authServerRouter(options: AuthServerRouterOptions): express.Router {
  const { provider, publicBaseUrl, resources, log } = options;
  checkIssuer(publicBaseUrl);
  const router = express.Router();
  const scopesSupported = [...SUPPORTED_SCOPES];
  // SEP-2207 (MCP 2026-07-28): protected resource metadata SHOULD NOT list
  // `offline_access`: it is a matter between client and authorization server,
  // whose RFC 8414 metadata (below) still lists it.
  const resourceScopes = scopesSupported.filter((s) => s !== 'offline_access');
  const endpoint = (path: string) => new URL(path, publicBaseUrl).href;
  const limited = (name: LimitedEndpoint): { rateLimit?: RequestHandler } => (options.limiter ? { rateLimit: options.limiter(name) } : {});
  const authMethods = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'];

  // RFC 8414 §2. client_secret_basic: Hydra's default for clients that register
  // without an auth method. private_key_jwt is checked by Hydra (fosite) against
  // the client's keys; the assertion's aud is our /token (Hydra's token_url is
  // set to it). client_id_metadata_document_supported: draft-ietf-oauth-client-id-metadata-document,
  // MCP 2025-11-25 (clients such as claude.ai use CIMD only when it is true).
  const asMetadata: OAuthMetadata = {
    issuer: publicBaseUrl.href,
    authorization_endpoint: endpoint('/authorize'),
    response_types_supported: ['code'],
    // RFC 7636 §4.2: S256 only (MCP authorization requires it).
    code_challenge_methods_supported: ['S256'],
    token_endpoint: endpoint('/token'),
    token_endpoint_auth_methods_supported: authMethods,
    // MCP client-credentials extension: operator-made machine clients (npm run client -- add --machine)
    // get tokens with client_credentials at /token; registration refuses that grant.
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
    scopes_supported: scopesSupported,
    // RFC 7009, answered by tokenProxy.ts.
    revocation_endpoint: endpoint('/revoke'),
    revocation_endpoint_auth_methods_supported: authMethods,
    registration_endpoint: endpoint('/register'),
    token_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGS],
    client_id_metadata_document_supported: true,
  };
  router.use('/.well-known/oauth-authorization-server', metadataHandler(asMetadata));
  router.use(
    '/register',
    registrationHandler({ clients: provider.clientsStore, ...limited('register'), ...(log ? { log } : {}), ...(options.onClientRegistered ? { onRegistered: options.onClientRegistered } : {}) }),
  );
  router.use(tokenProxyRouter({ provider, resources, ...(options.limiter ? { limiter: options.limiter } : {}), ...(options.onTokenAnswer ? { onTokenAnswer: options.onTokenAnswer } : {}) }));
  router.use(
    '/authorize',
    authorizationHandler({
      clients: provider.clientsStore,
      authorize: (client, request, res) => provider.authorize(client, request, res),
      ...limited('authorize'),
      ...(log ? { log } : {}),
    }),
  );

  // RFC 9728 §3.1: one document per resource URL, at the path-specific
  // location; the root location describes the primary (clients fall back to it).
  const prm = (resource: URL): OAuthProtectedResourceMetadata => ({
    resource: resource.href,
    authorization_servers: [asMetadata.issuer],
    scopes_supported: resourceScopes,
    bearer_methods_supported: ['header'],
    resource_name: options.resourceName,
  });
  // bearer_methods_supported is OPTIONAL (RFC 9728 §2, default: the header);
  // the MCP endpoint's document has always been served without it.
  const { bearer_methods_supported: _header, ...primaryDocument } = prm(resources.primary);
  router.use(protectedResourceMetadataPath(resources.primary), metadataHandler(primaryDocument));
  for (const resource of resources.urls.slice(1)) {
    router.use(protectedResourceMetadataPath(resource), metadataHandler(prm(resource)));
  }
  router.use('/.well-known/oauth-protected-resource', metadataHandler(prm(resources.primary)));
  return router;
}

/**
 * RFC 8414 §2: the issuer is an https URL with no query or fragment. Plain
 * http is accepted for localhost and 127.0.0.1, where development runs.
 */
function checkIssuer(issuer: URL): void {
  // The same loopback as the config check (src/config/httpsOnly.ts), which refuses this first, naming the variable.
  const local = isLoopbackHost(issuer.hostname);
  if (issuer.protocol !== 'https:' && !local) {
    throw new TypeError(`publicBaseUrl (PUBLIC_BASE_URL) must be https unless its host is localhost or 127.0.0.1 (or another loopback address): ${issuer.href}`);
  }
  if (issuer.search || issuer.hash) throw new TypeError(`publicBaseUrl (PUBLIC_BASE_URL) must not have a query or fragment: ${issuer.href}`);
}
