import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, ENV_KEYS, loadConfig } from '../../src/config/config.js';
import { loadStartConfig } from '../../src/config/startConfig.js';
import { startServer } from '../../src/main.js';
import { freeLoopbackPort } from '../../scripts/hydra.js';

const strong = randomBytes(24).toString('base64url');
const prod = { NODE_ENV: 'production', SESSION_SECRET: strong };
/** The message loadConfig refuses `env` with (and that it is a ConfigError). */
const refusal = (env: Record<string, string | undefined>, load: (e: Record<string, string | undefined>) => unknown = loadConfig): string => {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('the configuration was accepted');
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-production-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
const file = async (name: string, content: string) => {
  const path = join(dir, name);
  await writeFile(path, content, { mode: 0o600 });
  return path;
};

describe('NODE_ENV=production refuses plain-http public URLs off loopback, naming the variable', () => {
  it.each([
    ['PUBLIC_BASE_URL', { PUBLIC_BASE_URL: 'http://mcp.example.com' }],
    ['HYDRA_PUBLIC_URL', { HYDRA_PUBLIC_URL: 'http://hydra:4444' }],
    ['HYDRA_ISSUER', { HYDRA_ISSUER: 'http://auth.example.com' }],
    ['PUBLIC_BASE_URL (the default http://HOST:PORT, HOST=0.0.0.0)', { HOST: '0.0.0.0' }],
    ['HYDRA_ISSUER on a private address', { HYDRA_ISSUER: 'http://10.1.2.3:4444' }],
  ])('%s', (_case, env) => {
    const name = _case.split(' ')[0]!;
    const message = refusal({ ...prod, ...env });
    expect(message).toContain(`${name}: must be https:// with NODE_ENV=production`);
    expect(message.match(/must be https/g)).toHaveLength(1);
  });

  it('names all three at once', () => {
    const message = refusal({ ...prod, PUBLIC_BASE_URL: 'http://mcp.example.com', HYDRA_PUBLIC_URL: 'http://auth.example.com', HYDRA_ISSUER: 'http://auth.example.com' });
    for (const name of ['PUBLIC_BASE_URL', 'HYDRA_PUBLIC_URL', 'HYDRA_ISSUER']) expect(message).toContain(`  ${name}: must be https://`);
  });

  it('comes before any library could say "Issuer URL must be HTTPS": npm start refuses it too, before building anything', () => {
    expect(refusal({ ...prod, PUBLIC_BASE_URL: 'http://mcp.example.com' }, loadStartConfig)).toContain('PUBLIC_BASE_URL: must be https://');
  });

  it.each([
    ['127.0.0.1', 'http://127.0.0.1:3000'],
    ['another 127/8 address', 'http://127.10.0.7:3000'],
    ['::1', 'http://[::1]:3000'],
    ['localhost', 'http://localhost:3000'],
    ['LOCALHOST in capitals', 'http://LOCALHOST:3000'],
  ])('accepts http on loopback: %s', (_case, url) => {
    expect(loadConfig({ ...prod, PUBLIC_BASE_URL: url, HYDRA_PUBLIC_URL: url.replace('3000', '4444'), HYDRA_ISSUER: url.replace('3000', '4444') }).publicBaseUrl.protocol).toBe('http:');
  });

  it("accepts https everywhere; outside production, Hydra's URLs may be plain http off loopback", () => {
    const https = { PUBLIC_BASE_URL: 'https://mcp.example.com', HYDRA_PUBLIC_URL: 'https://auth.example.com', HYDRA_ISSUER: 'https://auth.example.com' };
    expect(loadConfig({ ...prod, ...https }).hydra.issuer).toBe('https://auth.example.com');
    expect(loadConfig({ PUBLIC_BASE_URL: 'https://mcp.example.com', HYDRA_PUBLIC_URL: 'http://hydra:4444', HYDRA_ISSUER: 'http://auth.example.com' }).hydra.issuer).toBe('http://auth.example.com');
  });

  it('refuses an http PUBLIC_BASE_URL off loopback in every mode, naming it, before the metadata router would', () => {
    // Our own issuer: OAuth metadata cannot be served for it (RFC 8414 §2), so development is no exception.
    const message = refusal({ PUBLIC_BASE_URL: 'http://mcp.example.com' });
    expect(message).toContain('PUBLIC_BASE_URL: must be https:// (OAuth metadata needs an https issuer, RFC 8414 §2)');
    expect(message).not.toContain('NODE_ENV=production');
    expect(loadConfig({ PUBLIC_BASE_URL: 'http://[::1]:3000' }).publicBaseUrl.hostname).toBe('[::1]');
  });

  it('does not mistake a host merely starting with 127 or localhost for loopback', () => {
    expect(refusal({ ...prod, PUBLIC_BASE_URL: 'http://127.0.0.1.example.com' })).toContain('PUBLIC_BASE_URL: must be https://');
    expect(refusal({ ...prod, PUBLIC_BASE_URL: 'http://localhost.example.com' })).toContain('PUBLIC_BASE_URL: must be https://');
  });
});

describe('secrets from files (NAME_FILE)', () => {
  it('reads SESSION_SECRET, DATABASE_URL and CONNECTION_KEYS from files, trimming one trailing newline only', async () => {
    const key = `k1:${randomBytes(32).toString('base64url')}`;
    const catalogue = await file('connections.json', JSON.stringify({ providers: { github: { displayName: 'GitHub', authorizationEndpoint: 'https://github.com/login/oauth/authorize', tokenEndpoint: 'https://github.com/login/oauth/access_token', clientId: 'Iv1.abc', clientSecretEnv: 'GITHUB_CLIENT_SECRET', scopes: ['repo'] } } }));
    const c = loadConfig({
      SESSION_SECRET_FILE: await file('session', `${strong} \n`),
      DATABASE_URL_FILE: await file('db', 'postgres://app:s3cret@db.internal:5432/app\n'),
      CONNECTIONS_FILE: catalogue,
      CONNECTION_KEYS_FILE: await file('keys', `${key}\r\n`),
      GITHUB_CLIENT_SECRET_FILE: await file('github', 'gh-secret\n\n'),
    });
    // One newline goes; a space before it is part of the secret, and so is a second newline.
    expect(c.sessionSecret).toBe(`${strong} `);
    expect(c.sessionSecretGenerated).toBe(false);
    expect(c.database).toMatchObject({ kind: 'postgres', url: 'postgres://app:s3cret@db.internal:5432/app' });
    expect(c.connections?.keys).toHaveLength(1);
    expect(c.connections?.providers[0]?.clientSecret).toBe('gh-secret\n');
  });

  it('applies the production checks to a secret read from a file (a placeholder is still refused)', async () => {
    const message = refusal({ NODE_ENV: 'production', SESSION_SECRET_FILE: await file('placeholder', 'CHANGE-ME-to-a-random-secret-of-32-characters-or-more\n') });
    expect(message).toContain('SESSION_SECRET: is still a placeholder');
  });

  it.each(['SESSION_SECRET', 'DATABASE_URL', 'CONNECTION_KEYS'])('refuses %s and %s_FILE both set, naming it', async (name) => {
    const message = refusal({ [name]: 'x'.repeat(40), [`${name}_FILE`]: await file(`both-${name}`, 'y'.repeat(40)) });
    expect(message).toContain(`${name}: set either ${name} or ${name}_FILE, not both`);
  });

  it.each(['SESSION_SECRET', 'DATABASE_URL', 'CONNECTION_KEYS'])('refuses a missing %s_FILE, naming it and the reason', (name) => {
    const missing = join(dir, 'no-such-file');
    expect(refusal({ [`${name}_FILE`]: missing })).toContain(`${name}_FILE: cannot read ${missing} (ENOENT)`);
  });

  it('refuses a _FILE that is a directory, or an empty path', async () => {
    await mkdir(join(dir, 'a-directory'), { recursive: true });
    expect(refusal({ SESSION_SECRET_FILE: join(dir, 'a-directory') })).toContain('SESSION_SECRET_FILE: cannot read');
    expect(refusal({ SESSION_SECRET_FILE: '' })).toContain('SESSION_SECRET_FILE: must be the path of a file holding SESSION_SECRET, not empty');
  });

  it('names every bad secret at once, and never prints what a file holds', async () => {
    const secretText = `do-not-print-${randomBytes(8).toString('hex')}`;
    const message = refusal({ SESSION_SECRET: secretText, SESSION_SECRET_FILE: await file('s', secretText), DATABASE_URL_FILE: join(dir, 'nope') });
    expect(message).toContain('SESSION_SECRET: set either');
    expect(message).toContain('DATABASE_URL_FILE: cannot read');
    expect(message).not.toContain(secretText);
  });

  it("refuses a provider's clientSecretEnv given both ways, or from an unreadable file, naming the variable", async () => {
    const catalogue = await file('cat2.json', JSON.stringify({ providers: { github: { displayName: 'GitHub', authorizationEndpoint: 'https://github.com/login/oauth/authorize', tokenEndpoint: 'https://github.com/login/oauth/access_token', clientId: 'Iv1.abc', clientSecretEnv: 'GH_SECRET', scopes: ['repo'] } } }));
    const keys = `k1:${randomBytes(32).toString('base64url')}`;
    expect(refusal({ CONNECTIONS_FILE: catalogue, CONNECTION_KEYS: keys, GH_SECRET: 'a', GH_SECRET_FILE: await file('gh', 'b') })).toContain('GH_SECRET: set either GH_SECRET or GH_SECRET_FILE, not both');
    expect(refusal({ CONNECTIONS_FILE: catalogue, CONNECTION_KEYS: keys, GH_SECRET_FILE: join(dir, 'absent') })).toContain('GH_SECRET_FILE: cannot read');
  });

  it('the _FILE variables are part of the schema (.env.example lists them; compose may set them)', () => {
    for (const name of ['SESSION_SECRET_FILE', 'DATABASE_URL_FILE', 'CONNECTION_KEYS_FILE', 'TRUST_PROXY', 'TLS_CERT_FILE', 'TLS_KEY_FILE']) expect(ENV_KEYS).toContain(name);
  });
});

describe('TRUST_PROXY', () => {
  it.each([
    ['unset', undefined, false],
    ['false', 'false', false],
    ['true', 'true', true],
    ['a hop count', '1', 1],
    ['loopback', 'loopback', ['loopback']],
    ['a CIDR list with names and addresses', 'loopback, 10.0.0.0/8,fd00::/8, 192.168.1.10', ['loopback', '10.0.0.0/8', 'fd00::/8', '192.168.1.10']],
  ])('accepts %s', (_case, value, expected) => {
    expect(loadConfig(value === undefined ? {} : { TRUST_PROXY: value }).trustProxy).toEqual(expected);
  });

  it.each([
    ['yes', 'yes'],
    ['a negative hop count', '-1'],
    ['too many hops', '99'],
    ['a prefix too long for IPv4', '10.0.0.0/33'],
    ['an address out of range', '300.1.1.1'],
    ['a short address', '10.1'],
    ['an unknown range name among good ones', 'loopback,private'],
    ['an empty list entry', 'loopback,,10.0.0.1'],
  ])('refuses %s, naming TRUST_PROXY', (_case, value) => {
    expect(refusal({ TRUST_PROXY: value })).toMatch(/^Invalid configuration:\n {2}TRUST_PROXY: must be/);
  });
});

describe('TLS_CERT_FILE / TLS_KEY_FILE', () => {
  it('refuses one without the other, an unreadable file, or a file of the wrong kind, naming the variable', async () => {
    const cert = await file('cert.pem', '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n');
    expect(refusal({ TLS_CERT_FILE: cert })).toContain('TLS_KEY_FILE: must be set when TLS_CERT_FILE is');
    expect(refusal({ TLS_KEY_FILE: cert })).toContain('TLS_CERT_FILE: must be set when TLS_KEY_FILE is');
    expect(refusal({ TLS_CERT_FILE: cert, TLS_KEY_FILE: join(dir, 'absent.key') })).toContain('TLS_KEY_FILE: cannot read');
    expect(refusal({ TLS_CERT_FILE: cert, TLS_KEY_FILE: cert })).toContain('TLS_KEY_FILE: ');
  });
});

describe('token lifetimes of the embedded Hydra (npm start)', () => {
  it('has documented defaults: short access tokens, long rotated refresh tokens', () => {
    expect(loadStartConfig({}).tokenLifetimes).toEqual({ accessToken: '15m', refreshToken: '720h', idToken: '1h', rotationGracePeriod: '30s' });
  });

  it('accepts other Hydra durations', () => {
    expect(loadStartConfig({ HYDRA_ACCESS_TOKEN_TTL: '5m', HYDRA_REFRESH_TOKEN_TTL: '2160h', HYDRA_ID_TOKEN_TTL: '30m', HYDRA_REFRESH_TOKEN_ROTATION_GRACE: '0s' }).tokenLifetimes).toEqual({
      accessToken: '5m',
      refreshToken: '2160h',
      idToken: '30m',
      rotationGracePeriod: '0s',
    });
  });

  it.each([
    ['HYDRA_ACCESS_TOKEN_TTL', 'fifteen minutes', 'must be a duration such as 15m'],
    ['HYDRA_ACCESS_TOKEN_TTL', '15', 'must be a duration such as 15m'],
    ['HYDRA_ACCESS_TOKEN_TTL', '48h', 'must be from 1m to 24h'],
    ['HYDRA_REFRESH_TOKEN_TTL', '-1', 'must be a duration'],
    ['HYDRA_REFRESH_TOKEN_TTL', '10m', 'must be from 1h to 8760h'],
    ['HYDRA_ID_TOKEN_TTL', '1d', 'must be a duration'],
    ['HYDRA_REFRESH_TOKEN_ROTATION_GRACE', '10m', 'must be from 0s to 5m'],
  ])('refuses %s=%s, naming it', (name, value, message) => {
    expect(refusal({ [name]: value }, loadStartConfig)).toContain(`${name}: ${message}`);
  });

  it('refuses a removed-account retention shorter than the access-token lifetime', () => {
    expect(refusal({ HYDRA_ACCESS_TOKEN_TTL: '2h', REMOVED_SUBJECT_RETENTION_SECONDS: '3600' }, loadStartConfig)).toContain('REMOVED_SUBJECT_RETENTION_SECONDS: must be at least HYDRA_ACCESS_TOKEN_TTL (2h)');
  });
});

describe('a refused start changes nothing', () => {
  it.each([
    ['an http PUBLIC_BASE_URL in production', { ...prod, PUBLIC_BASE_URL: 'http://mcp.example.com' }, 'PUBLIC_BASE_URL'],
    ['an unreadable SESSION_SECRET_FILE', { SESSION_SECRET_FILE: '/nonexistent/secret' }, 'SESSION_SECRET_FILE'],
    ['a bad TRUST_PROXY', { TRUST_PROXY: 'sometimes' }, 'TRUST_PROXY'],
  ])('startServer with %s: rejected naming it, no database created, nothing listening', async (_case, env, name) => {
    const sqlite = join(dir, `refused-${name}.sqlite`);
    // A port the OS just handed out and took back: nothing else in this run listens there.
    const port = await freeLoopbackPort();
    await expect(startServer({ ...env, PORT: String(port), DATABASE_PATH: sqlite, METRICS_PORT: 'off', LOG_LEVEL: 'silent' })).rejects.toThrow(name);
    expect(existsSync(sqlite)).toBe(false);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
