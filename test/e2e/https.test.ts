import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHydraBinary, ourPageUrls, freeLoopbackPort, type RunningHydra, startHydra } from '../../scripts/hydra.js';
import { HSTS_VALUE } from '../../src/app/securityHeaders.js';
import { type RunningServer, startServer } from '../../src/main.js';
import { makeTestCa, type TestCa } from '../support/testCa.js';
import { type FetchWatch, jwtClaims, pagesSeen, watchFetch } from './fetchWatch.js';
import { call, connectAs } from './flow.js';
import { TestOAuthClient } from '../support/oauthClient.js';
import { addUserWithCli, type Stack, type TestUser } from './stack.js';

/**
 * The whole OAuth flow and a tool call over https on loopback, with
 * NODE_ENV=production: our server serves TLS itself (TLS_CERT_FILE,
 * TLS_KEY_FILE), the real Ory Hydra serves its public port over TLS
 * (serve.public.tls) so the issuer is https, and every client here (the SDK
 * client, the person's browser, our server's calls to Hydra) trusts a CA made
 * for this test and nothing else beyond the system's roots. The session
 * secret comes from a file (SESSION_SECRET_FILE). Nothing in the flow may
 * assume http: issuer, redirects, metadata URLs, cookies.
 */
let ca: TestCa;
let dir: string;
let hydra: RunningHydra;
let server: RunningServer;
let base: string;
let env: Record<string, string>;
let user: TestUser;
let previousDispatcher: Dispatcher;
const hydraLog: string[] = [];
let watch: FetchWatch;
const realFetch = globalThis.fetch;
// No rotation grace (hydra.yml's is 30s): a spent refresh token is refused at once, which shows the setting arrived.
const LIFETIMES = { accessToken: '7m', refreshToken: '100h', idToken: '9m', rotationGracePeriod: '0s' };

beforeAll(async () => {
  ca = await makeTestCa(['127.0.0.1', 'localhost']);
  dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-https-'));
  const certFile = join(dir, 'server.pem');
  const keyFile = join(dir, 'server.key');
  const secretFile = join(dir, 'session-secret');
  await writeFile(certFile, ca.serverCert);
  await writeFile(keyFile, ca.serverKey, { mode: 0o600 });
  await writeFile(secretFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  // Every fetch in this test process (the SDK client, the browser, our server's Hydra client) trusts the test CA.
  previousDispatcher = getGlobalDispatcher();
  setGlobalDispatcher(new Agent({ connect: { ca: [...rootCertificates, ca.caPem] } }));
  // Observe (not change) what our server answers: cookies and HSTS.
  watch = watchFetch(() => base);

  const appPort = await freeLoopbackPort();
  base = `https://127.0.0.1:${appPort}`;
  hydra = await startHydra({
    binary: await ensureHydraBinary({ log: (l) => process.stderr.write(`[hydra build] ${l}\n`) }),
    dsn: 'memory',
    accessTokenStrategy: 'jwt',
    ...ourPageUrls(base),
    tokenUrl: `${base}/token`,
    publicTls: { certFile, keyFile },
    // Unusual values, so the test below sees they reach Hydra (npm start passes its HYDRA_*_TTL settings this way).
    tokenLifetimes: LIFETIMES,
    secretsSystem: randomBytes(24).toString('hex'),
    log: (line) => hydraLog.push(line),
  });
  env = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(appPort),
    PUBLIC_BASE_URL: base,
    TLS_CERT_FILE: certFile,
    TLS_KEY_FILE: keyFile,
    SESSION_SECRET_FILE: secretFile,
    HYDRA_PUBLIC_URL: hydra.publicUrl,
    HYDRA_ADMIN_URL: hydra.adminUrl,
    HYDRA_ISSUER: hydra.issuer,
    DATABASE_PATH: join(dir, 'hydra-mcp.sqlite'),
    INTROSPECTION_CACHE_SECONDS: '0',
    METRICS_PORT: 'off',
    LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'silent',
    // The user CLI runs as its own process: Node's own way to trust the CA there.
    NODE_EXTRA_CA_CERTS: ca.caFile,
  };
  server = await startServer(env);
  user = await addUserWithCli(env, 'tls@example.com', 'correct horse battery staple');
}, 180_000);

afterAll(async () => {
  watch?.stop();
  await server?.stop();
  await hydra?.stop();
  if (previousDispatcher) setGlobalDispatcher(previousDispatcher);
  await ca?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

let lifetimesSeen: Record<string, number> | undefined;
let firstClient: TestOAuthClient | undefined;
/** A refresh at our /token (the proxy to Hydra's), as a public client does it. */
const refresh = (oauth: TestOAuthClient, refreshToken: string) =>
  realFetch(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: oauth.clientInformation()!.client_id }),
  });
