import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENV_KEYS, loadConfig } from '../../src/config/config.js';
import { loadStartConfig, START_ENV_KEYS } from '../../src/config/startConfig.js';
import { TRACING_ENV_KEYS } from '../../src/tracing/settings.js';
import { compose, interpolate, kratosGoVersion, root } from './composeFile.js';

/** `docker compose` needs its CLI plugin; where it is missing, the file is checked by reading it alone. */
const hasComposePlugin = spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0;
// Read by `npm start` and hydra/build.sh only, not by the server.
const START_ONLY_KEYS = START_ENV_KEYS;
// Read by Node itself, not by our config.
const NODE_KEYS = ['NODE_EXTRA_CA_CERTS'];
/** The app's environment with each /run/secrets/<name> path pointing at the file compose mounts there. */
const withSecretFiles = (env: Record<string, string>, files: Record<string, string> = {}) =>
  Object.fromEntries(
    Object.entries(env).map(([k, v]) => {
      const name = /^\/run\/secrets\/(.+)$/.exec(v)?.[1];
      return [k, name ? (files[name] ?? root(compose.secrets![name]!.file)) : v];
    }),
  );

/** Docker cannot run here: the compose file is held to the config schema by reading it. */
describe('docker-compose.yml and .env.example agree with the config schema', () => {
  it("the app service sets only variables the server reads, and they validate", () => {
    const env = withSecretFiles(interpolate(compose.services.app!.environment!));
    expect(Object.keys(env).filter((k) => !ENV_KEYS.includes(k) && !NODE_KEYS.includes(k))).toEqual([]);
    // Valid as a whole, except for the placeholders production mode refuses on purpose.
    expect(loadConfig({ ...env, NODE_ENV: 'development' }).identity).toEqual({ kind: 'builtin' });
    expect(() => loadConfig({ ...env, NODE_ENV: 'production' })).toThrow('placeholder');
    // `IDENTITY=kratos docker compose --profile kratos up`: the same app, signing in with Kratos.
    const withKratos = loadConfig({ ...withSecretFiles(interpolate(compose.services.app!.environment!, { IDENTITY: 'kratos' })), NODE_ENV: 'development' });
    expect(withKratos.identity).toMatchObject({ kind: 'kratos', publicUrl: new URL('https://mcp.localhost:4433'), adminUrl: new URL('http://127.0.0.1:4434') });
  });

  it('.env.example lists every variable the server reads, and nothing unknown', () => {
    const listed = [...readFileSync(root('.env.example'), 'utf8').matchAll(/^# ([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!);
    expect(ENV_KEYS.filter((k) => !listed.includes(k))).toEqual([]);
    expect(listed.filter((k) => !ENV_KEYS.includes(k) && !START_ONLY_KEYS.includes(k) && !TRACING_ENV_KEYS.includes(k))).toEqual([]);
    // The standard OpenTelemetry variables tracing reads (src/tracing/settings.ts), every one listed.
    expect(TRACING_ENV_KEYS.filter((k) => !listed.includes(k))).toEqual([]);
  });

  it("Hydra's admin port is not published, and Hydra's image is the version the Go build uses", () => {
    const hydra = compose.services.hydra!;
    expect((hydra.ports ?? []).some((p) => p.includes('4445'))).toBe(false);
    const goVersion = /github\.com\/ory\/hydra\/v2 (v[\d.]+)/.exec(readFileSync(root('hydra/go.mod'), 'utf8'))![1];
    expect(hydra.image).toBe(`oryd/hydra:${goVersion}`);
    expect(compose.services['hydra-migrate']!.image).toBe(`oryd/hydra:${goVersion}`);
  });
});

describe('docker-compose.yml: Ory Kratos, opt-in (profile "kratos")', () => {
  const kratos = compose.services.kratos!;
  const migrate = compose.services['kratos-migrate']!;

  it('has kratos and kratos-migrate only under the profile, so plain `docker compose up` stays builtin', () => {
    expect(kratos.profiles).toEqual(['kratos']);
    expect(migrate.profiles).toEqual(['kratos']);
    for (const [name, service] of Object.entries(compose.services)) {
      if (!name.startsWith('kratos')) expect(service.profiles, name).toBeUndefined();
    }
    expect(compose.services.app!.environment!.IDENTITY).toBe('${IDENTITY:-builtin}');
  });

  it('uses the official image of the version the Go build uses (kratos/go.mod)', () => {
    expect(kratos.image).toBe(`oryd/kratos:${kratosGoVersion()}`);
    expect(migrate.image).toBe(`oryd/kratos:${kratosGoVersion()}`);
  });

  it('migrates first, as a one-shot, on its own database of the shared PostgreSQL', () => {
    expect(migrate.command).toMatch(/^migrate sql -e --yes --config /);
    expect(kratos.command).toMatch(/^serve /);
    expect(kratos.depends_on!['kratos-migrate']).toEqual({ condition: 'service_completed_successfully' });
    expect(migrate.depends_on!.postgres).toEqual({ condition: 'service_healthy' });
    const dsn = new URL(migrate.environment!.DSN!);
    expect(kratos.environment!.DSN).toBe(dsn.href);
    expect([dsn.protocol, dsn.hostname, dsn.port, dsn.pathname, dsn.username]).toEqual(['postgres:', 'postgres', '5432', '/kratos', 'kratos']);
    // Not Hydra's database, and not ours; docker/postgres-init.sql creates its role and database.
    expect(dsn.pathname).not.toBe(new URL(compose.services.hydra!.environment!.DSN!).pathname);
    const init = readFileSync(root('docker/postgres-init.sql'), 'utf8');
    expect(init).toContain(`CREATE ROLE kratos LOGIN PASSWORD '${decodeURIComponent(dsn.password)}'`);
    expect(init).toContain('CREATE DATABASE kratos OWNER kratos');
  });

  it('mounts its config from kratos/ and listens where the app expects', () => {
    for (const s of [kratos, migrate]) {
      expect(s.volumes).toContain('./kratos/kratos.yml:/etc/config/kratos/kratos.yml:ro');
      expect(s.volumes).toContain('./kratos/identity.schema.json:/etc/config/kratos/identity.schema.json:ro');
    }
    const env = kratos.environment!;
    const app = compose.services.app!.environment!;
    expect(env.SERVE_PUBLIC_BASE_URL).toBe(`${app.KRATOS_PUBLIC_URL}/`);
    expect(env.SERVE_ADMIN_BASE_URL).toBe(`${app.KRATOS_ADMIN_URL}/`);
    expect(env.SELFSERVICE_FLOWS_LOGIN_UI_URL).toBe(`${app.PUBLIC_BASE_URL}/kratos/login`);
    expect(env.SECRETS_CIPHER).toHaveLength(32);
  });

  it("publishes Kratos's public port for browsers and never its admin port", () => {
    // Kratos runs in the app's network namespace: one URL for the browser and the app.
    expect(kratos.network_mode).toBe('service:app');
    expect(kratos.ports).toBeUndefined();
    // Through the TLS proxy, on the MCP name's port 4433 (docker/Caddyfile).
    expect(compose.services.caddy!.ports).toContain('127.0.0.1:4433:4433');
    expect(readFileSync(root('docker/Caddyfile'), 'utf8')).toMatch(/\{\$MCP_DOMAIN:mcp\.localhost\}:\{\$KRATOS_PROXY_PORT:4433\} \{\s*reverse_proxy \{\$KRATOS_UPSTREAM:app:4433\}\s*\}/);
    expect(kratos.environment!.SERVE_ADMIN_HOST).toBe('127.0.0.1');
    for (const [name, service] of Object.entries(compose.services)) {
      expect((service.ports ?? []).some((p) => p.includes('4434')), name).toBe(false);
    }
  });

  it.runIf(hasComposePlugin)('`docker compose config` accepts the file with and without the profile (runs only where the compose CLI plugin is installed)', () => {
    const services = (args: string[]) =>
      execFileSync('docker', ['compose', '-f', root('docker-compose.yml'), ...args, 'config', '--services'], { encoding: 'utf8' }).trim().split('\n').sort();
    expect(services([])).not.toContain('kratos');
    expect(services(['--profile', 'kratos'])).toEqual(expect.arrayContaining(['kratos', 'kratos-migrate']));
  });
});

describe('docker-compose.yml: production shape (TLS proxy in front, Docker secrets, token lifetimes)', () => {
  const services = compose.services;
  const caddyfile = readFileSync(root('docker/Caddyfile'), 'utf8');
  const app = () => interpolate(services.app!.environment!);

  it('puts the official Caddy image in front, with its config from the repo, and nothing else publishes a port', () => {
    const caddy = services.caddy!;
    expect(caddy.image).toMatch(/^caddy:2\.\d+$/);
    expect(caddy.volumes).toContain('./docker/Caddyfile:/etc/caddy/Caddyfile:ro');
    // Only the names: the Caddyfile's ports, bind address and upstreams keep their defaults (the proxy test sets its own).
    expect(Object.keys(caddy.environment ?? {}).sort()).toEqual(['AUTH_DOMAIN', 'MCP_DOMAIN']);
    expect(caddy.ports).toEqual(expect.arrayContaining(['127.0.0.1:443:443', '127.0.0.1:80:80']));
    for (const [name, service] of Object.entries(services)) if (name !== 'caddy') expect(service.ports, name).toBeUndefined();
    // Each public name goes to its service's plain-http port on the internal network.
    expect(caddyfile).toMatch(/^\{\$MCP_DOMAIN:mcp\.localhost\} \{\s*reverse_proxy \{\$APP_UPSTREAM:app:3000\}\s*\}/m);
    expect(caddyfile).toMatch(/^\{\$AUTH_DOMAIN:auth\.localhost\} \{\s*reverse_proxy \{\$HYDRA_UPSTREAM:hydra:4444\}\s*\}/m);
    // The app reaches Hydra's public API at its issuer name: the proxy answers to that name inside the network.
    const aliases = (caddy.networks as unknown as { internal: { aliases: string[] } }).internal.aliases.map((a) => interpolate({ a }).a);
    expect(aliases).toEqual(expect.arrayContaining([new URL(app().PUBLIC_BASE_URL!).hostname, new URL(app().HYDRA_PUBLIC_URL!).hostname]));
    expect(services.app!.depends_on!.caddy).toEqual({ condition: 'service_healthy' });
  });

  it('the app believes exactly one proxy hop and names only https public URLs', () => {
    const env = app();
    expect(env.TRUST_PROXY).toBe('1');
    for (const k of ['PUBLIC_BASE_URL', 'HYDRA_PUBLIC_URL', 'HYDRA_ISSUER']) expect(env[k], k).toMatch(/^https:\/\//);
    // The admin API stays on the internal network, never through the proxy.
    expect(env.HYDRA_ADMIN_URL).toBe('http://hydra:4445');
    expect(caddyfile).not.toContain('4445');
  });

  it('reads SESSION_SECRET and DATABASE_URL from Docker secrets: production starts with real ones, refuses the shipped placeholders', () => {
    const env = app();
    expect(env.SESSION_SECRET).toBeUndefined();
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.SESSION_SECRET_FILE).toBe('/run/secrets/session_secret');
    expect(env.DATABASE_URL_FILE).toBe('/run/secrets/database_url');
    expect(services.app!.secrets).toEqual(['session_secret', 'database_url']);
    // The shipped files hold placeholders: NODE_ENV=production (the image's) refuses them, naming the variable.
    expect(() => loadConfig({ ...withSecretFiles(env), NODE_ENV: 'production' })).toThrow(/SESSION_SECRET: is still a placeholder[\s\S]*DATABASE_URL: the password is still a placeholder/);
    // The shipped database password is the one docker/postgres-init.sql gives the app's role.
    const url = new URL(readFileSync(root(compose.secrets!.database_url!.file), 'utf8').trim());
    expect(readFileSync(root('docker/postgres-init.sql'), 'utf8')).toContain(`CREATE ROLE ${url.username} LOGIN PASSWORD '${decodeURIComponent(url.password)}'`);
    // With real values in the files, the production configuration is accepted as a whole.
    const dir = mkdtempSync(join(tmpdir(), 'hydra-mcp-compose-'));
    try {
      const files = { session_secret: join(dir, 'session_secret'), database_url: join(dir, 'database_url') };
      writeFileSync(files.session_secret, `${'s'.repeat(20)}${Date.now()}${'t'.repeat(20)}\n`);
      writeFileSync(files.database_url, 'postgres://hydra_mcp:a-real-password@postgres:5432/hydra_mcp\n');
      const c = loadConfig({ ...withSecretFiles(env, files), NODE_ENV: 'production' });
      expect(c.publicBaseUrl.href).toBe('https://mcp.localhost/');
      expect(c.trustProxy).toBe(1);
      expect(c.database).toMatchObject({ kind: 'postgres', url: 'postgres://hydra_mcp:a-real-password@postgres:5432/hydra_mcp' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs Hydra strict (no --dev) with the https issuer the app expects, and the lifetimes of hydra/hydra.yml', () => {
    const hydra = interpolate(services.hydra!.environment!);
    expect(services.hydra!.command).not.toContain('--dev');
    expect(hydra.URLS_SELF_ISSUER).toBe(app().HYDRA_ISSUER);
    expect(hydra.URLS_LOGIN).toBe(`${app().PUBLIC_BASE_URL}/login`);
    const yml = parse(readFileSync(root('hydra/hydra.yml'), 'utf8')) as { ttl: Record<string, string>; oauth2: { grant: { refresh_token: { rotation_grace_period: string } } } };
    expect([hydra.TTL_ACCESS_TOKEN, hydra.TTL_REFRESH_TOKEN, hydra.TTL_ID_TOKEN]).toEqual([yml.ttl.access_token, yml.ttl.refresh_token, yml.ttl.id_token]);
    expect(hydra.OAUTH2_GRANT_REFRESH_TOKEN_ROTATION_GRACE_PERIOD).toBe(yml.oauth2.grant.refresh_token.rotation_grace_period);
    // And those are npm start's documented defaults.
    const defaults = loadStartConfig({}).tokenLifetimes;
    expect([defaults.accessToken, defaults.refreshToken, defaults.idToken, defaults.rotationGracePeriod]).toEqual([
      yml.ttl.access_token,
      yml.ttl.refresh_token,
      yml.ttl.id_token,
      yml.oauth2.grant.refresh_token.rotation_grace_period,
    ]);
  });
});
