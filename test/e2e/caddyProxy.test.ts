import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lookup as dnsLookup } from 'node:dns';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Agent, getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHydraBinary, ourPageUrls, freeLoopbackPort, type RunningHydra, startHydra } from '../../scripts/hydra.js';
import { HSTS_VALUE } from '../../src/app/securityHeaders.js';
import { type RunningServer, startServer } from '../../src/main.js';
import { type FetchWatch, jwtClaims, pagesSeen, watchFetch } from './fetchWatch.js';
import { call, connectAs } from './flow.js';
import { TestOAuthClient } from '../support/oauthClient.js';
import { addUserWithCli, type Stack, type TestUser } from './stack.js';

/**
 * The production shape of docker-compose.yml, on loopback: the real Caddy
 * (Debian's package; `.ci/run` installs it) runs the repo's docker/Caddyfile
 * unchanged, terminating TLS with certificates from its own local CA for
 * mcp.localhost and auth.localhost, in front of our server (plain http,
 * TRUST_PROXY=1, NODE_ENV=production) and the real Ory Hydra (plain http, its
 * issuer https://auth.localhost:<port>). Only the Caddyfile's ports and
 * upstreams are set by environment, as compose leaves them at their defaults.
 * Every client here (the SDK client, the person's browser, our server's calls
 * to Hydra's public API) reaches the two names through Caddy, trusting Caddy's
 * root and nothing else beyond the system's roots.
 */
const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
let dir: string;
let caddy: ChildProcess | undefined;
const caddyLog: string[] = [];
let hydra: RunningHydra;
let server: RunningServer;
let base: string;
let issuer: string;
let httpPort: number;
let kratosProxyPort: number;
let user: TestUser;
let previousDispatcher: Dispatcher;
const realFetch = globalThis.fetch;
/** What our server answered through the proxy: cookies, HSTS; and every URL fetched. */
let watch: FetchWatch;

// *.localhost names are loopback (RFC 6761 §6.3); this machine's resolver does not say so, the test does.
const lookup: LookupFunction = (hostname, options, callback) => {
  if (!hostname.endsWith('.localhost')) return dnsLookup(hostname, options, callback);
  if (options.all) return (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
  callback(null, '127.0.0.1', 4);
};

async function waitFor<T>(what: string, attempt: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await attempt().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`${what} not ready after ${ms} ms; Caddy said:\n${caddyLog.slice(-20).join('\n')}`);
    await sleep(200);
  }
}

