import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config.js';
import { START_ENV_KEYS, loadStartConfig } from '../../src/config/startConfig.js';

describe('loadStartConfig (npm start)', () => {
  it('starts the embedded Hydra on the defaults when no Hydra URL is set', () => {
    const c = loadStartConfig({});
    expect(c.embeddedHydra).toEqual({ dataDir: './data', accessTokenStrategy: 'opaque', showLogs: false });
    expect(c.server.resourceUrl.href).toBe('http://127.0.0.1:3000/mcp');
  });

  it.each([
    ['HYDRA_ACCESS_TOKEN_STRATEGY=jwt', { HYDRA_ACCESS_TOKEN_STRATEGY: 'jwt' }, { accessTokenStrategy: 'jwt' }],
    ['HYDRA_ACCESS_TOKEN_STRATEGY=opaque', { HYDRA_ACCESS_TOKEN_STRATEGY: 'opaque' }, { accessTokenStrategy: 'opaque' }],
    ['HYDRA_LOG=show', { HYDRA_LOG: 'show' }, { showLogs: true }],
    ['HYDRA_LOG empty, as .env.example leaves it', { HYDRA_LOG: '' }, { showLogs: false }],
    ['HYDRA_DATA_DIR=/var/lib/hydra-mcp', { HYDRA_DATA_DIR: '/var/lib/hydra-mcp' }, { dataDir: '/var/lib/hydra-mcp' }],
    ['HYDRA_MCP_CACHE empty (build.sh default)', { HYDRA_MCP_CACHE: '' }, {}],
  ])('accepts %s', (_case, env, expected) => {
    expect(loadStartConfig(env).embeddedHydra).toMatchObject(expected);
  });

  it.each([
    ['HYDRA_PUBLIC_URL', { HYDRA_PUBLIC_URL: 'http://127.0.0.1:5444' }],
    ['HYDRA_ADMIN_URL', { HYDRA_ADMIN_URL: 'http://127.0.0.1:5445' }],
  ])('starts no Hydra when %s points at a running one', (_name, env) => {
    expect(loadStartConfig({ ...env, HYDRA_ACCESS_TOKEN_STRATEGY: 'jwt' }).embeddedHydra).toBeUndefined();
  });

  it.each([
    ['upper-case JWT (used to become opaque silently)', { HYDRA_ACCESS_TOKEN_STRATEGY: 'JWT' }, 'HYDRA_ACCESS_TOKEN_STRATEGY: must be "opaque" or "jwt" (lower case), not "JWT"'],
    ['Opaque with a capital', { HYDRA_ACCESS_TOKEN_STRATEGY: 'Opaque' }, 'HYDRA_ACCESS_TOKEN_STRATEGY: must be "opaque" or "jwt"'],
    ['an unknown strategy', { HYDRA_ACCESS_TOKEN_STRATEGY: 'hmac' }, 'HYDRA_ACCESS_TOKEN_STRATEGY: must be "opaque" or "jwt" (lower case), not "hmac"'],
    ['an empty strategy', { HYDRA_ACCESS_TOKEN_STRATEGY: '' }, 'HYDRA_ACCESS_TOKEN_STRATEGY: must be "opaque" or "jwt"'],
    ['HYDRA_LOG=yes', { HYDRA_LOG: 'yes' }, 'HYDRA_LOG: must be "show" (print Hydra\'s log lines) or empty, not "yes"'],
    ['HYDRA_LOG=SHOW', { HYDRA_LOG: 'SHOW' }, 'HYDRA_LOG: must be "show"'],
    ['an empty HYDRA_DATA_DIR (would write into the working directory)', { HYDRA_DATA_DIR: '' }, 'HYDRA_DATA_DIR: must not be empty'],
    ['HYDRA_DATA_DIR with ~', { HYDRA_DATA_DIR: '~/hydra-data' }, 'HYDRA_DATA_DIR: "~" is not expanded here'],
    ['HYDRA_MCP_CACHE with ~ (as a .env copied from the example would say)', { HYDRA_MCP_CACHE: '~/.cache/hydra-mcp' }, 'HYDRA_MCP_CACHE: "~" is not expanded here'],
  ])('refuses %s, naming the variable', (_case, env, message) => {
    expect(() => loadStartConfig(env)).toThrow(ConfigError);
    expect(() => loadStartConfig(env)).toThrow(message);
  });

  it("names the server's wrong variables and the embedded Hydra's in one error", () => {
    const attempt = () => loadStartConfig({ PORT: 'eighty', HYDRA_ACCESS_TOKEN_STRATEGY: 'JWT' });
    expect(attempt).toThrow(/PORT: [\s\S]*HYDRA_ACCESS_TOKEN_STRATEGY: must be/);
  });

  it('still refuses development secrets in production', () => {
    expect(() => loadStartConfig({ NODE_ENV: 'production' })).toThrow('SESSION_SECRET: must be set in production');
  });

  it('starts no Kratos unless IDENTITY=kratos', () => {
    expect(loadStartConfig({ KRATOS_PUBLIC_PORT: '5433' }).embeddedKratos).toBeUndefined();
  });

  it('starts the embedded Kratos on 4433/4434 with IDENTITY=kratos and no Kratos URL, and gives the server those URLs', () => {
    const c = loadStartConfig({ IDENTITY: 'kratos' });
    expect(c.embeddedKratos).toEqual({ dataDir: './data', publicPort: 4433, adminPort: 4434, showLogs: false });
    expect(c.server.identity).toEqual({ kind: 'kratos', publicUrl: new URL('http://127.0.0.1:4433'), adminUrl: new URL('http://127.0.0.1:4434'), sweepSeconds: 60 });
    const d = loadStartConfig({ IDENTITY: 'kratos', KRATOS_PUBLIC_PORT: '5433', KRATOS_ADMIN_PORT: '', KRATOS_LOG: 'show', HYDRA_DATA_DIR: '/srv/d' });
    expect(d.embeddedKratos).toEqual({ dataDir: '/srv/d', publicPort: 5433, adminPort: 4434, showLogs: true });
  });

  it('starts no Kratos when KRATOS_PUBLIC_URL and KRATOS_ADMIN_URL name a running one', () => {
    const c = loadStartConfig({ IDENTITY: 'kratos', KRATOS_PUBLIC_URL: 'http://127.0.0.1:5433', KRATOS_ADMIN_URL: 'http://127.0.0.1:5434' });
    expect(c.embeddedKratos).toBeUndefined();
    // Only one of them is a mistake the server names, not a cue to start Kratos.
    expect(() => loadStartConfig({ IDENTITY: 'kratos', KRATOS_PUBLIC_URL: 'http://127.0.0.1:5433' })).toThrow('KRATOS_ADMIN_URL: must be set when IDENTITY=kratos');
  });

  it.each([
    ['a port that is not a number', { KRATOS_PUBLIC_PORT: 'x' }, 'KRATOS_PUBLIC_PORT: must be a port number from 1 to 65535, not "x"'],
    ['a port out of range', { KRATOS_ADMIN_PORT: '70000' }, 'KRATOS_ADMIN_PORT: must be a port number'],
    ['the same port twice', { KRATOS_PUBLIC_PORT: '4434' }, 'KRATOS_ADMIN_PORT: must differ from KRATOS_PUBLIC_PORT'],
    ['KRATOS_LOG=yes', { KRATOS_LOG: 'yes' }, 'KRATOS_LOG: must be "show"'],
    ['PUBLIC_BASE_URL on localhost (Kratos on 127.0.0.1: its cookie would not reach us)', { PUBLIC_BASE_URL: 'http://localhost:3000' }, 'PUBLIC_BASE_URL: must be on 127.0.0.1 for the Kratos npm start runs'],
  ])('with IDENTITY=kratos refuses %s, naming the variable', (_case, env, message) => {
    expect(() => loadStartConfig({ IDENTITY: 'kratos', ...env })).toThrow(ConfigError);
    expect(() => loadStartConfig({ IDENTITY: 'kratos', ...env })).toThrow(message);
  });

  it('.env.example lists every variable npm start reads', () => {
    const example = readFileSync(fileURLToPath(new URL('../../.env.example', import.meta.url)), 'utf8');
    const listed = [...example.matchAll(/^# ([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!);
    expect(START_ENV_KEYS.filter((k) => !listed.includes(k))).toEqual([]);
  });
});
