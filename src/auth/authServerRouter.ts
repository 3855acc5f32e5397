import cors from 'cors';
import express from 'express';
import { metadataHandler } from '@modelcontextprotocol/sdk/server/auth/handlers/metadata.js';
import { createOAuthMetadata, getOAuthProtectedResourceMetadataUrl, mcpAuthRouter } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { CLIENT_ASSERTION_ALGS } from './cimd/clientMetadataDocument.js';
import { endpointRateLimit, type EndpointRateLimitOptions } from './endpointRateLimits.js';
import type { HydraProvider } from './hydraProvider.js';
import type { ResourceSet } from './resource.js';
import { SUPPORTED_SCOPES } from './scopes.js';
import { tokenProxyRouter } from './tokenProxy.js';

export interface AuthServerRouterOptions {
  provider: HydraProvider;
  /** This server's public base URL: the issuer clients see for /authorize, /token, /register. */
  publicBaseUrl: URL;
  /** Our resource URLs (RFC 9728): the MCP endpoint first, then the legacy SSE endpoint. */
  resources: ResourceSet;
  resourceName: string;
  /**
   * Per-address limits on /token, /revoke and /register (ENDPOINT_LIMITS) and
   * the store they are counted in (default: this process's memory).
   */
  rateLimits?: EndpointRateLimitOptions;
}

/**
 * Discovery, registration, authorization, token and revocation endpoints.
 * The SDK's mcpAuthRouter serves PRM, /authorize and /register through the
 * Hydra provider; /token, /revoke and the AS metadata are ours, mounted first,
 * so confidential clients are authenticated by Hydra with what they sent.
 * Our limiters replace the SDK's on /token, /revoke and /register, with one
 * injectable store.
 */
export function authServerRouter(options: AuthServerRouterOptions): express.Router {
  const router = express.Router();
  const { provider, publicBaseUrl, resources } = options;
  const scopesSupported = [...SUPPORTED_SCOPES];
  // SEP-2207 (MCP 2026-07-28): protected resource metadata SHOULD NOT list
  // `offline_access`: it is a matter between client and authorization server,
  // whose RFC 8414 metadata (above) still lists it.
  const resourceScopes = scopesSupported.filter((s) => s !== 'offline_access');
  const base = createOAuthMetadata({ provider, issuerUrl: publicBaseUrl, scopesSupported });

  // RFC 8414 metadata: like the SDK's, plus client_secret_basic, which Hydra
  // uses by default for clients that register without an auth method.
  // private_key_jwt is checked by Hydra (fosite) against the client's keys;
  // the assertion's aud is our /token (Hydra's token_url is set to it).
  // client_id_metadata_document_supported: draft-ietf-oauth-client-id-metadata-document,
  // MCP 2025-11-25 (clients such as claude.ai use CIMD only when it is true).
  const asMetadata = {
    ...base,
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    token_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGS],
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    // RFC 7009: ours (tokenProxy.ts); the provider has no revokeToken, so `base` lacks it.
    revocation_endpoint: new URL('/revoke', publicBaseUrl).href,
    client_id_metadata_document_supported: true,
    // MCP client-credentials extension: operator-made machine clients (npm run client -- add --machine)
    // get tokens with client_credentials at /token; registration refuses that grant.
    grant_types_supported: [...(base.grant_types_supported ?? ['authorization_code', 'refresh_token']), 'client_credentials'],
  };
  router.use('/.well-known/oauth-authorization-server', metadataHandler(asMetadata));
  // Registration bodies are small; a big one is refused as RFC 7591 metadata error
  // before the SDK's handler parses it. (Unknown fields are ignored, as §2 requires.)
  const registrationBody = express.json({ limit: '16kb' });
  router.use('/register', cors(), endpointRateLimit('register', options.rateLimits));
  router.use('/register', (req, res, next) =>
    registrationBody(req, res, (err?: unknown) => {
      if (!err) return next();
      const tooLarge = (err as { type?: string }).type === 'entity.too.large';
      res.status(400).json({
        error: 'invalid_client_metadata',
        error_description: tooLarge ? 'Registration request is larger than 16 KB' : 'Registration request is not valid JSON',
      });
    }),
  );
  router.use(tokenProxyRouter({ provider, resources, rateLimits: options.rateLimits }));
  router.use(
    mcpAuthRouter({
      provider,
      issuerUrl: publicBaseUrl,
      resourceServerUrl: resources.primary,
      scopesSupported: resourceScopes,
      resourceName: options.resourceName,
      // Counted by our limiter above, in the injectable store.
      clientRegistrationOptions: { rateLimit: false },
    }),
  );
  // RFC 9728 §3.1: one document per resource URL, at the path-specific
  // location; the root location describes the primary (clients fall back to it).
  const prm = (resource: URL) => ({
    resource: resource.href,
    authorization_servers: [asMetadata.issuer],
    scopes_supported: resourceScopes,
    bearer_methods_supported: ['header'],
    resource_name: options.resourceName,
  });
  for (const resource of resources.urls.slice(1)) {
    router.use(getOAuthProtectedResourceMetadataUrl(resource).replace(/^https?:\/\/[^/]+/, ''), metadataHandler(prm(resource)));
  }
  router.use('/.well-known/oauth-protected-resource', metadataHandler(prm(resources.primary)));
  return router;
}

