import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHydraBinary, ourPageUrls, type RunningHydra, startHydra } from '../../scripts/hydra.js';
import { type Stack, startStack } from './stack.js';

/**
 * Hydra's own doors beside ours (issue 26, items 1 and 2), against the real
 * Hydra as `npm start` and the stack configure it: its public registration is
 * closed, our /register is the only way in for a client, and Hydra fetches no
 * URL on a private address, nor tells a token caller what a fetch answered.
 */

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** A JWT-shaped assertion that no key signed: enough to make Hydra look up the client's keys. */
const junkAssertion = (clientId: string) =>
  [
    Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'k1' })).toString('base64url'),
    Buffer.from(JSON.stringify({ iss: clientId, sub: clientId, aud: 'x', jti: randomBytes(8).toString('hex'), exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url'),
    'c2lnbmF0dXJl',
  ].join('.');

/** A loopback HTTP server that records every request it gets (an "internal service" an attacker would probe). */
async function internalService(): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, hits, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('issue 26: Hydra’s own doors (real Ory Hydra)', () => {
  let stack: Stack;
  let internal: Awaited<ReturnType<typeof internalService>>;
  const adminClients = async () => ((await (await fetch(`${stack.hydra.adminUrl}/admin/clients?page_size=500`)).json()) as Array<Record<string, unknown>>);

  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: 'opaque', database: 'sqlite' });
    internal = await internalService();
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await internal?.close();
  });

  it('issue 26 #1: Hydra’s public registration is closed: POST /oauth2/register and the RFC 7592 routes answer 404, and no client appears', async () => {
    const before = (await adminClients()).length;
    const res = await fetch(`${stack.hydra.publicUrl}/oauth2/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      // What an attacker would send: a scheme our policy refuses, an owner to squat a CIMD URL, a jwks_uri to probe with.
      body: JSON.stringify({ redirect_uris: ['javascript:alert(1)'], owner: 'https://claude.ai/oauth/mcp-oauth-client-metadata', jwks_uri: `${internal.url}/jwks.json` }),
    });
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('Dynamic registration is not enabled');
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const r = await fetch(`${stack.hydra.publicUrl}/oauth2/register/some-client`, { method, headers: { authorization: 'Bearer x' } });
      expect(r.status, `${method} /oauth2/register/{id}`).toBe(404);
    }
    expect((await adminClients()).length).toBe(before);
    // Discovery no longer points anyone at it.
    const discovery = (await (await fetch(`${stack.hydra.publicUrl}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery.registration_endpoint).toBeUndefined();
  });

  it('issue 26 #1: our /register is the way in: a client is created through Hydra’s admin API with our policy only (no owner, metadata, skip_consent, chosen id or secret)', async () => {
    const res = await fetch(`${stack.baseUrl}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'Cursor',
        redirect_uris: ['cursor://anysphere.cursor-mcp/oauth/callback'],
        token_endpoint_auth_method: 'client_secret_post',
        // Fields a client must never set for itself; /register drops them.
        client_id: 'chosen-id',
        client_secret: 'chosen-secret-123',
        owner: 'https://claude.ai/oauth/mcp-oauth-client-metadata',
        metadata: { machine: true, cimd: true },
        skip_consent: true,
        access_token_strategy: 'jwt',
        audience: ['https://elsewhere.example'],
        sector_identifier_uri: `${internal.url}/sector.json`,
        backchannel_logout_uri: `${internal.url}/logout`,
        request_uris: [`${internal.url}/request`],
      }),
    });
    expect(res.status).toBe(201);
    const reg = (await res.json()) as Record<string, unknown>;
    expect(reg.client_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(reg.client_secret).toEqual(expect.any(String));
    expect(reg.client_secret).not.toBe('chosen-secret-123');
    const held = (await (await fetch(`${stack.hydra.adminUrl}/admin/clients/${reg.client_id}`)).json()) as Record<string, unknown>;
    expect(held).toMatchObject({ owner: '', skip_consent: false, audience: [stack.mcpUrl.href, stack.sseUrl.href], redirect_uris: ['cursor://anysphere.cursor-mcp/oauth/callback'] });
    expect(held.metadata ?? {}).toEqual({});
    expect(held.access_token_strategy ?? '').toBe('');
    expect(held.sector_identifier_uri ?? '').toBe('');
    expect(held.backchannel_logout_uri ?? '').toBe('');
    expect(held.request_uris ?? []).toEqual([]);
    expect(internal.hits).toEqual([]);
  });

  it('issue 26 #2: a jwks_uri on 127.0.0.1 is refused at /register (https only, and Hydra refuses private addresses), and nothing is fetched', async () => {
    for (const jwks_uri of [`${internal.url}/jwks.json`, `${internal.url.replace('http:', 'https:')}/jwks.json`]) {
      const res = await fetch(`${stack.baseUrl}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: 'probe', redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri }),
      });
      const body = (await res.json()) as { error: string; error_description: string };
      expect(res.status, jwks_uri).toBe(400);
      expect(body.error).toBe('invalid_client_metadata');
      expect(body.error_description).toMatch(jwks_uri.startsWith('http:') ? /jwks_uri.*https/ : /not allowed|private/i);
    }
    expect(internal.hits).toEqual([]);
  });

  it('issue 26 #2: Hydra’s own admin API refuses a jwks_uri on a private address (clients.http.disallow_private_ip_ranges)', async () => {
    const res = await fetch(`${stack.hydra.adminUrl}/admin/clients`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `${internal.url}/jwks.json` }),
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/Client IP address is not allowed/);
  });

  it('issue 26 #2: a token request whose client keys cannot be fetched gets invalid_client without Hydra’s fetch detail (no status oracle)', async () => {
    // A public host name that never resolves (RFC 2606 .invalid): it passes Hydra's registration check.
    const reg = await fetch(`${stack.baseUrl}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'keys elsewhere', redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://keys.example.invalid/jwks.json' }),
    });
    expect(reg.status).toBe(201);
    const { client_id } = (await reg.json()) as { client_id: string };
    const res = await fetch(`${stack.baseUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x', client_id, client_assertion_type: JWT_BEARER, client_assertion: junkAssertion(client_id) }),
    });
    const body = (await res.json()) as { error: string; error_description?: string; error_hint?: string };
    expect(res.status).toBe(401);
    expect(body.error).toBe('invalid_client');
    const said = JSON.stringify(body);
    expect(said).not.toMatch(/fetch|keys\.example\.invalid|JSON Web Key|lookup|dial|no such host/i);
  });
});

