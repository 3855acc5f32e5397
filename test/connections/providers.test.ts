import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProviderCatalogue, parseProviderCatalogue, ProviderCatalogueError } from '../../src/connections/providers.js';

/** A provider that passes; each refusal below changes one thing. */
const github = {
  displayName: 'GitHub',
  authorizationEndpoint: 'https://github.com/login/oauth/authorize',
  tokenEndpoint: 'https://github.com/login/oauth/access_token',
  clientId: 'Iv1.abc',
  clientSecretEnv: 'GITHUB_CLIENT_SECRET',
  scopes: ['repo', 'read:user'],
};
const google = {
  displayName: 'Google',
  issuer: 'https://accounts.google.com',
  clientId: 'g-client',
  clientSecret: 'g-secret',
  tokenEndpointAuthMethod: 'client_secret_post',
  scopes: ['openid', 'email'],
  authorizationParams: { access_type: 'offline', prompt: 'consent' },
};
const env = { GITHUB_CLIENT_SECRET: 'gh-secret' };

const catalogue = (providers: Record<string, unknown>) => ({ providers });
const refusal = (json: unknown, environment: Record<string, string | undefined> = env): string => {
  try {
    parseProviderCatalogue(json, environment);
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderCatalogueError);
    expect(err).toBeInstanceOf(TypeError);
    return (err as Error).message;
  }
  throw new Error('the catalogue was accepted');
};

