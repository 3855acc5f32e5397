import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authServerRouter } from '../../src/auth/authServerRouter.js';
import { HydraClientsStore } from '../../src/auth/hydraClients.js';
import { HydraProvider } from '../../src/auth/hydraProvider.js';
import { ResourceSet } from '../../src/auth/resource.js';
import type { AccessTokenVerifier } from '../../src/auth/tokenVerifier.js';
import { createHydra } from '../../src/hydra/index.js';
import { createLogger } from '../../src/log/logger.js';
import { serve } from './handlers/serve.js';

/** The discovery documents the router serves (RFC 8414, RFC 9728), and its construction-time checks. Hydra is an unreachable address: never asked. */
const log = createLogger('silent');
const resources = new ResourceSet([new URL('http://127.0.0.1:9/mcp'), new URL('http://127.0.0.1:9/sse')]);
const nowhere = new URL('http://127.0.0.1:1');
const hydra = createHydra({ adminUrl: nowhere, publicUrl: nowhere });
const clientsStore = new HydraClientsStore({ hydraAdmin: hydra.admin, resources, log });
const provider = new HydraProvider({ hydraPublic: hydra.public, hydraBrowserUrl: nowhere, clientsStore, verifier: {} as AccessTokenVerifier, resources, log });
const router = (publicBaseUrl: string) => authServerRouter({ provider, publicBaseUrl: new URL(publicBaseUrl), resources, resourceName: 'test', log });

let base: string;
let close: () => Promise<void>;
beforeAll(async () => {
  const app = express();
  app.use(router('http://127.0.0.1:9'));
  ({ base, close } = await serve(app));
});
afterAll(() => close());
const json = async (path: string) => (await fetch(new URL(path, base))).json();

describe('authServerRouter', () => {
  it.each([
    ['http on a public host', 'http://mcp.example', /must be https unless its host is localhost or 127.0.0.1/],
    ['a query', 'https://mcp.example/?x=1', /must not have a query or fragment/],
  ])('refuses an issuer with %s at construction (RFC 8414 §2)', (_case, url, message) => {
    expect(() => router(url)).toThrow(TypeError);
    expect(() => router(url)).toThrow(message);
  });

  it.each(['https://mcp.example', 'http://localhost:3000', 'http://127.0.0.1:3000'])('accepts the issuer %s', (url) => {
    expect(() => router(url)).not.toThrow();
  });

  it('serves RFC 8414 metadata naming our endpoints', async () => {
    expect(await json('/.well-known/oauth-authorization-server')).toMatchObject({
      issuer: 'http://127.0.0.1:9/',
      authorization_endpoint: 'http://127.0.0.1:9/authorize',
      token_endpoint: 'http://127.0.0.1:9/token',
      registration_endpoint: 'http://127.0.0.1:9/register',
      revocation_endpoint: 'http://127.0.0.1:9/revoke',
      code_challenge_methods_supported: ['S256'],
      response_types_supported: ['code'],
      client_id_metadata_document_supported: true,
    });
  });

  it.each([
    ['/.well-known/oauth-protected-resource/mcp', 'http://127.0.0.1:9/mcp'],
    ['/.well-known/oauth-protected-resource/sse', 'http://127.0.0.1:9/sse'],
    ['/.well-known/oauth-protected-resource', 'http://127.0.0.1:9/mcp'],
  ])('serves protected resource metadata at %s (RFC 9728 §3.1), without offline_access (SEP-2207)', async (path, resource) => {
    const doc = (await json(path)) as { resource: string; authorization_servers: string[]; scopes_supported: string[] };
    expect(doc.resource).toBe(resource);
    expect(doc.authorization_servers).toEqual(['http://127.0.0.1:9/']);
    expect(doc.scopes_supported).not.toContain('offline_access');
  });
});
