import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';

describe('loadConfig', () => {
  it('uses the embedded defaults when nothing is set', () => {
    const c = loadConfig({});
    expect(c.publicBaseUrl.href).toBe('http://127.0.0.1:3000/');
    expect(c.resourceUrl.href).toBe('http://127.0.0.1:3000/mcp');
    expect(c.hydra.issuer).toBe('http://127.0.0.1:4444');
    expect(c.database).toEqual({ kind: 'sqlite', path: './data/hydra-mcp.sqlite' });
  });

  it('derives the MCP resource URL from PUBLIC_BASE_URL without a trailing slash', () => {
    expect(loadConfig({ PUBLIC_BASE_URL: 'https://mcp.example.com/' }).resourceUrl.href).toBe('https://mcp.example.com/mcp');
  });

  it.each([
    ['PORT', { PORT: 'eighty' }],
    ['PORT', { PORT: '70000' }],
    ['HYDRA_ADMIN_URL', { HYDRA_ADMIN_URL: 'not a url' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://db/x' }],
    ['PUBLIC_BASE_URL', { PUBLIC_BASE_URL: 'https://x.example/?a=1' }],
  ])('names %s when it is invalid', (name, env) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(name);
  });
});

describe('loadConfig with NODE_ENV=production', () => {
  const strong = 'a'.repeat(40);
  it.each([
    ['SESSION_SECRET unset', {}, 'SESSION_SECRET: must be set in production'],
    ['a placeholder SESSION_SECRET', { SESSION_SECRET: 'CHANGE-ME-to-a-random-secret-of-32-characters-or-more' }, 'SESSION_SECRET: is still a placeholder'],
    ['a placeholder database password', { SESSION_SECRET: strong, DATABASE_URL: 'postgres://u:CHANGE-ME-app-db-password@db/x' }, 'DATABASE_URL: the password is still a placeholder'],
  ])('refuses to start with %s', (_case, env, message) => {
    expect(() => loadConfig({ NODE_ENV: 'production', ...env })).toThrow(message);
  });
  it('starts with real secrets', () => {
    expect(loadConfig({ NODE_ENV: 'production', SESSION_SECRET: strong, DATABASE_URL: 'postgres://u:s3cret@db/x' }).sessionSecretGenerated).toBe(false);
  });
});