describe('provider catalogue (CONNECTIONS_FILE)', () => {
  it('accepts discovery and explicit-endpoint providers, with defaults and the secret resolved from the environment', () => {
    const providers = parseProviderCatalogue(catalogue({ github, google }), env);
    expect(providers).toEqual([
      {
        name: 'github',
        displayName: 'GitHub',
        authorizationEndpoint: 'https://github.com/login/oauth/authorize',
        tokenEndpoint: 'https://github.com/login/oauth/access_token',
        clientId: 'Iv1.abc',
        clientSecret: 'gh-secret',
        tokenEndpointAuthMethod: 'client_secret_basic',
        scopes: ['repo', 'read:user'],
        pkce: true,
        authorizationParams: {},
      },
      {
        name: 'google',
        displayName: 'Google',
        issuer: 'https://accounts.google.com',
        clientId: 'g-client',
        clientSecret: 'g-secret',
        tokenEndpointAuthMethod: 'client_secret_post',
        scopes: ['openid', 'email'],
        pkce: true,
        authorizationParams: { access_type: 'offline', prompt: 'consent' },
      },
    ]);
  });

  it('accepts a public client (none + PKCE) and http on each loopback host', () => {
    for (const host of ['127.0.0.1:4444', '[::1]:4444', 'localhost:4444']) {
      const [p] = parseProviderCatalogue(
        catalogue({ local: { displayName: 'Local', issuer: `http://${host}`, clientId: 'c', tokenEndpointAuthMethod: 'none', scopes: ['offline_access'] } }),
        {},
      );
      expect(p).toMatchObject({ issuer: `http://${host}`, tokenEndpointAuthMethod: 'none', pkce: true });
      expect(p).not.toHaveProperty('clientSecret');
    }
  });

  it('accepts an empty catalogue', () => {
    expect(parseProviderCatalogue(catalogue({}), {})).toEqual([]);
  });

  // Each case: what is wrong, the catalogue, the line the operator must see.
  it.each<[string, Record<string, unknown>, string]>([
    ['missing clientId', { github: { ...github, clientId: undefined } }, 'CONNECTIONS_FILE: provider "github": clientId: expected a non-empty string'],
    ['empty clientId', { github: { ...github, clientId: '' } }, 'CONNECTIONS_FILE: provider "github": clientId: expected a non-empty string'],
    ['blank displayName', { github: { ...github, displayName: '  ' } }, 'CONNECTIONS_FILE: provider "github": displayName: expected a non-empty string'],
    ['unknown key (typo)', { github: { ...github, clientSecretEnvv: 'X' } }, 'CONNECTIONS_FILE: provider "github": clientSecretEnvv: unknown key (expected one of displayName'],
    ['bad provider name', { GitHub: github }, 'CONNECTIONS_FILE: provider "GitHub": name must match /^[a-z][a-z0-9_-]{0,31}$/'],
    ['provider name too long', { ['a'.repeat(33)]: github }, `CONNECTIONS_FILE: provider "${'a'.repeat(33)}": name must match`],
    ['issuer and explicit endpoints', { github: { ...github, issuer: 'https://github.com' } }, 'CONNECTIONS_FILE: provider "github": authorizationEndpoint: give either issuer (discovery) or explicit endpoints, not both'],
    ['neither issuer nor endpoints', { github: { ...github, authorizationEndpoint: undefined, tokenEndpoint: undefined } }, 'CONNECTIONS_FILE: provider "github": authorizationEndpoint: required when there is no issuer'],
    ['authorization endpoint without token endpoint', { github: { ...github, tokenEndpoint: undefined } }, 'CONNECTIONS_FILE: provider "github": tokenEndpoint: required when there is no issuer'],
    ['openid scope with explicit endpoints', { github: { ...github, scopes: ['openid'] } }, 'CONNECTIONS_FILE: provider "github": scopes: "openid" needs an issuer'],
    ['http issuer off loopback', { google: { ...google, issuer: 'http://accounts.google.com' } }, 'CONNECTIONS_FILE: provider "google": issuer: must use https (plain http is allowed only on 127.0.0.1, [::1] or localhost)'],
    ['http token endpoint off loopback', { github: { ...github, tokenEndpoint: 'http://github.com/token' } }, 'CONNECTIONS_FILE: provider "github": tokenEndpoint: must use https'],
    ['http on a loopback look-alike host', { github: { ...github, tokenEndpoint: 'http://127.0.0.1.evil.example/token' } }, 'CONNECTIONS_FILE: provider "github": tokenEndpoint: must use https'],
    ['non-http scheme', { github: { ...github, authorizationEndpoint: 'ftp://github.com/x' } }, 'CONNECTIONS_FILE: provider "github": authorizationEndpoint: must be an https URL'],
    ['relative URL', { github: { ...github, tokenEndpoint: '/token' } }, 'CONNECTIONS_FILE: provider "github": tokenEndpoint: expected an absolute URL'],
    ['issuer with a query', { google: { ...google, issuer: 'https://accounts.google.com/?x=1' } }, 'CONNECTIONS_FILE: provider "google": issuer: must not have a query'],
    ['endpoint with a fragment', { github: { ...github, tokenEndpoint: 'https://github.com/token#x' } }, 'CONNECTIONS_FILE: provider "github": tokenEndpoint: must not have a fragment'],
    ['endpoint with credentials', { github: { ...github, tokenEndpoint: 'https://u:p@github.com/token' } }, 'CONNECTIONS_FILE: provider "github": tokenEndpoint: must not carry credentials'],
    ['clientSecret and clientSecretEnv', { github: { ...github, clientSecret: 's' } }, 'CONNECTIONS_FILE: provider "github": clientSecretEnv: give either clientSecret or clientSecretEnv, not both'],
    ['no secret for a confidential client', { github: { ...github, clientSecretEnv: undefined } }, 'CONNECTIONS_FILE: provider "github": clientSecret: required for tokenEndpointAuthMethod "client_secret_basic"'],
    ['secret for a public client', { github: { ...github, tokenEndpointAuthMethod: 'none' } }, 'CONNECTIONS_FILE: provider "github": clientSecretEnv: must not be set with tokenEndpointAuthMethod "none"'],
    ['public client without PKCE', { github: { ...github, clientSecretEnv: undefined, tokenEndpointAuthMethod: 'none', pkce: false } }, 'CONNECTIONS_FILE: provider "github": pkce: must be true with tokenEndpointAuthMethod "none"'],
    ['unknown auth method', { github: { ...github, tokenEndpointAuthMethod: 'private_key_jwt' } }, 'CONNECTIONS_FILE: provider "github": tokenEndpointAuthMethod: expected "client_secret_basic", "client_secret_post" or "none"'],
    ['bad clientSecretEnv name', { github: { ...github, clientSecretEnv: 'MY-SECRET' } }, 'CONNECTIONS_FILE: provider "github": clientSecretEnv: expected the name of an environment variable'],
    ['scopes not an array', { github: { ...github, scopes: 'repo' } }, 'CONNECTIONS_FILE: provider "github": scopes: expected an array of scope strings'],
    ['scope with a space', { github: { ...github, scopes: ['repo', 'read user'] } }, 'CONNECTIONS_FILE: provider "github": scopes[1]: expected one scope token'],
    ['pkce not a boolean', { github: { ...github, pkce: 'yes' } }, 'CONNECTIONS_FILE: provider "github": pkce: expected true or false'],
    ['authorization param the client sets', { google: { ...google, authorizationParams: { state: 'fixed' } } }, 'CONNECTIONS_FILE: provider "google": authorizationParams.state: is set by the client itself'],
    ['authorization param not a string', { google: { ...google, authorizationParams: { prompt: 1 } } }, 'CONNECTIONS_FILE: provider "google": authorizationParams.prompt: expected a string value'],
    ['provider not an object', { github: 'yes' }, 'CONNECTIONS_FILE: provider "github": (provider):'],
  ])('refuses %s', (_case, providers, line) => {
    expect(refusal(catalogue(providers))).toContain(line);
  });

  it('refuses a clientSecretEnv whose variable is not set (or empty), naming the variable', () => {
    expect(refusal(catalogue({ github }), {})).toBe('CONNECTIONS_FILE: provider "github": clientSecretEnv: the environment variable GITHUB_CLIENT_SECRET is not set');
    expect(refusal(catalogue({ github }), { GITHUB_CLIENT_SECRET: '' })).toContain('GITHUB_CLIENT_SECRET is not set');
  });

  it.each<[string, unknown, string]>([
    ['a file that is not an object', [], 'CONNECTIONS_FILE: (file): expected an object with "providers"'],
    ['no providers key', {}, 'CONNECTIONS_FILE: providers: expected an object of providers by name'],
    ['providers not an object', { providers: [1] }, 'CONNECTIONS_FILE: providers: expected an object of providers by name'],
    ['an unknown top-level key', { providers: {}, provider: {} }, 'CONNECTIONS_FILE: "provider": unknown key'],
  ])('refuses %s', (_case, json, line) => {
    expect(refusal(json)).toContain(line);
  });

  it('lists every problem, one line each, each naming its provider', () => {
    const lines = refusal(catalogue({ github: { ...github, clientId: '' }, google: { ...google, issuer: 'http://example.com' } })).split('\n');
    expect(lines).toEqual([
      'CONNECTIONS_FILE: provider "github": clientId: expected a non-empty string',
      expect.stringMatching(/^CONNECTIONS_FILE: provider "google": issuer: must use https/),
    ]);
  });

  it('never puts a client secret into a message', () => {
    const message = refusal(catalogue({ google: { ...google, clientSecret: 'super-secret-value', clientSecretEnv: 'X' } }), { X: 'other-secret' });
    expect(message).not.toContain('super-secret-value');
    expect(message).not.toContain('other-secret');
  });

  describe('loadProviderCatalogue (reading the file)', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'providers-test-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('reads and checks a JSON file', async () => {
      const path = join(dir, 'ok.json');
      await writeFile(path, JSON.stringify(catalogue({ github })));
      expect(loadProviderCatalogue(path, env).map((p) => p.name)).toEqual(['github']);
    });

    it('refuses a missing file, naming the path', () => {
      const path = join(dir, 'missing.json');
      expect(() => loadProviderCatalogue(path, env)).toThrow(`CONNECTIONS_FILE: cannot read ${path} (ENOENT)`);
    });

    it('refuses a file that is not JSON, naming the path', async () => {
      const path = join(dir, 'bad.json');
      await writeFile(path, '{ providers: ');
      expect(() => loadProviderCatalogue(path, env)).toThrow(`CONNECTIONS_FILE: ${path} is not valid JSON`);
    });
  });
});