beforeAll(async () => {
  if (spawnSync('caddy', ['version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('Caddy is not installed: `apt-get install caddy` (.ci/run installs it). This test runs the real proxy, never a stand-in.');
  }
  dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-caddy-'));
  const [httpsPort, adminPort, appPort] = await Promise.all([1, 2, 3].map(() => freeLoopbackPort()));
  [httpPort, kratosProxyPort] = await Promise.all([1, 2].map(() => freeLoopbackPort())) as [number, number];
  base = `https://mcp.localhost:${httpsPort}`;
  issuer = `https://auth.localhost:${httpsPort}`;

  hydra = await startHydra({
    binary: await ensureHydraBinary({ log: (l) => process.stderr.write(`[hydra build] ${l}\n`) }),
    dsn: 'memory',
    accessTokenStrategy: 'jwt',
    ...ourPageUrls(base),
    tokenUrl: `${base}/token`,
    secretsSystem: randomBytes(24).toString('hex'),
    // As compose sets them: the issuer is Hydra’s public API through the proxy.
    env: { URLS_SELF_ISSUER: issuer, URLS_SELF_PUBLIC: issuer },
  });

  const caddyData = join(dir, 'caddy-data');
  caddy = spawn('caddy', ['run', '--config', root('docker/Caddyfile'), '--adapter', 'caddyfile'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      XDG_DATA_HOME: caddyData,
      XDG_CONFIG_HOME: join(dir, 'caddy-config'),
      MCP_DOMAIN: 'mcp.localhost',
      AUTH_DOMAIN: 'auth.localhost',
      CADDY_BIND: '127.0.0.1',
      CADDY_HTTPS_PORT: String(httpsPort),
      CADDY_HTTP_PORT: String(httpPort),
      CADDY_ADMIN: `127.0.0.1:${adminPort}`,
      KRATOS_PROXY_PORT: String(kratosProxyPort),
      APP_UPSTREAM: `127.0.0.1:${appPort}`,
      HYDRA_UPSTREAM: new URL(hydra.publicUrl).host,
      // No Kratos here: its site answers 502, as compose's does without the profile.
      KRATOS_UPSTREAM: '127.0.0.1:9',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [caddy.stdout!, caddy.stderr!]) stream.on('data', (b: Buffer) => caddyLog.push(...b.toString().trim().split('\n')));
  const caRoot = join(caddyData, 'caddy/pki/authorities/local/root.crt');
  await waitFor("Caddy's local CA", async () => (existsSync(caRoot) ? true : undefined));

  // Every fetch in this process trusts Caddy's root and finds *.localhost on loopback.
  previousDispatcher = getGlobalDispatcher();
  setGlobalDispatcher(new Agent({ connect: { ca: [...rootCertificates, readFileSync(caRoot, 'utf8')], lookup } }));
  watch = watchFetch(() => base);
  // Hydra through the proxy, with Caddy's certificate for auth.localhost.
  await waitFor('Hydra through Caddy', async () => ((await realFetch(`${issuer}/.well-known/openid-configuration`)).ok ? true : undefined));

  const env = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(appPort),
    PUBLIC_BASE_URL: base,
    TRUST_PROXY: '1',
    SESSION_SECRET: randomBytes(32).toString('base64url'),
    HYDRA_PUBLIC_URL: issuer,
    HYDRA_ADMIN_URL: hydra.adminUrl,
    HYDRA_ISSUER: issuer,
    DATABASE_PATH: join(dir, 'hydra-mcp.sqlite'),
    METRICS_PORT: 'off',
    LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'silent',
  };
  server = await startServer(env);
  await waitFor('our server through Caddy', async () => ((await realFetch(`${base}/healthz`)).ok ? true : undefined));
  user = await addUserWithCli(env, 'caddy@example.com', 'correct horse battery staple');
}, 180_000);

afterAll(async () => {
  watch?.stop();
  await server?.stop();
  if (caddy && caddy.exitCode === null) {
    const exited = new Promise((resolve) => caddy!.once('exit', resolve));
    caddy.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
  }
  await hydra?.stop();
  if (previousDispatcher) setGlobalDispatcher(previousDispatcher);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const stack = () => ({ mcpUrl: new URL(`${base}/mcp`), sseUrl: new URL(`${base}/sse`) }) as Stack;

describe('behind the real Caddy with the repo Caddyfile (TLS at the proxy, TRUST_PROXY=1, NODE_ENV=production)', () => {
  it('names the public https URLs, not the plain-http address it listens on, in its metadata and 401 challenge', async () => {
    const challenge = await realFetch(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get('www-authenticate')).toContain(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`);
    expect(challenge.headers.get('strict-transport-security')).toBe(HSTS_VALUE);
    const prm = (await (await realFetch(`${base}/.well-known/oauth-protected-resource/mcp`)).json()) as { resource: string; authorization_servers: string[] };
    expect(prm.resource).toBe(`${base}/mcp`);
    const asMeta = (await (await realFetch(`${base}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(asMeta.token_endpoint).toBe(`${base}/token`);
    const urls = Object.entries(asMeta).filter(([k, v]) => typeof v === 'string' && (k === 'issuer' || k.endsWith('_endpoint') || k.endsWith('_uri')));
    expect(urls.length).toBeGreaterThan(3);
    for (const [k, v] of urls) expect(new URL(v as string).origin, k).toMatch(/^https:\/\/(mcp|auth)\.localhost:\d+$/);
  });

  it('runs discovery → registration → sign-in → consent → token → tools/call through the proxy, with Secure cookies and HSTS', async () => {
    const oauth = new TestOAuthClient('http://127.0.0.1:53682/callback');
    const connected = await connectAs(stack(), user, { oauth });
    try {
      const who = await call(connected.client, 'whoami');
      expect(who.isError).toBe(false);
      expect(who.value).toMatchObject({ sub: user.sub });
      const claims = jwtClaims(oauth.tokens()!.access_token);
      expect(claims.iss).toBe(issuer);
      expect(claims.aud).toContain(`${base}/mcp`);
    } finally {
      await connected.close();
    }
    // Every page the person saw, ours and Hydra's, came through the proxy over https.
    const pages = pagesSeen(connected.browser.history, oauth.redirectUrl);
    expect(pages.length).toBeGreaterThan(3);
    for (const u of pages) expect(new URL(u).origin, u).toMatch(/^https:\/\/(mcp|auth)\.localhost:\d+$/);
    expect(watch.ourCookies.length).toBeGreaterThan(0);
    for (const c of watch.ourCookies) expect(c, c.split('=')[0]).toMatch(/;\s*Secure/i);
    expect([...watch.ourHsts]).toEqual([HSTS_VALUE]);
    // Nothing went to a plain-http URL but the client's own redirect and Hydra's admin API (loopback, never public).
    expect(watch.visited.filter((u) => u.startsWith('http:') && !u.startsWith(oauth.redirectUrl) && !u.startsWith(`${hydra.adminUrl}/`))).toEqual([]);
  });

  it('redirects plain http to https at the proxy, and the Kratos name without Kratos answers 502, never our pages', async () => {
    const plain = await realFetch(`http://mcp.localhost:${httpPort}/login?x=1`, { redirect: 'manual' });
    expect(plain.status).toBe(308);
    // Caddy 2.6 names no port in this redirect (compose serves 443, where none is needed).
    expect(plain.headers.get('location')).toMatch(/^https:\/\/mcp\.localhost(:\d+)?\/login\?x=1$/);
    const kratos = await realFetch(`https://mcp.localhost:${kratosProxyPort}/self-service/login/browser`, { redirect: 'manual' });
    expect(kratos.status).toBe(502);
  });
});