/** Seconds each token of one sign-in lives: access and ID tokens from their claims, the refresh token from Hydra's introspection. */
async function lifetimesOf(tokens: { access_token: string; refresh_token?: string; id_token?: string }) {
  expect(tokens.refresh_token, 'a refresh token (offline_access)').toBeDefined();
  expect(tokens.id_token, 'an ID token (openid)').toBeDefined();
  const access = jwtClaims(tokens.access_token);
  const id = jwtClaims(tokens.id_token!);
  const res = await realFetch(`${hydra.adminUrl}/admin/oauth2/introspect`, { method: 'POST', body: new URLSearchParams({ token: tokens.refresh_token! }) });
  const refresh = (await res.json()) as { active: boolean; iat: number; exp: number; token_use: string };
  expect(refresh).toMatchObject({ active: true, token_use: 'refresh_token' });
  return { access: access.exp - access.iat, refresh: refresh.exp - refresh.iat, id: id.exp - id.iat };
}

/** What connectAs needs of a stack: the two MCP URLs. */
const stack = () => ({ mcpUrl: new URL(`${base}/mcp`), sseUrl: new URL(`${base}/sse`) }) as Stack;

describe('https end to end (NODE_ENV=production, TLS on our server and on Hydra)', () => {
  it('serves https and names only https URLs in its metadata and 401 challenge', async () => {
    expect(server.url).toBe(base);
    expect(hydra.issuer).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const challenge = await realFetch(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get('www-authenticate')).toContain(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`);
    expect(challenge.headers.get('strict-transport-security')).toBe(HSTS_VALUE);
    const prm = (await (await realFetch(`${base}/.well-known/oauth-protected-resource/mcp`)).json()) as { resource: string; authorization_servers: string[] };
    expect(prm.resource).toBe(`${base}/mcp`);
    for (const as of prm.authorization_servers) expect(as).toMatch(/^https:\/\//);
    const asMeta = (await (await realFetch(`${base}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    const urls = Object.entries(asMeta).filter(([k, v]) => typeof v === 'string' && (k === 'issuer' || k.endsWith('_endpoint') || k.endsWith('_uri')));
    expect(urls.length).toBeGreaterThan(3);
    for (const [k, v] of urls) expect(v, k).toMatch(/^https:\/\//);
  });

  it('runs discovery → registration → sign-in → consent → token → tools/call over https, with Secure cookies and HSTS', async () => {
    const oauth = new TestOAuthClient('http://127.0.0.1:53682/callback');
    const connected = await connectAs(stack(), user, { oauth });
    try {
      const who = await call(connected.client, 'whoami');
      expect(who.isError).toBe(false);
      expect(who.value).toMatchObject({ sub: user.sub });
      // The token is Hydra's, issued by the https issuer, for our https resource.
      const claims = jwtClaims(oauth.tokens()!.access_token);
      expect(claims.iss).toBe(hydra.issuer);
      expect(claims.aud).toContain(`${base}/mcp`);
      lifetimesSeen = await lifetimesOf(oauth.tokens()!);
      firstClient = oauth;
    } finally {
      await connected.close();
    }
    // Every page the person saw, ours and Hydra's, was https; only the client's own loopback redirect is http.
    const pages = pagesSeen(connected.browser.history, oauth.redirectUrl);
    expect(pages.length).toBeGreaterThan(3);
    for (const u of pages) expect(u).toMatch(/^https:\/\//);
    // Our cookies (CSRF seed, at least) are Secure; our answers carry HSTS.
    expect(watch.ourCookies.length).toBeGreaterThan(0);
    for (const c of watch.ourCookies) expect(c, c.split('=')[0]).toMatch(/;\s*Secure/i);
    expect([...watch.ourHsts]).toEqual([HSTS_VALUE]);
    // Nothing went to a plain-http URL but the client's own redirect and Hydra's admin API (loopback only, never public).
    const plain = watch.visited.filter((u) => u.startsWith('http:') && !u.startsWith(oauth.redirectUrl) && !u.startsWith(`${hydra.adminUrl}/`));
    expect(plain).toEqual([]);
    expect(watch.visited.some((u) => u.startsWith(`${hydra.publicUrl}/`)), "Hydra's public port was used, over https").toBe(true);
  });

  it('Hydra rotates refresh tokens with the grace period it was given (0s: a spent one is refused at once)', async () => {
    const oauth = firstClient!;
    const spent = oauth.tokens()!.refresh_token!;
    const first = await refresh(oauth, spent);
    expect(first.status).toBe(200);
    const rotated = (await first.json()) as { refresh_token?: string };
    expect(rotated.refresh_token, 'a new refresh token').toBeDefined();
    expect(rotated.refresh_token).not.toBe(spent);
    const again = await refresh(oauth, spent);
    expect(again.status).toBe(400);
    expect(((await again.json()) as { error: string }).error).toBe('invalid_grant');
  });

  it('Hydra applies the token lifetimes it was given (access 7m, refresh 100h, ID 9m)', () => {
    // Hydra stamps iat and exp from separate clock reads: a second apart under load.
    const expected = { access: 7 * 60, refresh: 100 * 3600, id: 9 * 60 };
    for (const [kind, seconds] of Object.entries(expected)) expect(Math.abs(lifetimesSeen![kind]! - seconds), `${kind}: ${lifetimesSeen![kind]}s`).toBeLessThanOrEqual(2);
  });

  it('the legacy SSE transport works over https too', async () => {
    const connected = await connectAs(stack(), user, { transport: 'sse' });
    try {
      expect((await call(connected.client, 'whoami')).value).toMatchObject({ sub: user.sub });
    } finally {
      await connected.close();
    }
  });
});
