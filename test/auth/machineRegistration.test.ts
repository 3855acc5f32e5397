import type { Server } from 'node:http';
import express from 'express';
import { InvalidClientMetadataError } from '../../src/auth/oauthErrors.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HydraClientsStore } from '../../src/auth/hydraClients.js';
import type { HydraProvider } from '../../src/auth/hydraProvider.js';
import { ResourceSet } from '../../src/auth/resource.js';
import { tokenProxyRouter } from '../../src/auth/tokenProxy.js';
import type { HydraAdmin } from '../../src/hydra/index.js';
import { createLogger } from '../../src/log/logger.js';

const RESOURCE = 'http://127.0.0.1:3000/mcp';
const resources = new ResourceSet([new URL(RESOURCE), new URL('http://127.0.0.1:3000/sse')]);

/**
 * MCP client-credentials extension (io.modelcontextprotocol/oauth-client-credentials):
 * the flow "requires pre-registered client credentials ... established out-of-band
 * through administrative channels. Dynamic Client Registration is not used".
 */
describe('dynamic registration refuses the client_credentials grant (stub Hydra: registration must not reach it)', () => {
  const registered: unknown[] = [];
  const store = new HydraClientsStore({
    hydraAdmin: { createClient: async (m: Record<string, unknown>) => (registered.push(m), { client_id: 'x', ...m }) } as unknown as HydraAdmin,
    resources,
    log: createLogger('silent'),
  });
  const request = (grant_types: string[]) => ({ redirect_uris: ['http://127.0.0.1:9999/cb'], grant_types, token_endpoint_auth_method: 'client_secret_basic' });

  it.each([[['client_credentials']], [['authorization_code', 'client_credentials']], [['client_credentials', 'refresh_token']]])(
    'grant_types %j → invalid_client_metadata saying an operator makes machine clients',
    async (grants) => {
      const err = await store.registerClient(request(grants) as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidClientMetadataError);
      expect((err as Error).message).toBe(
        'grant_types must not include client_credentials: machine clients are made by an operator (npm run client -- add --machine), not registered',
      );
      expect(registered).toEqual([]);
    },
  );

  it('an ordinary registration still reaches Hydra', async () => {
    await store.registerClient(request(['authorization_code', 'refresh_token']) as never);
    expect(registered).toHaveLength(1);
  });
});

/** /token with a stub provider in place of Hydra (unit test): what is forwarded, byte for byte. */
describe('/token forwards grant_type=client_credentials to Hydra', () => {
  let server: Server;
  let base: string;
  const forwarded: { form: string; authorization?: string }[] = [];
  beforeAll(async () => {
    const provider = {
      forward: async (_endpoint: string, form: URLSearchParams, authorization?: string) => {
        forwarded.push({ form: form.toString(), authorization });
        return { status: 200, body: { access_token: 'at', token_type: 'bearer', expires_in: 3600 } };
      },
    } as unknown as HydraProvider;
    const app = express();
    app.use(tokenProxyRouter({ provider, resources }));
    await new Promise<void>((r) => (server = app.listen(0, '127.0.0.1', () => r())));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const token = (fields: Record<string, string>, authorization?: string) =>
    fetch(`${base}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization ? { authorization } : {}) },
      body: new URLSearchParams(fields).toString(),
    });
  const basic = `Basic ${Buffer.from('m-1:s3cret').toString('base64')}`;

  it('with HTTP Basic client authentication: grant, scope and audience unchanged, the Authorization header passed on', async () => {
    forwarded.length = 0;
    const res = await token({ grant_type: 'client_credentials', scope: 'notes:read', audience: RESOURCE }, basic);
    expect(res.status).toBe(200);
    expect(forwarded).toEqual([{ form: new URLSearchParams({ grant_type: 'client_credentials', scope: 'notes:read', audience: RESOURCE }).toString(), authorization: basic }]);
  });

  it('with the secret in the body (the extension’s example), resource naming us → audience for Hydra', async () => {
    forwarded.length = 0;
    const res = await token({ grant_type: 'client_credentials', client_id: 'm-1', client_secret: 's3cret', resource: `${RESOURCE}/`, scope: 'notes:read' });
    expect(res.status).toBe(200);
    expect(Object.fromEntries(new URLSearchParams(forwarded[0]!.form))).toEqual({
      grant_type: 'client_credentials',
      client_id: 'm-1',
      client_secret: 's3cret',
      scope: 'notes:read',
      audience: RESOURCE,
    });
  });

  it('an explicit audience is kept as the client sent it (Hydra checks it against the client’s allow-list)', async () => {
    forwarded.length = 0;
    await token({ grant_type: 'client_credentials', audience: 'http://127.0.0.1:3000/sse', resource: RESOURCE }, basic);
    expect(new URLSearchParams(forwarded[0]!.form).get('audience')).toBe('http://127.0.0.1:3000/sse');
  });

  it('resource naming another server → 400 invalid_target, nothing forwarded', async () => {
    forwarded.length = 0;
    const res = await token({ grant_type: 'client_credentials', resource: 'https://other.example/mcp' }, basic);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_target');
    expect(forwarded).toEqual([]);
  });

  it('a grant we do not serve (password) is still unsupported_grant_type', async () => {
    const res = await token({ grant_type: 'password', username: 'a', password: 'b' }, basic);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('unsupported_grant_type');
  });
});
