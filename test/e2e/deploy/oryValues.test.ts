import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureHydraBinary, freeLoopbackPort } from '../../../scripts/hydra.js';
import { ensureKratosBinary } from '../../../scripts/kratos.js';
import {
  type K8sObject,
  ORY_CHARTS,
  containerEnv,
  flatten,
  helmBinary,
  mountConfigMaps,
  only,
  podOf,
  renderChart,
  repoPath,
  runContainer,
  startContainer,
} from '../../support/oryCharts.js';
import { createTestDatabase } from '../../support/postgres.js';

/**
 * deploy/helm/values/{hydra,kratos}.yaml with Ory's own charts (ory/k8s
 * v0.62.1, unmodified, ../shared/vendor): rendered by helm v4, then the
 * rendered migration Job and Deployment run as a pod would run them, with the
 * real Hydra and Kratos our tests build: the container's arguments and
 * environment, its ConfigMaps at their mount paths, Secret keys from a
 * stand-in for the operator's Secret, the run's real PostgreSQL as the DSN.
 * Only what cannot apply outside a pod is changed: listen on 127.0.0.1 on
 * free ports, and (Kratos) the schema's file URL under the local mount.
 */
const HYDRA_VALUES = repoPath('deploy/helm/values/hydra.yaml');
const KRATOS_VALUES = repoPath('deploy/helm/values/kratos.yaml');
const MCP = 'https://mcp.example.com';
const ISSUER = 'https://auth.example.com';
const goVersion = (dir: string, module: string) =>
  new RegExp(`${module.replace(/[./]/g, '\\$&')} (v[\\d.]+)`).exec(readFileSync(repoPath(`${dir}/go.mod`), 'utf8'))![1]!;
const HYDRA_VERSION = goVersion('hydra', 'github.com/ory/hydra/v2');
const KRATOS_VERSION = goVersion('kratos', 'github.com/ory/kratos');
const secret = (n = 32) => randomBytes(n).toString('base64url').slice(0, n);

let helm: string;
let tmp: string;
const log: string[] = [];
const keep = (line: string) => void log.push(line);

