import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHydraBinary, ourPageUrls, freeLoopbackPort, type RunningHydra, startHydra } from '../../../scripts/hydra.js';
import { ensureKratosBinary } from '../../../scripts/kratos.js';
import { Browser } from '../../support/browser.js';

/**
 * `npm start` with IDENTITY=kratos, as a person runs it: scripts/start.ts in
 * its own process, building (cached) and starting the real Ory Kratos on a
 * SQLite file in HYDRA_DATA_DIR, then our server wired to it. Hydra is one
 * this test starts and names with HYDRA_PUBLIC_URL / HYDRA_ADMIN_URL (the
 * embedded Hydra's ports are fixed at 4444/4445, which a test must not
 * assume free); the Kratos part of the start path is the one under test.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CALLBACK = 'http://127.0.0.1:53682/callback';

describe('npm start with IDENTITY=kratos (scripts/start.ts, real Kratos and Hydra)', () => {
  let dir: string;
  let hydra: RunningHydra;
  let start: ChildProcess;
  let exited: Promise<number | null>;
  const output: string[] = [];
  let base: string;
  let kratosPublicPort: number;
  let kratosAdminPort: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-start-'));
    // Build (or find cached) both binaries here, so the start below is not timed with a build.
    await ensureKratosBinary();
    const appPort = await freeLoopbackPort();
    base = `http://127.0.0.1:${appPort}`;
    hydra = await startHydra({
      binary: await ensureHydraBinary(),
      dsn: 'memory',
      accessTokenStrategy: 'opaque',
      ...ourPageUrls(base),
      tokenUrl: `${base}/token`,
      secretsSystem: randomBytes(24).toString('hex'),
    });
    kratosPublicPort = await freeLoopbackPort();
    kratosAdminPort = await freeLoopbackPort();
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      ...(process.env.HYDRA_MCP_CACHE ? { HYDRA_MCP_CACHE: process.env.HYDRA_MCP_CACHE } : {}),
      ...(process.env.GOCACHE ? { GOCACHE: process.env.GOCACHE } : {}),
      ...(process.env.GOMODCACHE ? { GOMODCACHE: process.env.GOMODCACHE } : {}),
      IDENTITY: 'kratos',
      HOST: '127.0.0.1',
      PORT: String(appPort),
      HYDRA_PUBLIC_URL: hydra.publicUrl,
      HYDRA_ADMIN_URL: hydra.adminUrl,
      HYDRA_ISSUER: hydra.issuer,
      HYDRA_DATA_DIR: join(dir, 'data'),
      DATABASE_PATH: join(dir, 'data', 'hydra-mcp.sqlite'),
      KRATOS_PUBLIC_PORT: String(kratosPublicPort),
      KRATOS_ADMIN_PORT: String(kratosAdminPort),
      METRICS_PORT: 'off',
      LOG_LEVEL: 'warn',
    };
    start = spawn(join(ROOT, 'node_modules/.bin/tsx'), ['scripts/start.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    exited = new Promise((resolve) => start.once('exit', (code) => resolve(code)));
    const collect = (d: Buffer) => output.push(...d.toString().split('\n').filter(Boolean));
    start.stderr!.on('data', collect);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`npm start did not come up in time:\n${output.join('\n')}`)), 90_000);
      start.stdout!.on('data', (d: Buffer) => {
        collect(d);
        // The banner's last line: the lines before it may arrive in an earlier or the same chunk.
        if (output.some((l) => l.includes('Inspector:'))) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`npm start exited (${code}) before it was up:\n${output.join('\n')}`));
      });
    });
  });

  afterAll(async () => {
    if (start?.exitCode === null) {
      start.kill('SIGKILL');
      await exited;
    }
    await hydra?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('starts Kratos on the configured ports with a migrated SQLite file beside Hydra’s, and says so', () => {
    const text = output.join('\n');
    expect(text).toContain(`Ory Kratos v1.3.1 is up: public http://127.0.0.1:${kratosPublicPort}, admin http://127.0.0.1:${kratosAdminPort}`);
    expect(text).toContain('Accounts live in Ory Kratos');
    expect(text).not.toContain('npm run user -- add');
    expect(existsSync(join(dir, 'data', 'kratos.sqlite'))).toBe(true);
    // Kratos's secrets are made once and kept private, like Hydra's system secret.
    expect(statSync(join(dir, 'data', 'kratos-secrets.json')).mode & 0o777).toBe(0o600);
  });

  it('sends /login into Kratos’s browser flow, rendered by our page, and a person registers through to consent', async () => {
    const created = await fetch(`${hydra.adminUrl}/admin/clients`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        redirect_uris: [CALLBACK],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        scope: 'openid',
        token_endpoint_auth_method: 'none',
      }),
    });
    expect(created.status).toBe(201);
    const { client_id } = (await created.json()) as { client_id: string };
    const auth = new URL(`${hydra.publicUrl}/oauth2/auth`);
    auth.search = new URLSearchParams({
      client_id,
      response_type: 'code',
      redirect_uri: CALLBACK,
      scope: 'openid',
      state: 'state-for-npm-start',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWZ6D6VlJ7tDk',
      code_challenge_method: 'S256',
    }).toString();

    const browser = new Browser();
    const atClient = (u: URL) => u.href.startsWith(CALLBACK);
    let page = await browser.open(auth.href, atClient);
    // Hydra → our /login → Kratos's /self-service/login/browser → our /kratos/login?flow=…
    expect(browser.history.some((h) => h.startsWith(`GET ${base}/login?login_challenge=`))).toBe(true);
    expect(browser.history.some((h) => h.startsWith(`GET http://127.0.0.1:${kratosPublicPort}/self-service/login/browser?`))).toBe(true);
    expect(page.url.origin + page.url.pathname, page.text()).toBe(`${base}/kratos/login`);
    expect(page.doc.querySelector('form')!.getAttribute('action')).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${kratosPublicPort}/self-service/login\\?flow=`));

    const register = page.doc.querySelectorAll('a').find((a) => a.textContent.trim() === 'Create an account')!;
    page = await browser.open(new URL(register.getAttribute('href')!, page.url).href, atClient);
    expect(page.url.pathname, page.text()).toBe('/kratos/registration');
    page = await page.submit('Sign up', { fill: { Email: 'grace@example.com', Name: 'Grace Hopper', Password: 'cobol compiler 1959' } }, atClient);
    expect(page.url.pathname, page.text()).toBe('/consent');
    expect(page.text()).toContain('grace@example.com');
    const back = await page.submit('Allow', {}, atClient);
    expect(back.url.searchParams.get('code')).toBeTruthy();
    expect(back.url.searchParams.get('state')).toBe('state-for-npm-start');
  });

  it('stops Kratos with the server on SIGTERM (Ctrl-C)', async () => {
    const admin = `http://127.0.0.1:${kratosAdminPort}/admin/health/ready`;
    expect((await fetch(admin)).status).toBe(200);
    start.kill('SIGTERM');
    expect(await exited).toBe(0);
    await expect(fetch(admin, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
    await expect(fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
  }, 30_000);
});
