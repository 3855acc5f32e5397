import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHydra, createHydraAdmin, HydraError } from '../../src/hydra/index.js';

/**
 * The error and timeout policy of src/hydra/ against `stubHydra`, a local
 * HTTP server answering as Hydra would (or not at all). The real Hydra is
 * exercised by the e2e suites; these cases are the ones it will not produce
 * on demand: a hang, a refused connection, each error body shape.
 */
type Route = (req: IncomingMessage, res: ServerResponse, body: string) => void;
let stubHydra: Server;
let base: URL;
const routes = new Map<string, Route>();
const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];

beforeAll(async () => {
  stubHydra = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const route = routes.get(`${req.method} ${new URL(req.url!, 'http://x').pathname}`);
      if (route) route(req, res, body);
      else res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 404, status: 'Not Found', message: 'no route' } }));
    });
  });
  await new Promise<void>((r) => stubHydra.listen(0, '127.0.0.1', r));
  base = new URL(`http://127.0.0.1:${(stubHydra.address() as AddressInfo).port}`);
});
afterAll(() => new Promise<void>((r) => {
  stubHydra.closeAllConnections();
  stubHydra.close(() => r());
}));

const json = (status: number, body: unknown): Route => (_req, res) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

describe('src/hydra error policy (stubHydra)', () => {
  it('an admin error body {error:{status,message,reason}} becomes HydraError with status, code and description', async () => {
    routes.set('GET /admin/oauth2/auth/requests/login', json(410, { error: { code: 410, status: 'Gone', message: 'The request has been used', reason: 'handled' } }));
    const admin = createHydraAdmin({ adminUrl: base });
    const err = await admin.getLoginRequest('c1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HydraError);
    expect(err).toMatchObject({ status: 410, error: 'gone', description: 'The request has been used: handled', unavailable: false });
  });

  it('an OAuth error body {error, error_description} is kept as sent', async () => {
    routes.set('POST /admin/oauth2/introspect', json(400, { error: 'invalid_request', error_description: 'token missing' }));
    const err = await createHydraAdmin({ adminUrl: base }).introspect('t').catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, error: 'invalid_request', description: 'token missing' });
  });

  it('a 5xx is unavailable; an unknown client (401 or 404) is undefined, not an error', async () => {
    routes.set('GET /admin/clients/broken', json(500, { error: { status: 'Internal Server Error', message: 'db down' } }));
    routes.set('GET /admin/clients/gone', json(401, { error: { status: 'Unauthorized', message: 'Unable to locate the resource' } }));
    const admin = createHydraAdmin({ adminUrl: base });
    await expect(admin.getClient('broken')).rejects.toMatchObject({ status: 500, unavailable: true });
    expect(await admin.getClient('gone')).toBeUndefined();
    expect(await admin.getClient('missing')).toBeUndefined();
  });

  it('a Hydra that does not answer within the timeout is HydraError status 0 saying so', async () => {
    routes.set('POST /admin/oauth2/introspect', () => {}); // never answers
    const started = Date.now();
    const err = await createHydraAdmin({ adminUrl: base, timeoutMs: 150 }).introspect('t').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HydraError);
    expect(err).toMatchObject({ status: 0, error: 'temporarily_unavailable', unavailable: true });
    expect((err as HydraError).description).toBe('Hydra did not answer within 150 ms');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a refused connection is HydraError status 0 on both ports', async () => {
    const closed = new URL('http://127.0.0.1:1');
    const hydra = createHydra({ adminUrl: closed, publicUrl: closed });
    await expect(hydra.admin.introspect('t')).rejects.toMatchObject({ status: 0, description: 'Hydra unreachable' });
    await expect(hydra.public.forward('token', new URLSearchParams({ grant_type: 'x' }))).rejects.toMatchObject({ status: 0 });
    await expect(hydra.public.adminReady()).rejects.toBeInstanceOf(HydraError);
  });

  it('the injected fetch carries every call, and each is reported once with ids replaced for metrics', async () => {
    routes.set('GET /admin/clients/abc', json(200, { client_id: 'abc' }));
    routes.set('GET /health/ready', json(200, { status: 'ok' }));
    const calls: string[] = [];
    const reported: [string, boolean][] = [];
    const hydra = createHydra({
      adminUrl: base,
      publicUrl: base,
      fetch: (input, init) => {
        calls.push(String(input));
        return fetch(input, init);
      },
      onCall: (call, seconds, ok) => {
        expect(seconds).toBeGreaterThanOrEqual(0);
        reported.push([call, ok]);
      },
    });
    expect(await hydra.admin.getClient('abc')).toEqual({ client_id: 'abc' });
    expect(await hydra.admin.getClient('nobody')).toBeUndefined();
    await hydra.public.adminReady();
    expect(calls).toEqual([`${base.origin}/admin/clients/abc`, `${base.origin}/admin/clients/nobody`, `${base.origin}/health/ready`]);
    expect(reported).toEqual([['GET /admin/clients/:id', true], ['GET /admin/clients/:id', false], ['GET /health/ready', true]]);
  });

  it('forward passes the client credentials as presented and returns Hydra status and body verbatim', async () => {
    routes.set('POST /oauth2/token', json(400, { error: 'invalid_grant', error_description: 'code spent' }));
    const hydra = createHydra({ adminUrl: base, publicUrl: base });
    seen.length = 0;
    const form = new URLSearchParams({ grant_type: 'authorization_code', code: 'c', client_assertion: 'jwt' });
    const answer = await hydra.public.forward('token', form, 'Basic eDp5');
    expect(answer).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: 'code spent' } });
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/oauth2/token', body: form.toString() });
    expect(seen[0]!.headers.authorization).toBe('Basic eDp5');
    expect(seen[0]!.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('a client refused by Hydra’s admin API is a HydraError carrying its error code', async () => {
    routes.set('POST /admin/clients', json(400, { error: 'invalid_client_metadata', error_description: 'bad redirect' }));
    const hydra = createHydra({ adminUrl: base, publicUrl: base });
    await expect(hydra.admin.createClient({ redirect_uris: ['x'] })).rejects.toMatchObject({ status: 400, error: 'invalid_client_metadata', description: 'bad redirect' });
  });
});