beforeAll(async () => {
  // All three are cached builds (a first build takes minutes, within the hook timeout).
  helm = await helmBinary();
  await Promise.all([ensureHydraBinary(), ensureKratosBinary()]);
  tmp = mkdtempSync(join(tmpdir(), 'ory-values-'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

it('helm v4 renders Ory\'s charts as vendored: their file:// dependencies are already packaged', async () => {
  const { stdout } = await promisify(execFile)(helm, ['version', '--short']);
  expect(stdout).toMatch(/^v4\./);
  for (const chart of ['hydra', 'kratos']) {
    const { stdout: deps } = await promisify(execFile)(helm, ['dependency', 'list', join(ORY_CHARTS, chart)]);
    const rows = deps.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row, `${chart}: ${row.join(' ')}`).toEqual([row[0], row[1], expect.stringMatching(/^file:\/\/\.\.\//), 'ok']);
  }
});

/** A mirrored development value as the cluster has it: our pages and Hydra's public API on their https names. */
const toCluster = (v: unknown): unknown =>
  Array.isArray(v) ? v.map(toCluster) : typeof v === 'string' ? v.replace('http://127.0.0.1:3000', MCP).replace('http://127.0.0.1:4444', ISSUER) : v;

/** Every key of the development file that the rendered config must hold with the same (mapped) value. */
function expectMirrors(rendered: Record<string, unknown>, devFile: string, differsByDesign: RegExp): void {
  const dev = flatten(parse(readFileSync(repoPath(devFile), 'utf8')));
  const flat = flatten(rendered);
  const mismatches = Object.entries(dev)
    .filter(([k]) => !differsByDesign.test(k))
    .filter(([k, v]) => JSON.stringify(flat[k]) !== JSON.stringify(toCluster(v)))
    .map(([k, v]) => `${k}: ${devFile} ${JSON.stringify(v)}, chart ${JSON.stringify(flat[k])}`);
  expect(mismatches).toEqual([]);
}

describe('Hydra: Ory\'s chart with deploy/helm/values/hydra.yaml', () => {
  let objects: K8sObject[];
  let config: Record<string, unknown>;
  beforeAll(async () => {
    objects = await renderChart(helm, 'hydra', 'hydra', [HYDRA_VALUES]);
    config = parse(only(objects, 'ConfigMap', 'hydra').data!['hydra.yaml']!) as Record<string, unknown>;
  });

  it('renders the workloads we rely on and nothing that exposes the admin API or makes clients', () => {
    const { container } = podOf(only(objects, 'Deployment'));
    expect(container.image).toBe(`docker.io/oryd/hydra:${HYDRA_VERSION}`);
    expect(container.args).toEqual(['serve', 'all', '--config', '/etc/config/hydra.yaml']); // no --dev
    // The operator's Secret: the chart makes none, and reads DSN and both secrets from it.
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    expect(container.env).toEqual(
      expect.arrayContaining(
        [['DSN', 'dsn'], ['SECRETS_SYSTEM', 'secretsSystem'], ['SECRETS_COOKIE', 'secretsCookie']].map(([name, key]) => ({
          name,
          valueFrom: { secretKeyRef: { name: 'hydra-mcp-hydra', key } },
        })),
      ),
    );
    // Migration: a pre-install/pre-upgrade Job, `migrate sql up` (not the deprecated bare `migrate sql`).
    const job = only(objects, 'Job');
    expect(job.metadata.annotations?.['helm.sh/hook']).toMatch(/pre-install/);
    const migrate = podOf(job);
    expect(migrate.container.image).toBe(container.image);
    expect(migrate.container.args?.slice(0, 3)).toEqual(['migrate', 'sql', 'up']);
    expect(migrate.pod.automountServiceAccountToken).toBe(false);
    expect(migrate.pod.initContainers ?? []).toEqual([]);
    // Maester off: no controller, no CRD-driven clients.
    expect(objects.filter((o) => /maester/.test(o.metadata.name))).toEqual([]);
    // One ingress, for the public API at the issuer's name.
    const ingresses = objects.filter((o) => o.kind === 'Ingress');
    expect(ingresses.map((i) => i.spec?.rules?.map((r) => r.host))).toEqual([['auth.example.com']]);
    expect(only(objects, 'Service', 'hydra-admin').spec?.ports?.[0]?.port).toBe(4445);
  });

  it('its config mirrors hydra/hydra.yml, on the cluster\'s https names', () => {
    // Differs by design: loopback binding (pods listen on their addresses) and the log format (JSON for collectors).
    expectMirrors(config, 'hydra/hydra.yml', /^(serve\.(public|admin)\.host|log\.format)$/);
    expect(flatten(config)).toMatchObject({
      'urls.self.issuer': ISSUER,
      'urls.login': `${MCP}/login`,
      'urls.consent': `${MCP}/consent`,
      'urls.logout': `${MCP}/logout`,
      'urls.error': `${MCP}/oauth-error`,
      'webfinger.oidc_discovery.token_url': `${MCP}/token`,
      'oidc.dynamic_client_registration.enabled': false,
      'clients.http.disallow_private_ip_ranges': true,
      'oauth2.pkce.enforced': true,
    });
    expect(config).not.toHaveProperty('dsn');
    expect(config).not.toHaveProperty('secrets');
  });

  it('the real Hydra migrates PostgreSQL with the rendered Job, then serves with the rendered Deployment', async () => {
    const db = await createTestDatabase(inject('postgresUrl'));
    const secrets = { 'hydra-mcp-hydra': { dsn: `${db.url}?sslmode=disable`, secretsSystem: secret(), secretsCookie: secret() } };
    const binary = await ensureHydraBinary();
    let hydra: Awaited<ReturnType<typeof startContainer>> | undefined;
    try {
      const job = podOf(only(objects, 'Job'));
      const jobPath = mountConfigMaps(objects, job.pod, job.container, join(tmp, 'hydra-job'));
      let t = Date.now();
      await runContainer(binary, job.container, job.container.args!.map(jobPath), containerEnv(job.container, secrets), keep);
      console.log(`hydra migration Job: ${Date.now() - t} ms`);

      const { pod, container } = podOf(only(objects, 'Deployment'));
      const path = mountConfigMaps(objects, pod, container, join(tmp, 'hydra'));
      const [publicPort, adminPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
      const env = {
        ...containerEnv(container, secrets),
        SERVE_PUBLIC_HOST: '127.0.0.1',
        SERVE_ADMIN_HOST: '127.0.0.1',
        SERVE_PUBLIC_PORT: String(publicPort),
        SERVE_ADMIN_PORT: String(adminPort),
      };
      const pub = `http://127.0.0.1:${publicPort}`;
      const admin = `http://127.0.0.1:${adminPort}`;
      t = Date.now();
      hydra = await startContainer(binary, container, container.args!.map(path), env, [`${admin}/health/ready`, `${pub}/health/ready`], { log: keep });
      console.log(`hydra ready: ${Date.now() - t} ms`);

      expect(((await (await fetch(`${admin}/version`)).json()) as { version: string }).version).toBe(HYDRA_VERSION);
      // Discovery (the first request may generate the key set): issuer verbatim, our /token, no registration.
      const discovery = (await (await fetch(`${pub}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(60_000) })).json()) as Record<string, unknown>;
      expect(discovery).toMatchObject({
        issuer: ISSUER,
        authorization_endpoint: `${ISSUER}/oauth2/auth`,
        token_endpoint: `${MCP}/token`,
        jwks_uri: `${ISSUER}/.well-known/jwks.json`,
        subject_types_supported: ['public'],
      });
      expect(discovery).not.toHaveProperty('registration_endpoint');
      // Hydra's own registration is off.
      const dcr = await fetch(`${pub}/oauth2/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['https://app.example.net/cb'] }) });
      expect(dcr.status).toBe(404);

      // A jwks_uri on a private address is refused (clients.http.disallow_private_ip_ranges).
      const privateJwks = await fetch(`${admin}/admin/clients`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://10.0.0.1/jwks.json', redirect_uris: ['https://app.example.net/cb'] }),
      });
      expect(privateJwks.status).toBe(400);
      expect(await privateJwks.text()).toMatch(/IP address is not allowed/);

      const created = await fetch(`${admin}/admin/clients`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
          response_types: ['code'],
          redirect_uris: ['https://app.example.net/cb'],
          scope: 'openid offline_access notes:read',
        }),
      });
      expect(created.status).toBe(201);
      const client = (await created.json()) as { client_id: string; client_secret: string };

      // The authorization endpoint sends the browser to our sign-in page.
      const auth = new URL(`${pub}/oauth2/auth`);
      for (const [k, v] of Object.entries({ client_id: client.client_id, response_type: 'code', scope: 'openid', state: 'state-12345678', redirect_uri: 'https://app.example.net/cb' })) auth.searchParams.set(k, v);
      const toLogin = await fetch(auth, { redirect: 'manual' });
      expect(toLogin.status).toBe(302);
      expect(toLogin.headers.get('location')).toMatch(/^https:\/\/mcp\.example\.com\/login\?login_challenge=/);

      // Opaque access tokens, 15 minutes, issued by the issuer.
      const token = await fetch(`${pub}/oauth2/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'notes:read' }),
      });
      expect(token.status).toBe(200);
      const tok = (await token.json()) as { access_token: string; expires_in: number };
      expect(tok.access_token).toMatch(/^ory_at_/);
      expect(tok.expires_in).toBeGreaterThan(890);
      expect(tok.expires_in).toBeLessThanOrEqual(900);
      const intro = (await (await fetch(`${admin}/admin/oauth2/introspect`, { method: 'POST', body: new URLSearchParams({ token: tok.access_token }) })).json()) as Record<string, unknown>;
      expect(intro).toMatchObject({ active: true, iss: ISSUER, client_id: client.client_id, scope: 'notes:read' });
    } finally {
      await hydra?.stop();
      await db.drop();
    }
  }, 180_000);

  it('a broken value (ttl.access_token: banana) renders, and the real Hydra refuses to start on it', async () => {
    const binary = await ensureHydraBinary();
    const start = async (rendered: K8sObject[], dir: string) => {
      const { pod, container } = podOf(only(rendered, 'Deployment'));
      const path = mountConfigMaps(rendered, pod, container, join(tmp, dir));
      const env = {
        ...containerEnv(container, { 'hydra-mcp-hydra': { dsn: 'memory', secretsSystem: secret(), secretsCookie: secret() } }),
        SERVE_PUBLIC_HOST: '127.0.0.1',
        SERVE_ADMIN_HOST: '127.0.0.1',
        SERVE_PUBLIC_PORT: String(await freeLoopbackPort()),
        SERVE_ADMIN_PORT: String(await freeLoopbackPort()),
      };
      return startContainer(binary, container, container.args!.map(path), env, [`http://127.0.0.1:${env.SERVE_ADMIN_PORT}/health/ready`], { log: keep, readyTimeoutMs: 30_000 });
    };
    // Control: the same start (DSN memory) with our values as they are.
    await (await start(objects, 'hydra-control')).stop();
    const broken = await renderChart(helm, 'hydra', 'hydra', [HYDRA_VALUES], ['hydra.config.ttl.access_token=banana']);
    await expect(start(broken, 'hydra-broken')).rejects.toThrow(/ended before it was ready[\s\S]*ttl\.access_token/);
  }, 60_000);
});

describe('Kratos: Ory\'s chart with deploy/helm/values/kratos.yaml', () => {
  let objects: K8sObject[];
  let config: Record<string, unknown>;
  beforeAll(async () => {
    objects = await renderChart(helm, 'kratos', 'kratos', [KRATOS_VALUES]);
    config = parse(only(objects, 'ConfigMap', 'kratos-config').data!['kratos.yaml']!) as Record<string, unknown>;
  });

  it('renders the workloads we rely on, with our identity schema, and nothing that exposes the admin API', () => {
    const { container } = podOf(only(objects, 'Deployment'));
    expect(container.image).toBe(`docker.io/oryd/kratos:${KRATOS_VERSION}`);
    expect(container.args).toEqual(['serve', 'all', '--config', '/etc/config/kratos.yaml', '--sqa-opt-out']); // no --dev
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    for (const [name, key] of [['DSN', 'dsn'], ['SECRETS_DEFAULT', 'secretsDefault'], ['SECRETS_COOKIE', 'secretsCookie'], ['SECRETS_CIPHER', 'secretsCipher']]) {
      expect(container.env?.find((e) => e.name === name)?.valueFrom?.secretKeyRef).toMatchObject({ name: 'hydra-mcp-kratos', key });
    }
    // No courier (no email is sent), no SMTP URI to read.
    expect(objects.filter((o) => o.kind === 'StatefulSet')).toEqual([]);
    expect(container.env?.map((e) => e.name)).not.toContain('COURIER_SMTP_CONNECTION_URI');
    const job = only(objects, 'Job');
    expect(job.metadata.annotations?.['helm.sh/hook']).toMatch(/pre-install/);
    expect(podOf(job).container.image).toBe(container.image);
    expect(objects.filter((o) => o.kind === 'Ingress').map((i) => i.spec?.rules?.map((r) => r.host))).toEqual([['id.example.com']]);
    // The schema Kratos reads is ours, byte for byte as JSON.
    const schema = only(objects, 'ConfigMap', 'kratos-config').data!['identity.default.schema.json']!;
    expect(JSON.parse(schema)).toEqual(JSON.parse(readFileSync(repoPath('kratos/identity.schema.json'), 'utf8')));
  });

  it('its config mirrors kratos/kratos.yml, on the cluster\'s https names', () => {
    // Differs by design: the DSN and secrets (the operator's Secret), loopback binding and base URLs
    // (the ingress names), the schema's mounted path, the SMTP placeholder (no courier), the log format.
    expectMirrors(
      config,
      'kratos/kratos.yml',
      /^(dsn|secrets\..*|serve\.(public|admin)\.(host|base_url)|identity\.schemas|courier\.smtp\.connection_uri|log\.format)$/,
    );
    expect(flatten(config)).toMatchObject({
      'serve.public.base_url': 'https://id.example.com/',
      'cookies.domain': 'example.com',
      'session.cookie.domain': 'example.com',
      'selfservice.flows.login.ui_url': `${MCP}/kratos/login`,
      'identity.schemas': [{ id: 'default', url: 'file:///etc/config/identity.default.schema.json' }],
    });
  });

  /** Kratos's environment for the rendered container: Secret keys, loopback on free ports, the schema under the local mount. */
  async function kratosEnv(container: ReturnType<typeof podOf>['container'], dsn: string, path: (p: string) => string, rendered: Record<string, unknown>) {
    const secrets = { 'hydra-mcp-kratos': { dsn, secretsDefault: secret(), secretsCookie: secret(), secretsCipher: secret(32) } };
    const schemas = (rendered.identity as { schemas: { id: string; url: string }[] }).schemas.map((s) => ({ ...s, url: pathToFileURL(path(new URL(s.url).pathname)).href }));
    return {
      ...containerEnv(container, secrets),
      SERVE_PUBLIC_HOST: '127.0.0.1',
      SERVE_ADMIN_HOST: '127.0.0.1',
      SERVE_PUBLIC_PORT: String(await freeLoopbackPort()),
      SERVE_ADMIN_PORT: String(await freeLoopbackPort()),
      IDENTITY_SCHEMAS: JSON.stringify(schemas),
    };
  }

  it('the real Kratos migrates PostgreSQL with the rendered Job, then serves our flows with the rendered Deployment', async () => {
    const db = await createTestDatabase(inject('postgresUrl'));
    const binary = await ensureKratosBinary();
    let kratos: Awaited<ReturnType<typeof startContainer>> | undefined;
    try {
      const dsn = `${db.url}?sslmode=disable`;
      const job = podOf(only(objects, 'Job'));
      const jobPath = mountConfigMaps(objects, job.pod, job.container, join(tmp, 'kratos-job'));
      let t = Date.now();
      await runContainer(binary, job.container, job.container.args!.map(jobPath), await kratosEnv(job.container, dsn, jobPath, config), keep);
      console.log(`kratos migration Job: ${Date.now() - t} ms`);

      const { pod, container } = podOf(only(objects, 'Deployment'));
      const path = mountConfigMaps(objects, pod, container, join(tmp, 'kratos'));
      const env = await kratosEnv(container, dsn, path, config);
      const pub = `http://127.0.0.1:${env.SERVE_PUBLIC_PORT}`;
      const admin = `http://127.0.0.1:${env.SERVE_ADMIN_PORT}`;
      t = Date.now();
      kratos = await startContainer(binary, container, container.args!.map(path), env, [`${admin}/admin/health/ready`, `${pub}/health/ready`], { log: keep });
      console.log(`kratos ready: ${Date.now() - t} ms`);

      expect(((await (await fetch(`${admin}/admin/version`)).json()) as { version: string }).version).toBe(KRATOS_VERSION);
      // The schema it serves is ours.
      expect(await (await fetch(`${pub}/schemas/default`)).json()).toEqual(JSON.parse(readFileSync(repoPath('kratos/identity.schema.json'), 'utf8')));

      // A browser login flow goes to our page, with a Secure CSRF cookie on the shared cookie domain.
      const login = await fetch(`${pub}/self-service/login/browser`, { redirect: 'manual' });
      expect(login.status).toBe(303);
      expect(login.headers.get('location')).toMatch(/^https:\/\/mcp\.example\.com\/kratos\/login\?flow=/);
      const csrf = login.headers.getSetCookie().find((c) => c.startsWith('csrf_token'));
      expect(csrf).toMatch(/Domain=example\.com/);
      expect(csrf).toMatch(/; Secure/);
      const registration = await fetch(`${pub}/self-service/registration/browser`, { redirect: 'manual' });
      expect(registration.headers.get('location')).toMatch(/^https:\/\/mcp\.example\.com\/kratos\/registration\?flow=/);

      // An identity stored in PostgreSQL signs in with its password (API flow: no cookies).
      const created = await fetch(`${admin}/admin/identities`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ schema_id: 'default', traits: { email: 'ada@example.org', name: 'Ada' }, credentials: { password: { config: { password: 'correct horse battery' } } } }),
      });
      expect(created.status).toBe(201);
      const flow = (await (await fetch(`${pub}/self-service/login/api`)).json()) as { id: string };
      const signIn = await fetch(`${pub}/self-service/login?flow=${flow.id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ method: 'password', identifier: 'ada@example.org', password: 'correct horse battery' }),
      });
      expect(signIn.status).toBe(200);
      expect(((await signIn.json()) as { session: { identity: { traits: { email: string } } } }).session.identity.traits.email).toBe('ada@example.org');
    } finally {
      await kratos?.stop();
      await db.drop();
    }
  }, 180_000);

  it('a broken value (session.lifespan: banana) renders, and the real Kratos refuses to start on it', async () => {
    const binary = await ensureKratosBinary();
    const start = async (rendered: K8sObject[], dir: string) => {
      const renderedConfig = parse(only(rendered, 'ConfigMap', 'kratos-config').data!['kratos.yaml']!) as Record<string, unknown>;
      const { pod, container } = podOf(only(rendered, 'Deployment'));
      const path = mountConfigMaps(rendered, pod, container, join(tmp, dir));
      const env = await kratosEnv(container, 'memory', path, renderedConfig);
      return startContainer(binary, container, container.args!.map(path), env, [`http://127.0.0.1:${env.SERVE_ADMIN_PORT}/admin/health/ready`], { log: keep, readyTimeoutMs: 30_000 });
    };
    // Control: the same start (DSN memory) with our values as they are.
    await (await start(objects, 'kratos-control')).stop();
    const broken = await renderChart(helm, 'kratos', 'kratos', [KRATOS_VALUES], ['kratos.config.session.lifespan=banana']);
    await expect(start(broken, 'kratos-broken')).rejects.toThrow(/ended before it was ready[\s\S]*session\.lifespan/);
  }, 60_000);
});