describe('issue 26 #2: Hydra fetches no private address even for a client that predates the setting (real Ory Hydra, restarted)', () => {
  let dir: string;
  let internal: Awaited<ReturnType<typeof internalService>>;
  let hydra: RunningHydra | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-doors-'));
    internal = await internalService();
  });
  afterAll(async () => {
    await hydra?.stop();
    await internal?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (env: Record<string, string>) =>
    startHydra({
      binary: await ensureHydraBinary(),
      dsn: join(dir, 'hydra.sqlite'),
      accessTokenStrategy: 'opaque',
      secretsSystem: 'doors-test-secret-0123456789',
      ...ourPageUrls('http://127.0.0.1:9'),
      env,
    });

  it('with the setting off a junk assertion makes Hydra fetch the loopback jwks_uri; with hydra.yml’s setting it does not', async () => {
    const clientId = 'predates-the-setting';
    hydra = await start({ CLIENTS_HTTP_DISALLOW_PRIVATE_IP_RANGES: 'false' });
    const created = await fetch(`${hydra.adminUrl}/admin/clients`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: clientId, grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `${internal.url}/jwks.json` }),
    });
    expect(created.status).toBe(201);
    const probe = async () =>
      fetch(`${hydra!.publicUrl}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_assertion_type: JWT_BEARER, client_assertion: junkAssertion(clientId) }),
      });
    await probe();
    expect(internal.hits, 'the probe reaches the internal service when the guard is off').toContain('/jwks.json');
    internal.hits.length = 0;
    await hydra.stop();

    hydra = await start({});
    const res = await probe();
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(internal.hits, 'Hydra refused to connect to 127.0.0.1').toEqual([]);
  }, 180_000);
});
